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
use super::{
    EngineConfig, EngineError, GenerateRequest, Generation, Job, ModelInfo, StopReason, Timings,
};
use crate::prompt::Piece;

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
    let threads = i32::try_from(config.threads.max(1)).unwrap_or(1);
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(config.ctx_size.max(256)))
        .with_n_batch(512)
        .with_n_ubatch(512)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let ctx = match model.new_context(backend_or_unreachable(), params) {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(EngineError::Load(format!(
                "cannot create a context for {}: {e}",
                info.name
            ))));
            return;
        }
    };
    let mut info = info;
    info.n_ctx = ctx.n_ctx();
    tracing::info!(model = %info.name, n_ctx = info.n_ctx, threads, fim = ?info.fim.family, "model loaded");
    let fim = info.fim.clone();
    if ready.send(Ok(info)).is_err() {
        return;
    }
    // Every token's bytes, for token healing (a few MB for a 150k vocabulary).
    let vocab = model.vocab();
    let pieces: Vec<Vec<u8>> = vocab
        .tokens()
        .map(|t| vocab.token_to_piece(t, false, None))
        .collect();
    let mut w = Worker {
        model: &model,
        ctx,
        fim,
        cached: Vec::new(),
        batch: LlamaBatch::new(512, 1),
        pieces,
    };
    while let Ok(job) = jobs.recv() {
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
    }
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
    };
    Ok((model, info))
}

struct Worker<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    fim: FimTokens,
    /// Tokens whose keys and values are in the KV cache, positions 0..len.
    cached: Vec<LlamaToken>,
    batch: LlamaBatch<'static>,
    pieces: Vec<Vec<u8>>,
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
        self.batch.clear();
        let start = self.cached.len();
        for (i, t) in tokens.iter().enumerate() {
            let last = i + 1 == tokens.len();
            self.batch
                .add(*t, (start + i) as i32, &[0], want_logits && last)
                .map_err(|e| EngineError::Decode(e.to_string()))?;
        }
        if let Err(e) = self.ctx.decode(&mut self.batch) {
            self.reset();
            return Err(EngineError::Decode(e.to_string()));
        }
        self.cached.extend_from_slice(tokens);
        Ok(())
    }

    /// Greedy choice; with `heal`, only among tokens that agree with those bytes (start with
    /// them, or are a non-empty prefix of them).
    fn argmax(&self, heal: Option<&[u8]>) -> LlamaToken {
        let logits = self.ctx.get_logits_ith(self.batch.n_tokens() - 1);
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
        // Reuse the longest common prefix, but always evaluate at least one token for fresh logits.
        let mut reuse = self
            .cached
            .iter()
            .zip(&tokens)
            .take_while(|(a, b)| a == b)
            .count();
        reuse = reuse.min(tokens.len() - 1);
        if reuse < self.cached.len() {
            if self
                .ctx
                .kv_cache_seq_rm(0, Some(reuse as u32), None)
                .is_err()
            {
                self.reset();
                reuse = 0;
            }
            self.cached.truncate(reuse);
        }
        let mut timings = Timings {
            prompt_tokens: tokens.len(),
            reused_tokens: reuse,
            evaluated_tokens: tokens.len() - reuse,
            ..Timings::default()
        };
        let todo = &tokens[reuse..];
        let chunks = todo.len().div_ceil(PROMPT_CHUNK);
        for (i, chunk) in todo.chunks(PROMPT_CHUNK).enumerate() {
            if job.cancel.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            self.eval(chunk, i + 1 == chunks)?;
        }
        timings.prompt_ms = t0.elapsed().as_secs_f64() * 1e3;
        if req.max_tokens == 0 {
            timings.total_ms = timings.prompt_ms;
            return Ok(Generation {
                text: String::new(),
                raw: String::new(),
                stop_reason: StopReason::PromptOnly,
                timings,
            });
        }

        let vocab = self.model.vocab();
        let mut bytes: Vec<u8> = Vec::new();
        let mut text = String::new();
        let mut stop_reason = StopReason::MaxTokens;
        let mut keep: Option<usize> = None;
        let decode_start = Instant::now();
        loop {
            let healing = heal.take().filter(|h| !h.is_empty());
            let token = self.argmax(healing.as_deref());
            if timings.generated_tokens == 0 {
                timings.ttft_ms = t0.elapsed().as_secs_f64() * 1e3;
            }
            if self.is_stop(token) {
                stop_reason = StopReason::EndOfText;
                break;
            }
            timings.generated_tokens += 1;
            let piece = vocab.token_to_piece(token, false, None);
            let skip = match healing {
                // A shorter token covered part of the healed text: constrain the next one too.
                Some(h) if h.len() > piece.len() => {
                    heal = Some(h[piece.len()..].to_vec());
                    piece.len()
                }
                Some(h) => h.len(),
                None => 0,
            };
            bytes.extend_from_slice(&piece[skip..]);
            text = utf8_prefix(&bytes);
            if let Some(p) = &req.partial {
                p.send_replace(text.clone());
            }
            if let Some(cut) = req.stop.check(&text) {
                keep = Some(cut);
                stop_reason = StopReason::StopRule;
                break;
            }
            if timings.generated_tokens >= req.max_tokens {
                break;
            }
            if let Some(cap) = req.time_cap_after_newline {
                if text.contains('\n') && decode_start.elapsed() >= cap {
                    // Keep whole lines only.
                    keep = text.rfind('\n');
                    stop_reason = StopReason::TimeCap;
                    break;
                }
            }
            if job.cancel.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            self.eval(&[token], true)?;
        }
        let decode_s = decode_start.elapsed().as_secs_f64();
        timings.total_ms = t0.elapsed().as_secs_f64() * 1e3;
        if decode_s > 0.0 {
            timings.tokens_per_second = timings.generated_tokens as f64 / decode_s;
        }
        let raw = match keep {
            Some(k) => text[..k].to_string(),
            None => text,
        };
        Ok(Generation {
            text: req.stop.finish(&raw),
            raw,
            stop_reason,
            timings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::utf8_prefix;

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
