//! The engine thread: owns the llama.cpp model and context, runs jobs one at a time.
//!
//! KV reuse: the worker remembers which tokens sit in the KV cache (sequence 0). A new prompt
//! evaluates only what follows the longest common token prefix with them; generated tokens stay
//! in the cache too, so a prompt that continues the last suggestion costs nothing to re-read.

use std::io::Read;
use std::num::NonZeroU32;
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::token::LlamaToken;

use super::fim::{self, FimTokens};
use super::kvstore::{EntryHeader, KvStore};
use super::{
    EngineConfig, EngineError, GenerateRequest, Generation, Job, KvReuse, ModelInfo, StopReason,
    Timings,
};
use crate::config::Speculation;
use crate::prompt::Piece;
use crate::speculative::{Choice, Policy, PromptLookup};

/// On a backend whose batch rows are not bit-identical to one-token passes (the start-up probe
/// says which), a logit gap below this makes verification defer to a one-token pass: the noise
/// between batch sizes is far smaller. Best effort only; where the probe passes it is not used.
const TIE_MARGIN: f32 = 0.1;

/// A run of cached chunks shorter than this is re-evaluated rather than moved.
const MIN_SHIFT_RUN: usize = 32;

/// Prompt tokens per decode call: small enough to notice a cancel quickly, large enough to stay
/// within a few percent of full-batch speed on CPU.
const PROMPT_CHUNK: usize = 64;

/// llama.cpp's backend may be initialised once per process.
fn backend() -> Result<&'static LlamaBackend, EngineError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| EngineError::Load(format!("cannot initialise llama.cpp: {e}")))
}

/// Checks the file before llama.cpp sees it, so the user gets a precise message.
fn check_model_file(path: &std::path::Path) -> Result<(), EngineError> {
    let shown = path.display();
    let mut f = std::fs::File::open(path).map_err(|e| {
        EngineError::Load(format!(
            "cannot open model {shown}: {e} (run scripts/setup.sh to fetch the default models, or pass --model)"
        ))
    })?;
    let mut magic = [0u8; 4];
    if f.read_exact(&mut magic).is_err() || &magic != b"GGUF" {
        return Err(EngineError::Load(format!(
            "{shown} is not a GGUF model file"
        )));
    }
    Ok(())
}

pub(super) fn run(
    config: EngineConfig,
    ready: mpsc::SyncSender<Result<ModelInfo, EngineError>>,
    jobs: mpsc::Receiver<Job>,
) {
    let started = match start(&config) {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let (model, info) = started;
    // Loaded after the probe, and only when requests will speculate.
    let draft_model: Option<LlamaModel>;
    let threads = i32::try_from(config.threads.max(1)).unwrap_or(1);
    let params = |flash: bool| {
        let p = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(config.ctx_size.max(256)))
            .with_n_batch(512)
            .with_n_ubatch(512)
            .with_n_threads(threads)
            .with_n_threads_batch(threads)
            // Sequence 1 parks the KV of chunks being moved while a changed chunk is
            // re-evaluated; moving cells between sequences needs one unified cache.
            .with_n_seq_max(2)
            .with_kv_unified(true);
        // A flash-attention pass over one token reduces in another order than over several, so
        // speculation (which must match plain decoding exactly) runs without it.
        if flash {
            p
        } else {
            p.with_flash_attention_policy(llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED)
        }
    };
    let store = config.kv_dir.as_ref().and_then(|dir| {
        match super::kvstore::model_fingerprint(&config.model) {
            Ok(fp) => Some(Store {
                kv: KvStore::new(dir.clone(), config.kv_cap_bytes),
                model_fp: fp,
            }),
            Err(e) => {
                tracing::warn!("KV snapshots off: cannot fingerprint the model: {e}");
                None
            }
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
    let known_plain = speculation == Speculation::Auto
        && saved_probe
            .as_ref()
            .is_some_and(|p| !crate::speculative::speculation_pays(p.one_ms, p.three_ms));
    let model_name = info.name.clone();
    let new_ctx = |flash: bool| {
        model
            .new_context(backend_or_unreachable(), params(flash))
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
    // Every token's bytes, for token healing (a few MB for a 150k vocabulary).
    let vocab = model.vocab();
    let pieces: Vec<Vec<u8>> = vocab
        .tokens()
        .map(|t| vocab.token_to_piece(t, false, None))
        .collect();
    let mut info = info;
    let mut w = Worker {
        store,
        model: &model,
        ctx,
        fim: info.fim.clone(),
        cached: Vec::new(),
        batch: LlamaBatch::new(512, 1),
        pieces,
        draft: None,
        policy: Policy::new(speculation, false),
        lookup: PromptLookup::default(),
        speculating: false,
        exact_batches: false,
    };
    if speculation != Speculation::Off {
        let probe = match saved_probe.map_or_else(|| w.probe_batches(), Ok) {
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
        let pays = crate::speculative::speculation_pays(probe.one_ms, probe.three_ms);
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
                    Ok(c) => w.ctx = c,
                    Err(e) => tracing::warn!("keeping the context without flash attention: {e}"),
                }
            }
        }
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
        match m.new_context(backend_or_unreachable(), params(false)) {
            Ok(c) => {
                w.draft = Some(Draft {
                    ctx: c,
                    cached: Vec::new(),
                    batch: LlamaBatch::new(512, 1),
                });
                w.policy.draft_available = true;
            }
            Err(e) => {
                let _ = ready.send(Err(EngineError::Load(format!(
                    "cannot create a context for the draft model: {e}"
                ))));
                return;
            }
        }
    }
    info.n_ctx = w.ctx.n_ctx();
    info.draft = w
        .draft
        .as_ref()
        .and(config.draft_model.as_ref())
        .map(|p| p.display().to_string());
    tracing::info!(model = %info.name, n_ctx = info.n_ctx, threads, fim = ?info.fim.family, draft = ?info.draft, probe = ?info.batch_probe, "model loaded");
    if ready.send(Ok(info)).is_err() {
        return;
    }
    let mut next_job: Option<Job> = None;
    loop {
        let job = match next_job.take() {
            Some(j) => j,
            None => match jobs.recv() {
                Ok(j) => j,
                Err(_) => break,
            },
        };
        let queue_ms = job.queued_at.elapsed().as_secs_f64() * 1e3;
        let result = if job.cancel.is_cancelled() {
            Err(EngineError::Cancelled)
        } else {
            w.generate(&job).map(|mut g| {
                g.timings.queue_ms = queue_ms;
                g
            })
        };
        let _ = job.reply.send(result);
        // Idle time: bring the draft model's cache up to the target's, one chunk at a time, so
        // that the next request can draft without re-reading the prompt. A new job pre-empts it.
        while w.draft_worth_warming() {
            match jobs.try_recv() {
                Ok(j) => {
                    next_job = Some(j);
                    break;
                }
                Err(mpsc::TryRecvError::Disconnected) => return,
                Err(mpsc::TryRecvError::Empty) => {
                    if !w.warm_draft_chunk() {
                        break;
                    }
                }
            }
        }
    }
}

/// Loads the draft model and checks that it reads tokens the same way as the target.
fn load_draft(
    path: &std::path::Path,
    target: &LlamaModel,
    info: &ModelInfo,
) -> Result<LlamaModel, EngineError> {
    check_model_file(path)?;
    let params = LlamaModelParams::default();
    let draft = LlamaModel::load_from_file(backend()?, path, &params).map_err(|e| {
        EngineError::Load(format!("cannot load draft model {}: {e}", path.display()))
    })?;
    let (tv, dv) = (target.vocab(), draft.vocab());
    let same_size = target.n_vocab() == draft.n_vocab();
    let probe = (0..target.n_vocab().min(draft.n_vocab()))
        .step_by(97)
        .map(LlamaToken)
        .chain([
            LlamaToken(info.fim.prefix),
            LlamaToken(info.fim.suffix),
            LlamaToken(info.fim.middle),
        ]);
    let same_text = probe
        .into_iter()
        .all(|t| tv.token_to_piece(t, true, None) == dv.token_to_piece(t, true, None));
    if !(same_size && same_text) {
        return Err(EngineError::Load(format!(
            "draft model {} does not share the vocabulary of {} ({} vs {} tokens); speculation needs the same tokenizer",
            path.display(),
            info.name,
            draft.n_vocab(),
            target.n_vocab()
        )));
    }
    Ok(draft)
}

fn backend_or_unreachable() -> &'static LlamaBackend {
    // `start` succeeded, so the backend exists.
    backend().expect("backend initialised in start()")
}

fn start(config: &EngineConfig) -> Result<(LlamaModel, ModelInfo), EngineError> {
    check_model_file(&config.model)?;
    let backend = backend()?;
    let name = config.model.file_name().map_or_else(
        || config.model.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut params = LlamaModelParams::default().with_n_gpu_layers(config.gpu_layers);
    if let Some(progress) = config.progress.clone() {
        params = params.with_progress_callback(move |p| {
            progress(p);
            true
        });
    }
    let model = LlamaModel::load_from_file(backend, &config.model, &params).map_err(|e| {
        EngineError::Load(format!(
            "cannot load model {}: {e} (corrupt file or unsupported architecture)",
            config.model.display()
        ))
    })?;
    let vocab = model.vocab();
    let texts: Vec<(i32, String)> = vocab
        .tokens()
        .filter_map(|t| {
            let text = vocab.text(t)?.to_str().ok()?;
            fim::looks_special(text).then(|| (t.0, text.to_string()))
        })
        .collect();
    let fim = fim::detect(texts.iter().map(|(i, t)| (*i, t.as_str())), &name)
        .map_err(|e| EngineError::Load(e.to_string()))?;
    let info = ModelInfo {
        path: config.model.clone(),
        name,
        fim,
        n_ctx: config.ctx_size,
        n_ctx_train: model.n_ctx_train(),
        n_vocab: model.n_vocab(),
        draft: None,
        batch_probe: None,
    };
    Ok((model, info))
}

/// Where prefix snapshots persist, and the model they belong to.
#[derive(Clone)]
struct Store {
    kv: KvStore,
    model_fp: u64,
}

struct Worker<'m> {
    store: Option<Store>,
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    fim: FimTokens,
    /// Tokens whose keys and values are in the KV cache, positions 0..len.
    cached: Vec<LlamaToken>,
    batch: LlamaBatch<'static>,
    pieces: Vec<Vec<u8>>,
    draft: Option<Draft<'m>>,
    policy: Policy,
    lookup: PromptLookup,
    /// Requests may speculate (the mode asked for, or what `auto` chose at start-up).
    speculating: bool,
    /// The start-up probe found verification rows bit-identical to one-token passes.
    exact_batches: bool,
}

/// Text of the valid UTF-8 in `bytes`; an incomplete character at the end waits for more bytes,
/// invalid bytes become U+FFFD.
pub(crate) fn utf8_prefix(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                return out;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(good).unwrap_or_default());
                match e.error_len() {
                    Some(n) => {
                        out.push('\u{FFFD}');
                        rest = &bad[n..];
                    }
                    None => return out,
                }
            }
        }
    }
}

impl Worker<'_> {
    /// Tokens of the prompt, and how many of them the final piece produced.
    fn tokenize(&self, pieces: &[Piece]) -> (Vec<LlamaToken>, usize) {
        let vocab = self.model.vocab();
        let text = |s: &str| vocab.tokenize(s.as_bytes(), false, false);
        let mut out = Vec::new();
        if vocab.should_add_bos() {
            out.push(vocab.bos());
        }
        let repo_level = self.fim.repo_name.is_some() && self.fim.file_sep.is_some();
        let mut last_len = 0;
        for p in pieces {
            let before = out.len();
            match p {
                Piece::RepoName(name) if repo_level => {
                    out.push(LlamaToken(self.fim.repo_name.unwrap_or_default()));
                    out.extend(text(&format!("{name}\n")));
                }
                Piece::File { path, content } if repo_level => {
                    out.push(LlamaToken(self.fim.file_sep.unwrap_or_default()));
                    out.extend(text(&format!("{path}\n{content}\n")));
                }
                Piece::CurrentFile(path) if repo_level => {
                    out.push(LlamaToken(self.fim.file_sep.unwrap_or_default()));
                    out.extend(text(&format!("{path}\n")));
                }
                Piece::RepoName(_) | Piece::File { .. } | Piece::CurrentFile(_) => {}
                Piece::FimPrefix => out.push(LlamaToken(self.fim.prefix)),
                Piece::FimSuffix => out.push(LlamaToken(self.fim.suffix)),
                Piece::FimMiddle => out.push(LlamaToken(self.fim.middle)),
                Piece::Text(t) => out.extend(text(t)),
            }
            last_len = out.len() - before;
        }
        (out, last_len)
    }

    /// Evaluates three tokens after a short code prompt as one-token passes and as one batch,
    /// compares every logit bit for bit, and times both (median of three rounds after one
    /// untimed round: the first passes after loading still page the weights in). Leaves the
    /// cache empty.
    fn probe_batches(&mut self) -> Result<super::BatchProbe, EngineError> {
        const PROBE: &str = "fn main() {\n    let names = vec![\"alpha\", \"beta\", \"gamma\"];\n    for (i, name) in names.iter().enumerate() {\n        println!(\"{i}: {name}\");\n    }\n}\n";
        let (tokens, _) = self.tokenize(&[Piece::Text(PROBE.to_string())]);
        if tokens.len() < 8 {
            return Err(EngineError::Prompt("probe prompt too short".into()));
        }
        let (head, tail) = tokens.split_at(tokens.len() - 3);
        let started = Instant::now();
        self.reset();
        self.eval(head, false)?;
        let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
        let (mut one, mut three) = (Vec::new(), Vec::new());
        let mut exact = true;
        for round in 0..4 {
            let timed = round > 0;
            let mut singles = Vec::with_capacity(tail.len());
            for t in tail {
                let s = Instant::now();
                self.eval(&[*t], true)?;
                if timed {
                    one.push(ms(s));
                }
                singles.push(self.ctx.get_logits_ith(0).to_vec());
            }
            self.truncate(head.len());
            let s = Instant::now();
            self.eval_all(tail)?;
            if timed {
                three.push(ms(s));
            }
            for (i, single) in singles.iter().enumerate() {
                let row = self.ctx.get_logits_ith(i as i32);
                exact &= row.len() == single.len()
                    && row
                        .iter()
                        .zip(single)
                        .all(|(a, b)| a.to_bits() == b.to_bits());
            }
            self.truncate(head.len());
        }
        self.reset();
        Ok(super::BatchProbe {
            exact,
            one_ms: median(&mut one),
            three_ms: median(&mut three),
            took_ms: ms(started),
            from_cache: false,
            speculating: false,
        })
    }

    fn is_stop(&self, t: LlamaToken) -> bool {
        self.model.vocab().is_eog(t) || self.fim.stop.contains(&t.0)
    }

    /// Forgets the KV cache after a failure: its state is unknown.
    fn reset(&mut self) {
        self.ctx.clear_kv_cache();
        self.cached.clear();
    }

    /// Decodes `tokens` at positions after the cache; logits for the last one only.
    fn eval(&mut self, tokens: &[LlamaToken], want_logits: bool) -> Result<(), EngineError> {
        self.eval_rows(tokens, |i| want_logits && i + 1 == tokens.len())
    }

    /// Decodes `tokens` after the cache with logits for every one (verification).
    fn eval_all(&mut self, tokens: &[LlamaToken]) -> Result<(), EngineError> {
        self.eval_rows(tokens, |_| true)
    }

    fn eval_rows(
        &mut self,
        tokens: &[LlamaToken],
        logits: impl Fn(usize) -> bool,
    ) -> Result<(), EngineError> {
        decode_after(
            &mut self.ctx,
            &mut self.batch,
            &mut self.cached,
            tokens,
            logits,
        )
        .map_err(EngineError::Decode)
    }

    /// Greedy choice at batch row `i` and its lead over the runner-up.
    fn argmax_margin_at(&self, i: i32) -> (i32, f32) {
        let logits = self.ctx.get_logits_ith(i);
        let (mut best, mut top, mut second) = (0usize, f32::NEG_INFINITY, f32::NEG_INFINITY);
        for (i, v) in logits.iter().enumerate() {
            if *v > top {
                second = top;
                top = *v;
                best = i;
            } else if *v > second {
                second = *v;
            }
        }
        (best as i32, top - second)
    }

    /// Greedy choice at batch row `i`; with `heal`, only among tokens that agree with those
    /// bytes (start with them, or are a non-empty prefix of them).
    fn argmax_at(&self, i: i32, heal: Option<&[u8]>) -> LlamaToken {
        let logits = self.ctx.get_logits_ith(i);
        let mut best: Option<usize> = None;
        for (i, v) in logits.iter().enumerate() {
            if best.is_some_and(|b| *v <= logits[b]) {
                continue;
            }
            if heal.is_some_and(|h| {
                !self
                    .pieces
                    .get(i)
                    .is_some_and(|p| p.starts_with(h) || (!p.is_empty() && h.starts_with(p)))
            }) {
                continue;
            }
            best = Some(i);
        }
        LlamaToken(best.unwrap_or(0) as i32)
    }

    fn generate(&mut self, job: &Job) -> Result<Generation, EngineError> {
        let t0 = Instant::now();
        let req: &GenerateRequest = &job.request;
        let (mut tokens, last_len) = self.tokenize(&req.prompt.pieces);
        // Token healing: the text typed after <|fim_middle|> may end inside a token the model
        // would have chosen (four spaces of "    return"). Drop its last token and make the first
        // generated token start with the same bytes.
        let mut heal: Option<Vec<u8>> = None;
        let ends_with_text = matches!(req.prompt.pieces.last(), Some(Piece::Text(_)));
        if ends_with_text && last_len > 0 && req.max_tokens > 0 {
            if let Some(t) = tokens.pop() {
                heal = self
                    .pieces
                    .get(t.0 as usize)
                    .cloned()
                    .filter(|p| !p.is_empty());
                if heal.is_none() {
                    tokens.push(t);
                }
            }
        }
        let n_ctx = self.ctx.n_ctx() as usize;
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
        if req.max_tokens == 0 && common_prefix(&self.cached, &tokens) == tokens.len() {
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
            if let Some(loaded) = self.restore(&tokens) {
                timings.reused_tokens = loaded;
                timings.loaded_tokens = loaded;
                timings.prompt_ms = t0.elapsed().as_secs_f64() * 1e3;
                timings.total_ms = timings.prompt_ms;
                return Ok(prompt_only(timings));
            }
        }
        // Reuse what the cache holds, but always evaluate at least one token for fresh logits.
        let before = self.cached.len();
        let reuse = self.reuse(&tokens, req.kv, &job.cancel);
        let (reused, shifted) = reuse?;
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
        let todo = &tokens[self.cached.len()..];
        let chunks = todo.len().div_ceil(PROMPT_CHUNK);
        for (i, chunk) in todo.chunks(PROMPT_CHUNK).enumerate() {
            if job.cancel.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            self.eval(chunk, i + 1 == chunks)?;
        }
        timings.prompt_ms = t0.elapsed().as_secs_f64() * 1e3;
        if req.max_tokens == 0 {
            if req.persist {
                self.snapshot(self.cached.len());
            }
            timings.total_ms = t0.elapsed().as_secs_f64() * 1e3;
            return Ok(prompt_only(timings));
        }

        let mut out = Decoded::default();
        let decode_start = Instant::now();
        // Speculation needs the plain argmax of the first token(s) while healing constrains them.
        let mut next = self.argmax_at(self.batch.n_tokens() - 1, heal.as_deref());
        timings.ttft_ms = t0.elapsed().as_secs_f64() * 1e3;
        let stop: (StopReason, Option<usize>);
        // An engine started without speculation has flash attention on: verifying there would
        // not match plain decoding, so such requests decode plainly.
        self.policy.mode = if self.speculating {
            req.speculation
        } else {
            Speculation::Off
        };
        let mut context: Vec<LlamaToken> = tokens.clone();
        'decode: loop {
            // `next` is the greedy token at the end of `context`; it is not in the KV cache yet.
            if let Some(s) = self.accept_token(next, &mut heal, &mut out, req, decode_start) {
                stop = s;
                break;
            }
            context.push(next);
            if job.cancel.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            let lookup = if heal.is_none() {
                self.lookup.propose(&as_ids(&context), 8)
            } else {
                Vec::new()
            };
            let choice = if heal.is_some() {
                Choice::Plain
            } else {
                self.policy.choose(lookup.len())
            };
            let draft: Vec<LlamaToken> = match choice {
                Choice::Plain => Vec::new(),
                Choice::Lookup(k) => lookup.iter().take(k).map(|t| LlamaToken(*t)).collect(),
                Choice::Draft(k) => self.draft_propose(&context, k, &job.cancel)?,
            };
            let base = self.cached.len();
            let mut batch = vec![next];
            batch.extend_from_slice(&draft);
            let t = Instant::now();
            self.eval_all(&batch)?;
            self.policy
                .record_batch(batch.len(), t.elapsed().as_secs_f64() * 1e3);
            if draft.is_empty() {
                next = self.argmax_at(0, heal.as_deref());
                continue;
            }
            let rows: Vec<(i32, f32)> = (0..batch.len())
                .map(|i| self.argmax_margin_at(i as i32))
                .collect();
            let targets: Vec<i32> = rows.iter().map(|r| r.0).collect();
            let (verified, after) = crate::speculative::verify(&as_ids(&draft), &targets);
            // Where the probe found batch rows bit-identical to one-token passes they decide
            // as plain decoding would. Elsewhere they differ in the last bits, and where the
            // top two are that close only a one-token pass decides (best effort).
            let sure = if self.exact_batches {
                rows.len()
            } else {
                rows.iter()
                    .position(|r| r.1 < TIE_MARGIN)
                    .unwrap_or(rows.len())
            };
            let accepted = verified.min(sure);
            self.policy.record_accept(choice, draft.len(), accepted);
            timings.draft_proposed += draft.len();
            timings.draft_accepted += accepted;
            // Roll back the rejected tail; the accepted tokens stay in the cache.
            self.truncate(base + 1 + accepted);
            for (j, d) in draft[..accepted].iter().enumerate() {
                if let Some(s) = self.accept_token(*d, &mut heal, &mut out, req, decode_start) {
                    // Plain decoding never evaluates the token it stops at.
                    self.truncate(base + 1 + j);
                    stop = s;
                    break 'decode;
                }
                context.push(*d);
            }
            next = if accepted < sure {
                LlamaToken(after)
            } else {
                // Re-read the last accepted token alone for the next token's logits.
                let last = batch[accepted];
                self.truncate(base + accepted);
                self.eval(&[last], true)?;
                self.argmax_at(0, None)
            };
        }
        let (stop_reason, keep) = stop;
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
            stop_reason,
            timings,
        })
    }

    /// Takes one greedy token into the suggestion; `Some` when decoding must stop here.
    fn accept_token(
        &self,
        token: LlamaToken,
        heal: &mut Option<Vec<u8>>,
        out: &mut Decoded,
        req: &GenerateRequest,
        decode_start: Instant,
    ) -> Option<(StopReason, Option<usize>)> {
        if self.is_stop(token) {
            return Some((StopReason::EndOfText, None));
        }
        out.generated += 1;
        let piece = self
            .pieces
            .get(token.0 as usize)
            .map_or(&[][..], Vec::as_slice);
        let skip = match heal.take() {
            // A shorter token covered part of the healed text: constrain the next one too.
            Some(h) if h.len() > piece.len() => {
                *heal = Some(h[piece.len()..].to_vec());
                piece.len()
            }
            Some(h) => h.len(),
            None => 0,
        };
        out.bytes.extend_from_slice(&piece[skip.min(piece.len())..]);
        out.text = utf8_prefix(&out.bytes);
        if let Some(p) = &req.partial {
            p.send_replace(out.text.clone());
        }
        if let Some(cut) = req.stop.check(&out.text) {
            return Some((StopReason::StopRule, Some(cut)));
        }
        if out.generated >= req.max_tokens {
            return Some((StopReason::MaxTokens, None));
        }
        if let Some(cap) = req.time_cap_after_newline {
            if out.text.contains('\n') && decode_start.elapsed() >= cap {
                // Keep whole lines only.
                return Some((StopReason::TimeCap, out.text.rfind('\n')));
            }
        }
        None
    }

    /// Makes the cache hold a prefix of `tokens` (all but the last): the common prefix in place,
    /// and, when a chunk changed, one later run of chunks moved to its new positions instead of
    /// re-evaluated (the tokens between are evaluated here). Returns (reused in place, shifted).
    fn reuse(
        &mut self,
        tokens: &[LlamaToken],
        mode: KvReuse,
        cancel: &super::CancelToken,
    ) -> Result<(usize, usize), EngineError> {
        let limit = tokens.len() - 1;
        if mode == KvReuse::None {
            self.truncate(0);
            return Ok((0, 0));
        }
        let p = common_prefix(&self.cached, tokens).min(limit);
        let run = match (mode, self.fim.file_sep) {
            (KvReuse::Shift, Some(sep)) => {
                find_run(&self.cached, tokens, p, limit, LlamaToken(sep))
            }
            _ => None,
        };
        let Some(Run { at, from, len }) = run else {
            self.truncate(p);
            return Ok((self.cached.len(), 0));
        };
        // Park the run in sequence 1, drop everything after the prefix from sequence 0, evaluate
        // the new tokens before the run, then move the run to its new positions and take it back.
        // llama.cpp requires each sequence's positions to grow by one, hence the detour.
        let parked = self
            .ctx
            .kv_cache_seq_cp(0, 1, Some(from as u32), Some((from + len) as u32))
            .is_ok();
        self.truncate(p);
        if !parked || self.cached.len() != p {
            self.drop_parked();
            return Ok((self.cached.len(), 0));
        }
        for chunk in tokens[p..at].chunks(PROMPT_CHUNK) {
            if cancel.is_cancelled() {
                self.drop_parked();
                return Err(EngineError::Cancelled);
            }
            if let Err(e) = self.eval(chunk, false) {
                self.drop_parked();
                return Err(e);
            }
        }
        let delta = at as i32 - from as i32;
        let moved = self
            .ctx
            .kv_cache_seq_add(1, Some(from as u32), Some((from + len) as u32), delta)
            .and_then(|()| {
                self.ctx
                    .kv_cache_seq_cp(1, 0, Some(at as u32), Some((at + len) as u32))
            })
            .is_ok();
        self.drop_parked();
        if !moved {
            self.truncate(p);
            return Ok((p, 0));
        }
        self.cached.extend_from_slice(&tokens[at..at + len]);
        Ok((p, len))
    }

    /// Empties the parking sequence.
    fn drop_parked(&mut self) {
        if self.ctx.kv_cache_seq_rm(1, None, None).is_err() {
            self.reset();
        }
    }

    /// Loads a saved snapshot of `tokens` (a repo prefix) when the cache does not hold most of
    /// it already; returns how many tokens are now cached from it. A bad snapshot is deleted and
    /// the prefix evaluated instead.
    fn restore(&mut self, tokens: &[LlamaToken]) -> Option<usize> {
        let store = self.store.as_ref()?;
        if tokens.len() - common_prefix(&self.cached, tokens) <= PROMPT_CHUNK {
            return None;
        }
        let key = super::kvstore::prefix_key(store.model_fp, &as_ids(tokens));
        let header = EntryHeader {
            model_fp: store.model_fp,
            n_tokens: tokens.len() as u32,
        };
        let payload = match store.kv.load(key, &header) {
            Ok(Some(p)) => p,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!("KV snapshot not used: {e}");
                return None;
            }
        };
        let scratch = store.kv.scratch_path();
        let written = std::fs::write(&scratch, &payload);
        self.reset();
        let loaded = written.map_err(|e| e.to_string()).and_then(|()| {
            self.ctx
                .state_seq_load_file(&scratch, 0, tokens.len() + 1)
                .map_err(|e| e.to_string())
        });
        let _ = std::fs::remove_file(&scratch);
        match loaded {
            Ok((saved, _)) if saved == tokens => {
                self.cached = saved;
                tracing::info!(tokens = tokens.len(), "KV snapshot loaded");
                Some(tokens.len())
            }
            other => {
                let why = match other {
                    Ok(_) => "its tokens differ from the prefix".to_string(),
                    Err(e) => e,
                };
                tracing::warn!("KV snapshot rejected ({why}); re-evaluating");
                self.reset();
                if let Some(s) = &self.store {
                    s.kv.remove(key);
                }
                None
            }
        }
    }

    /// Saves the first `n` cached tokens (a repo prefix) as a snapshot, unless one exists.
    fn snapshot(&mut self, n: usize) {
        // A copy, so that the cache can be borrowed mutably while saving.
        let Some(store) = self.store.clone() else {
            return;
        };
        let n = n.min(self.cached.len());
        let prefix = self.cached[..n].to_vec();
        let key = super::kvstore::prefix_key(store.model_fp, &as_ids(&prefix));
        if store.kv.path_of(key).exists() {
            return;
        }
        let header = EntryHeader {
            model_fp: store.model_fp,
            n_tokens: n as u32,
        };
        let scratch = store.kv.scratch_path();
        if let Some(dir) = scratch.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        // llama.cpp saves whole sequences: a prefix of the cache goes through sequence 1.
        let seq = if n == self.cached.len() {
            0
        } else if self
            .ctx
            .kv_cache_seq_cp(0, 1, Some(0), Some(n as u32))
            .is_ok()
        {
            1
        } else {
            return;
        };
        let saved = self.ctx.state_seq_save_file(&scratch, seq, &prefix);
        if seq == 1 {
            self.drop_parked();
        }
        let result = saved
            .map_err(|e| e.to_string())
            .and_then(|_| std::fs::read(&scratch).map_err(|e| e.to_string()))
            .and_then(|bytes| {
                store
                    .kv
                    .save(key, &header, &bytes)
                    .map_err(|e| e.to_string())
            });
        let _ = std::fs::remove_file(&scratch);
        match result {
            Ok(n) => tracing::info!(tokens = header.n_tokens, bytes = n, "KV snapshot saved"),
            Err(e) => tracing::warn!("cannot save a KV snapshot: {e}"),
        }
    }

    /// Drops KV entries from position `n` on.
    fn truncate(&mut self, n: usize) {
        if n < self.cached.len() {
            if self.ctx.kv_cache_seq_rm(0, Some(n as u32), None).is_err() {
                self.reset();
                return;
            }
            self.cached.truncate(n);
        }
    }

    /// True when the draft model is in use and lags the target's cache.
    fn draft_worth_warming(&self) -> bool {
        self.policy.draft_pays() && self.draft.as_ref().is_some_and(|d| d.lag(&self.cached) > 0)
    }

    /// Evaluates one chunk of the target's cached tokens on the draft; false when nothing was done.
    fn warm_draft_chunk(&mut self) -> bool {
        let Some(d) = self.draft.as_mut() else {
            return false;
        };
        d.align(&self.cached, usize::MAX);
        let from = d.cached.len();
        let end = (from + PROMPT_CHUNK).min(self.cached.len());
        if end <= from {
            return false;
        }
        let chunk = self.cached[from..end].to_vec();
        d.eval(&chunk).is_ok()
    }

    /// Greedy proposals from the draft model for the continuation of `context`.
    fn draft_propose(
        &mut self,
        context: &[LlamaToken],
        k: usize,
        cancel: &super::CancelToken,
    ) -> Result<Vec<LlamaToken>, EngineError> {
        let Some(d) = self.draft.as_mut() else {
            return Ok(Vec::new());
        };
        // A cold draft cache would cost a whole prompt evaluation: skip drafting this time
        // (idle time warms it) unless drafting was asked for explicitly.
        if d.lag(context) > 64 && self.policy.mode != crate::config::Speculation::Draft {
            return Ok(Vec::new());
        }
        let t = Instant::now();
        let proposals = d.propose(context, k, cancel)?;
        if !proposals.is_empty() {
            self.policy
                .record_draft_token(t.elapsed().as_secs_f64() * 1e3 / proposals.len() as f64);
        }
        Ok(proposals)
    }
}

/// Cached tokens `from..from + len` reappear in the new prompt at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    at: usize,
    from: usize,
    len: usize,
}

/// The longest run of cached chunks (starting at a `sep` token, after the common prefix `p`)
/// that the new prompt repeats before `limit`, if it is worth moving.
fn find_run(
    cached: &[LlamaToken],
    tokens: &[LlamaToken],
    p: usize,
    limit: usize,
    sep: LlamaToken,
) -> Option<Run> {
    let starts = |ts: &[LlamaToken], end: usize| -> Vec<usize> {
        (p..end.min(ts.len())).filter(|&i| ts[i] == sep).collect()
    };
    let (old, new) = (starts(cached, cached.len()), starts(tokens, limit));
    let mut best: Option<Run> = None;
    for &at in &new {
        for &from in &old {
            let len = common_prefix(&cached[from..], &tokens[at..limit]);
            if len >= MIN_SHIFT_RUN && best.is_none_or(|b| len > b.len) {
                best = Some(Run { at, from, len });
            }
        }
    }
    best
}

fn prompt_only(timings: Timings) -> Generation {
    Generation {
        text: String::new(),
        raw: String::new(),
        stop_reason: StopReason::PromptOnly,
        timings,
    }
}

/// Decodes `tokens` in sequence 0 at the positions after `cached` (logits where `logits(i)`),
/// then records them as cached. A failed decode leaves the cache in an unknown state, so it is
/// cleared.
fn decode_after(
    ctx: &mut LlamaContext,
    batch: &mut LlamaBatch,
    cached: &mut Vec<LlamaToken>,
    tokens: &[LlamaToken],
    logits: impl Fn(usize) -> bool,
) -> Result<(), String> {
    batch.clear();
    let start = cached.len();
    for (i, t) in tokens.iter().enumerate() {
        batch
            .add(*t, (start + i) as i32, &[0], logits(i))
            .map_err(|e| e.to_string())?;
    }
    if let Err(e) = ctx.decode(batch) {
        ctx.clear_kv_cache();
        cached.clear();
        return Err(e.to_string());
    }
    cached.extend_from_slice(tokens);
    Ok(())
}

/// What a probe's result depends on besides the model: this build of inkling (and llama.cpp),
/// the thread count, GPU offload and the CPU.
fn probe_identity(config: &EngineConfig) -> String {
    let exe = std::env::current_exe()
        .and_then(std::fs::metadata)
        .map(|m| {
            let mtime = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            format!("{}:{mtime}", m.len())
        })
        .unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(str::to_string)
        })
        .unwrap_or_default();
    format!(
        "{} {exe} threads={} gpu={} {cpu}",
        env!("CARGO_PKG_VERSION"),
        config.threads,
        config.gpu_layers
    )
}

/// Where a probe's result is saved: the snapshot directory, keyed by the model and
/// [`probe_identity`].
fn probe_path(store: &Store, config: &EngineConfig) -> std::path::PathBuf {
    let mut h = super::kvstore::Fnv64::new();
    h.write(&store.model_fp.to_le_bytes());
    h.write(probe_identity(config).as_bytes());
    store
        .kv
        .dir()
        .join(format!("probe-{:016x}.json", h.finish()))
}

/// A probe saved by an earlier start; a missing or unreadable file means probing again.
fn load_probe(path: &std::path::Path) -> Option<super::BatchProbe> {
    let mut p = std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<super::BatchProbe>(&b).ok())
        .filter(|p| p.one_ms > 0.0 && p.three_ms > 0.0)?;
    p.from_cache = true;
    p.took_ms = 0.0;
    Some(p)
}

fn save_probe(path: &std::path::Path, probe: &super::BatchProbe) {
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(path, serde_json::to_vec(probe).unwrap_or_default()));
    if let Err(e) = written {
        tracing::debug!("cannot save the batch probe: {e}");
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Length of the longest common prefix of two token lists.
fn common_prefix(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn as_ids(tokens: &[LlamaToken]) -> Vec<i32> {
    tokens.iter().map(|t| t.0).collect()
}

/// The suggestion as it streams in.
#[derive(Default)]
struct Decoded {
    bytes: Vec<u8>,
    text: String,
    generated: usize,
}

/// The draft model: its own context and KV cache over the same tokens as the target.
struct Draft<'m> {
    ctx: LlamaContext<'m>,
    cached: Vec<LlamaToken>,
    batch: LlamaBatch<'static>,
}

impl Draft<'_> {
    fn argmax(&self) -> LlamaToken {
        let logits = self.ctx.get_logits_ith(self.batch.n_tokens() - 1);
        let best = logits
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i);
        LlamaToken(best as i32)
    }

    fn eval(&mut self, tokens: &[LlamaToken]) -> Result<(), EngineError> {
        decode_after(
            &mut self.ctx,
            &mut self.batch,
            &mut self.cached,
            tokens,
            |i| i + 1 == tokens.len(),
        )
        .map_err(|e| EngineError::Decode(format!("draft: {e}")))
    }

    /// Brings the draft's KV cache to `context` (all but its last token stay; the last is
    /// evaluated for fresh logits).
    fn sync(
        &mut self,
        context: &[LlamaToken],
        cancel: &super::CancelToken,
    ) -> Result<(), EngineError> {
        self.align(context, context.len().saturating_sub(1));
        for chunk in context[self.cached.len()..].chunks(PROMPT_CHUNK) {
            if cancel.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            self.eval(chunk)?;
        }
        Ok(())
    }

    /// Number of context tokens the draft would have to evaluate before proposing.
    fn lag(&self, context: &[LlamaToken]) -> usize {
        context.len() - common_prefix(&self.cached, context)
    }

    /// Drops the cache after its common prefix with `context`, keeping at most `keep` tokens.
    fn align(&mut self, context: &[LlamaToken], keep: usize) {
        let reuse = common_prefix(&self.cached, context).min(keep);
        if reuse < self.cached.len() {
            if self
                .ctx
                .kv_cache_seq_rm(0, Some(reuse as u32), None)
                .is_err()
            {
                self.ctx.clear_kv_cache();
                self.cached.clear();
                return;
            }
            self.cached.truncate(reuse);
        }
    }

    fn propose(
        &mut self,
        context: &[LlamaToken],
        k: usize,
        cancel: &super::CancelToken,
    ) -> Result<Vec<LlamaToken>, EngineError> {
        if context.is_empty() || k == 0 {
            return Ok(Vec::new());
        }
        self.sync(context, cancel)?;
        let mut out = Vec::with_capacity(k);
        for i in 0..k {
            let t = self.argmax();
            out.push(t);
            if i + 1 < k {
                self.eval(&[t])?;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::{LlamaToken, Run, find_run, utf8_prefix};

    #[test]
    fn finds_the_chunks_after_a_changed_one() {
        let t = |v: &[i32]| v.iter().map(|&i| LlamaToken(i)).collect::<Vec<_>>();
        let sep = LlamaToken(-1);
        // repo, chunk A, chunk B (changed), chunk C, FIM part.
        let a: Vec<i32> = (100..140).collect();
        let c: Vec<i32> = (300..340).collect();
        let build = |b: &[i32]| {
            let mut v = vec![1, -1];
            v.extend(&a);
            v.push(-1);
            v.extend(b);
            v.push(-1);
            v.extend(&c);
            v.extend([7, 8, 9]);
            t(&v)
        };
        let old = build(&[200, 201, 202]);
        let new = build(&[200, 250, 251, 252, 253]);
        let p = super::common_prefix(&old, &new);
        assert_eq!(p, 2 + 40 + 2);
        let run = find_run(&old, &new, p, new.len() - 1, sep).unwrap();
        assert_eq!(
            run,
            Run {
                at: 2 + 40 + 1 + 5,
                from: 2 + 40 + 1 + 3,
                len: 1 + 40 + 2
            }
        );
        // A run too short to be worth moving.
        assert_eq!(find_run(&old, &new, p, new.len() - 30, sep), None);
    }

    #[test]
    fn utf8_waits_for_whole_characters() {
        let s = "é😀".as_bytes();
        assert_eq!(utf8_prefix(&s[..1]), "");
        assert_eq!(utf8_prefix(&s[..2]), "é");
        assert_eq!(utf8_prefix(&s[..5]), "é");
        assert_eq!(utf8_prefix(s), "é😀");
        assert_eq!(utf8_prefix(b"a\xffb"), "a\u{FFFD}b");
    }
}
