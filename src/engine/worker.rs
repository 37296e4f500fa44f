//! The engine thread: owns the llama.cpp models and contexts, runs jobs one at a time.
//!
//! A job's prompt is tokenized, the target's [`KvSeq`] reuses what it already holds (common prefix,
//! moved chunks, or a snapshot from disk) and evaluates the rest in chunks, checking the cancel
//! token between them; then [`decode`] produces the suggestion. Generated tokens stay in the
//! cache too, so a prompt that continues the last suggestion costs nothing to re-read. Between
//! jobs, idle time brings the draft model's cache up to the target's.

use std::sync::mpsc;
use std::time::Instant;

use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

use super::decode::{Decoding, Drafter, Roles, Start, decode};
use super::draft::{Draft, load_draft};
use super::fim::FimTokens;
use super::kv::store::{KvStore, model_fingerprint};
use super::kv::{KvSeq, PROMPT_CHUNK, Store, common_prefix};
use super::load::{backend, context_params, load_target};
use super::probe::{PROBE_TEXT, load_probe, probe_batches, probe_path, save_probe};
use super::tokens::{TokenTable, tokenize};
use super::{
    EngineConfig, EngineError, GenerateRequest, Generation, Job, ModelInfo, StopReason, Timings,
};
use crate::prompt::Piece;
use crate::speculative::{Policy, PromptLookup, Speculation};

pub(super) fn run(
    config: EngineConfig,
    ready: mpsc::SyncSender<Result<ModelInfo, EngineError>>,
    jobs: mpsc::Receiver<Job>,
) {
    let (model, info) = match load_target(&config) {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    // Loaded after the probe, and only when requests will speculate. Declared before the worker,
    // whose draft context borrows it.
    let draft_model: Option<LlamaModel>;
    let store = config
        .kv_dir
        .as_ref()
        .and_then(|dir| match model_fingerprint(&config.model) {
            Ok(fp) => Some(Store {
                kv: KvStore::new(dir.clone(), config.kv_cap_bytes),
                model_fp: fp,
            }),
            Err(e) => {
                tracing::warn!("KV snapshots off: cannot fingerprint the model: {e}");
                None
            }
        });
    let speculation = config.speculation;
    // A probe saved by an earlier start: when it already says that `auto` decodes plainly, the
    // context starts with flash attention instead of being made twice.
    let probe_file = store
        .as_ref()
        .filter(|_| speculation != Speculation::Off)
        .map(|st| probe_path(st, &config));
    let saved_probe = probe_file.as_deref().and_then(load_probe);
    let known_plain =
        speculation == Speculation::Auto && saved_probe.as_ref().is_some_and(|p| !p.pays());
    let model_name = info.name.clone();
    let new_ctx = |flash: bool| {
        // `load_target` initialised the backend.
        let backend = backend()?;
        model
            .new_context(backend, context_params(&config, flash))
            .map_err(|e| {
                EngineError::Load(format!("cannot create a context for {model_name}: {e}"))
            })
    };
    let ctx =
        match new_ctx(config.flash_attention && (speculation == Speculation::Off || known_plain)) {
            Ok(c) => c,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
    let mut info = info;
    let mut w = Worker {
        store,
        model: &model,
        target: KvSeq::new(ctx),
        fim: info.fim.clone(),
        table: TokenTable::of(&model, &info.fim),
        draft: None,
        policy: Policy::new(speculation, false),
        lookup: PromptLookup::default(),
        speculating: false,
        exact_batches: false,
        auto: speculation == Speculation::Auto,
        config: config.clone(),
        probe_file: probe_file.clone(),
        revalidate: false,
        probe_one_ms: None,
    };
    if speculation != Speculation::Off {
        let probe = match saved_probe.map_or_else(|| w.probe(), Ok) {
            Ok(p) => p,
            Err(e) => {
                let _ = ready.send(Err(EngineError::Load(format!(
                    "cannot probe verification batches: {e}"
                ))));
                return;
            }
        };
        if let (Some(path), false) = (probe_file.as_deref(), probe.from_cache) {
            save_probe(path, &probe);
        }
        let pays = probe.pays();
        if probe.noisy && speculation == Speculation::Auto {
            tracing::warn!(
                one_ms = probe.one_ms,
                three_ms = probe.three_ms,
                "the start-up probe's timings varied too much (another workload?): decoding plainly; the next start measures again"
            );
        }
        let mut probe = probe;
        probe.speculating = speculation != Speculation::Auto || pays;
        if probe.speculating {
            w.policy.record_batch(1, probe.one_ms);
            w.policy.record_batch(3, probe.three_ms);
            w.exact_batches = probe.exact;
            w.speculating = true;
            if !probe.exact {
                tracing::warn!(
                    "verification batches round differently from one-token passes on this backend: near-ties may come out differently from plain decoding"
                );
            }
        } else {
            // Plain decoding after all: take flash attention back; the draft model is not loaded.
            tracing::info!(
                one_ms = probe.one_ms,
                three_ms = probe.three_ms,
                "speculation does not pay here (a three-token pass costs {:.1} one-token passes); plain decoding",
                probe.ratio()
            );
            if config.flash_attention && !known_plain {
                match new_ctx(true) {
                    Ok(c) => w.target = KvSeq::new(c),
                    Err(e) => tracing::warn!("keeping the context without flash attention: {e}"),
                }
            }
        }
        // A decision from a saved or a noisy probe is measured again in idle time.
        w.revalidate = w.auto && (probe.from_cache || probe.noisy);
        w.probe_one_ms = (!probe.noisy).then_some(probe.one_ms);
        info.batch_probe = Some(probe);
    }
    draft_model = match config.draft_model.as_ref().filter(|_| w.speculating) {
        Some(p) => match load_draft(p, &model, &info) {
            Ok(m) => Some(m),
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        },
        None => None,
    };
    if let Some(m) = draft_model.as_ref() {
        let ctx = backend().and_then(|b| {
            m.new_context(b, context_params(&config, false))
                .map_err(|e| {
                    EngineError::Load(format!("cannot create a context for the draft model: {e}"))
                })
        });
        match ctx {
            Ok(c) => {
                w.draft = Some(Draft { seq: KvSeq::new(c) });
                w.policy.draft_available = true;
            }
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        }
    }
    info.n_ctx = w.target.ctx.n_ctx();
    info.draft = w
        .draft
        .as_ref()
        .and(config.draft_model.as_ref())
        .map(|p| p.display().to_string());
    let threads = config.threads.max(1);
    tracing::info!(model = %info.name, n_ctx = info.n_ctx, threads, fim = ?info.fim.family, draft = ?info.draft, probe = ?info.batch_probe, "model loaded");
    if ready.send(Ok(info)).is_err() {
        return;
    }
    w.serve(&jobs);
}

pub(super) struct Worker<'m> {
    pub(super) store: Option<Store>,
    pub(super) model: &'m LlamaModel,
    pub(super) target: KvSeq<'m>,
    pub(super) fim: FimTokens,
    pub(super) table: TokenTable,
    pub(super) draft: Option<Draft<'m>>,
    pub(super) policy: Policy,
    pub(super) lookup: PromptLookup,
    /// Requests may speculate (the mode asked for, or what `auto` chose at start-up).
    pub(super) speculating: bool,
    /// The start-up probe found verification rows bit-identical to one-token passes.
    pub(super) exact_batches: bool,
    /// `auto` chose the mode: live timings may take speculation back.
    pub(super) auto: bool,
    pub(super) config: EngineConfig,
    /// Where the probe's result is saved, when snapshots are on.
    pub(super) probe_file: Option<std::path::PathBuf>,
    /// `auto`'s decision rests on numbers not measured cleanly by this process (a saved probe,
    /// or a noisy one): probe again in idle time.
    pub(super) revalidate: bool,
    /// The one-token cost the decision rests on, to compare with live decoding.
    pub(super) probe_one_ms: Option<f64>,
}

impl Worker<'_> {
    /// Runs jobs until every handle is gone.
    fn serve(&mut self, jobs: &mpsc::Receiver<Job>) {
        let mut next_job: Option<Job> = None;
        loop {
            let job = match next_job.take() {
                Some(j) => j,
                None if self.revalidate => {
                    match jobs.recv_timeout(self.config.reprobe_after_idle) {
                        Ok(j) => j,
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            self.reprobe(jobs, &mut next_job);
                            continue;
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                }
                None => match jobs.recv() {
                    Ok(j) => j,
                    Err(_) => break,
                },
            };
            let queue_ms = job.queued_at.elapsed().as_secs_f64() * 1e3;
            let result = if job.abandoned() {
                Err(EngineError::Cancelled)
            } else {
                self.generate(&job).map(|mut g| {
                    g.timings.queue_ms = queue_ms;
                    g
                })
            };
            let _ = job.reply.send(result);
            self.check_live_costs();
            // Idle time: bring the draft model's cache up to the target's, one chunk at a time,
            // so that the next request can draft without re-reading the prompt. A new job
            // pre-empts it.
            while self.draft_worth_warming() {
                match jobs.try_recv() {
                    Ok(j) => {
                        next_job = Some(j);
                        break;
                    }
                    Err(mpsc::TryRecvError::Disconnected) => return,
                    Err(mpsc::TryRecvError::Empty) => {
                        if !self.warm_draft_chunk() {
                            break;
                        }
                    }
                }
            }
        }
    }

    fn probe(&mut self) -> Result<super::BatchProbe, EngineError> {
        let (tokens, _) = tokenize(self.model, &self.fim, &[Piece::Text(PROBE_TEXT.into())]);
        probe_batches(&mut self.target, &tokens, &mut || false)
    }

    fn generate(&mut self, job: &Job) -> Result<Generation, EngineError> {
        let t0 = Instant::now();
        let req: &GenerateRequest = &job.request;
        let (mut tokens, last_len) = tokenize(self.model, &self.fim, &req.prompt.pieces);
        // Token healing: the text typed after <|fim_middle|> may end inside a token the model
        // would have chosen (four spaces of "    return"). Drop its last token and make the first
        // generated token start with the same bytes.
        let mut heal: Option<Vec<u8>> = None;
        let ends_with_text = matches!(req.prompt.pieces.last(), Some(Piece::Text(_)));
        if ends_with_text && last_len > 0 && req.max_tokens > 0 {
            if let Some(t) = tokens.pop() {
                heal = Some(self.table.piece(t).to_vec()).filter(|p| !p.is_empty());
                if heal.is_none() {
                    tokens.push(t);
                }
            }
        }
        let n_ctx = self.target.ctx.n_ctx() as usize;
        if tokens.is_empty() {
            return Err(EngineError::Prompt("empty prompt".into()));
        }
        if tokens.len() + req.max_tokens > n_ctx {
            return Err(EngineError::Prompt(format!(
                "{} prompt tokens + {} to generate do not fit the context of {n_ctx} tokens",
                tokens.len(),
                req.max_tokens
            )));
        }
        let mut timings = Timings {
            prompt_tokens: tokens.len(),
            ..Timings::default()
        };
        if req.max_tokens == 0 && common_prefix(self.target.cached(), &tokens) == tokens.len() {
            // Already cached (a completion read this prefix): keep the tail after it, which the
            // next keystroke's prompt will reuse.
            if req.persist {
                self.snapshot(tokens.len());
            }
            timings.reused_tokens = tokens.len();
            timings.total_ms = t0.elapsed().as_secs_f64() * 1e3;
            return Ok(prompt_only(timings));
        }
        if req.persist && req.max_tokens == 0 {
            if let Some(loaded) = self
                .store
                .as_ref()
                .and_then(|s| self.target.restore(s, &tokens))
            {
                timings.reused_tokens = loaded;
                timings.loaded_tokens = loaded;
                timings.prompt_ms = t0.elapsed().as_secs_f64() * 1e3;
                timings.total_ms = timings.prompt_ms;
                return Ok(prompt_only(timings));
            }
        }
        // Reuse what the cache holds, but always evaluate at least one token for fresh logits.
        let before = self.target.cached().len();
        let sep = self.fim.file_sep.map(LlamaToken);
        let (reused, shifted) = self.target.reuse(&tokens, req.kv, sep, &job.cancel)?;
        timings.reused_tokens = reused;
        timings.shifted_tokens = shifted;
        timings.evaluated_tokens = tokens.len() - reused - shifted;
        tracing::debug!(
            before,
            reused,
            shifted,
            evaluated = timings.evaluated_tokens,
            "kv reuse"
        );
        let todo = &tokens[self.target.cached().len()..];
        let chunks = todo.len().div_ceil(PROMPT_CHUNK);
        for (i, chunk) in todo.chunks(PROMPT_CHUNK).enumerate() {
            if job.abandoned() {
                return Err(EngineError::Cancelled);
            }
            let last = i + 1 == chunks;
            self.target
                .eval_rows(chunk, |j| last && j + 1 == chunk.len())
                .map_err(EngineError::Decode)?;
        }
        timings.prompt_ms = t0.elapsed().as_secs_f64() * 1e3;
        if req.max_tokens == 0 {
            if req.persist {
                self.snapshot(self.target.cached().len());
            }
            timings.total_ms = t0.elapsed().as_secs_f64() * 1e3;
            return Ok(prompt_only(timings));
        }

        // An engine started without speculation has flash attention on: verifying there would
        // not match plain decoding, so such requests decode plainly.
        self.policy.mode = if self.speculating {
            req.speculation
        } else {
            Speculation::Off
        };
        let decode_start = Instant::now();
        let mut roles = Roles {
            policy: &mut self.policy,
            lookup: &self.lookup,
            drafter: self.draft.as_mut().map(|d| d as &mut dyn Drafter),
            exact_batches: self.exact_batches,
            abandoned: &|| job.reply.is_closed(),
        };
        let start = Start {
            context: tokens,
            heal,
            t0,
        };
        let Decoding { out, stop, keep } = decode(
            &mut self.target,
            &self.table,
            &mut roles,
            req,
            &job.cancel,
            start,
            &mut timings,
        )?;
        timings.generated_tokens = out.generated;
        let decode_s = decode_start.elapsed().as_secs_f64();
        timings.total_ms = t0.elapsed().as_secs_f64() * 1e3;
        if decode_s > 0.0 {
            timings.tokens_per_second = timings.generated_tokens as f64 / decode_s;
        }
        let raw = match keep {
            Some(k) => out.text[..k].to_string(),
            None => out.text,
        };
        Ok(Generation {
            text: req.stop.finish(&raw),
            raw,
            stop_reason: stop,
            timings,
        })
    }

    /// Saves the first `n` cached tokens (a repo prefix) as a snapshot, when snapshots are on.
    fn snapshot(&mut self, n: usize) {
        if let Some(store) = &self.store {
            self.target.snapshot(store, n);
        }
    }

    /// True when the draft model is in use and lags the target's cache.
    fn draft_worth_warming(&self) -> bool {
        self.policy.draft_pays()
            && self
                .draft
                .as_ref()
                .is_some_and(|d| d.seq.lag(self.target.cached()) > 0)
    }

    /// Evaluates one chunk of the target's cached tokens on the draft; false when nothing was done.
    fn warm_draft_chunk(&mut self) -> bool {
        match self.draft.as_mut() {
            Some(d) => d.warm_chunk(self.target.cached()),
            None => false,
        }
    }
}

fn prompt_only(timings: Timings) -> Generation {
    Generation {
        text: String::new(),
        raw: String::new(),
        stop_reason: StopReason::PromptOnly,
        timings,
    }
}
