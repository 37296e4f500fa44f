//! The inference engine: one owner thread for llama.cpp, a cloneable handle for everyone else.
//!
//! llama.cpp's context is not `Send`, so the model and its context live on a single thread
//! ([`worker`]). Callers send [`Job`]s that carry a reply channel and a [`CancelToken`]; the worker
//! checks the token between prompt chunks and between decode steps and answers
//! [`EngineError::Cancelled`] promptly. Start-up failure (missing file, not a GGUF, no FIM tokens)
//! comes back on a ready channel from [`Engine::spawn`], never as a panic.
//!
//! Architecture Invariant: the engine knows prompts ([`crate::prompt::Prompt`]) and stop rules, but
//! nothing about documents, editors or LSP.

mod decode;
mod draft;
pub mod fim;
pub mod kv;
mod load;
mod probe;
mod revalidate;
mod tokens;
mod worker;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::oneshot;

use crate::prompt::Prompt;
use crate::stop::StopRules;

pub use fim::{FimFamily, FimTokens};

/// Called with load progress in 0.0..=1.0, from the engine thread.
pub type ProgressFn = Arc<dyn Fn(f32) + Send + Sync>;

/// How to load the model.
#[derive(Clone)]
pub struct EngineConfig {
    pub model: PathBuf,
    pub threads: usize,
    pub ctx_size: u32,
    /// Layers offloaded to the GPU (needs the `cuda` feature).
    pub gpu_layers: u32,
    pub progress: Option<ProgressFn>,
    /// A smaller model with the same vocabulary, for speculative decoding.
    pub draft_model: Option<PathBuf>,
    /// llama.cpp's automatic flash attention (faster prompts). Whenever speculation is used the
    /// context runs without it: a flash-attention pass over one token reduces in a different
    /// order than over several, so verified tokens would differ from plain decoding.
    pub flash_attention: bool,
    /// The speculation mode asked for. Anything but `Off` probes verification batches at
    /// start-up; `Auto` then keeps plain decoding (with flash attention) where they do not pay.
    pub speculation: crate::speculative::Speculation,
    /// Where prefix KV snapshots persist across restarts; `None` keeps them in memory only.
    pub kv_dir: Option<PathBuf>,
    /// Size cap of `kv_dir`; least recently used snapshots go first.
    pub kv_cap_bytes: u64,
    /// How long the engine must be idle before `auto` measures batches again when its decision
    /// rests on a saved or noisy probe.
    pub reprobe_after_idle: Duration,
}

impl std::fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineConfig")
            .field("model", &self.model)
            .field("threads", &self.threads)
            .field("ctx_size", &self.ctx_size)
            .field("gpu_layers", &self.gpu_layers)
            .field("draft_model", &self.draft_model)
            .field("flash_attention", &self.flash_attention)
            .field("speculation", &self.speculation)
            .field("kv_dir", &self.kv_dir)
            .finish_non_exhaustive()
    }
}

impl EngineConfig {
    pub fn new(model: PathBuf) -> Self {
        EngineConfig {
            model,
            threads: default_threads(),
            ctx_size: 4096,
            gpu_layers: if cfg!(feature = "cuda") { 999 } else { 0 },
            progress: None,
            draft_model: None,
            flash_attention: true,
            speculation: crate::speculative::Speculation::Off,
            kv_dir: None,
            kv_cap_bytes: 1 << 30,
            reprobe_after_idle: Duration::from_secs(20),
        }
    }
}

/// Engine threads still running in this process.
static LIVE_THREADS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Counts a live engine thread until dropped (also on an early return or a panic).
struct LiveThread;

impl Drop for LiveThread {
    fn drop(&mut self) {
        LIVE_THREADS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Waits up to `timeout` for every engine thread to end; true when none is left. A process must
/// not exit while one is still inside llama.cpp: its teardown would race with the decode. Engine
/// threads end once every handle is dropped and the job in hand is done (cancelled jobs stop
/// within one prompt chunk or decode step).
pub fn wait_for_engine_threads(timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while LIVE_THREADS.load(Ordering::SeqCst) > 0 {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// One thread per core: llama.cpp's thread pool spins at barriers, so oversubscribing hurts.
pub fn default_threads() -> usize {
    let usable = std::thread::available_parallelism().map_or(2, |n| n.get());
    // Hyper-threads share a core's vector units: llama.cpp runs fastest with one thread per
    // physical core, and never with more threads than the process may use.
    physical_cores().map_or(usable, |p| p.min(usable)).max(1)
}

/// Physical cores (distinct core ids per package), from Linux's sysfs topology.
fn physical_cores() -> Option<usize> {
    let mut cores = std::collections::HashSet::new();
    for entry in std::fs::read_dir("/sys/devices/system/cpu").ok()?.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with("cpu") || !name[3..].chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let topo = entry.path().join("topology");
        let read = |f: &str| std::fs::read_to_string(topo.join(f)).ok();
        let (Some(core), Some(pkg)) = (read("core_id"), read("physical_package_id")) else {
            continue;
        };
        cores.insert((pkg.trim().to_string(), core.trim().to_string()));
    }
    (!cores.is_empty()).then_some(cores.len())
}

/// A shared flag that asks a job to stop; the engine polls it, async callers can await it.
#[derive(Debug, Clone)]
pub struct CancelToken {
    flag: Arc<AtomicBool>,
    wake: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Default for CancelToken {
    fn default() -> Self {
        CancelToken {
            flag: Arc::new(AtomicBool::new(false)),
            wake: Arc::new(tokio::sync::watch::Sender::new(false)),
        }
    }
}

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::Release);
        self.wake.send_replace(true);
    }
    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }
    /// Resolves once [`CancelToken::cancel`] was called.
    pub async fn cancelled(&self) {
        let mut rx = self.wake.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }
}

/// Something that turns prompts into suggestions: the real [`Engine`], or a fake in protocol tests.
pub trait Generator: Send + Sync + 'static {
    fn submit(
        &self,
        request: GenerateRequest,
        cancel: CancelToken,
    ) -> oneshot::Receiver<Result<Generation, EngineError>>;
    /// Model name for status messages.
    fn name(&self) -> String;
    /// More to tell the user once loaded (what speculation chose), if anything.
    fn details(&self) -> Option<String> {
        None
    }
}

impl Generator for Engine {
    fn submit(
        &self,
        request: GenerateRequest,
        cancel: CancelToken,
    ) -> oneshot::Receiver<Result<Generation, EngineError>> {
        Engine::submit(self, request, cancel)
    }
    fn name(&self) -> String {
        self.info.name.clone()
    }
    fn details(&self) -> Option<String> {
        self.info.speculation_summary()
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    pub prompt: Prompt,
    pub stop: StopRules,
    /// Zero only evaluates the prompt (warms the KV cache).
    pub max_tokens: usize,
    /// Once the suggestion has a newline, stop when decoding has taken this long.
    pub time_cap_after_newline: Option<Duration>,
    /// Receives the text generated so far after each token (for joining requests in flight).
    pub partial: Option<Arc<tokio::sync::watch::Sender<String>>>,
    /// How to use speculative decoding; every mode returns the plain greedy answer. An engine
    /// started without speculation (or whose `auto` chose plain decoding) decodes plainly.
    pub speculation: crate::speculative::Speculation,
    /// How much of the KV cache a prompt may reuse.
    pub kv: KvReuse,
    /// A repo-context prefix (with `max_tokens` 0): load its KV from disk when a snapshot exists,
    /// else evaluate it and save one.
    pub persist: bool,
}

impl GenerateRequest {
    /// A request with the defaults for everything but the prompt and stop rules.
    pub fn new(prompt: Prompt, stop: StopRules, max_tokens: usize) -> Self {
        GenerateRequest {
            prompt,
            stop,
            max_tokens,
            time_cap_after_newline: None,
            partial: None,
            speculation: crate::speculative::Speculation::Off,
            kv: KvReuse::default(),
            persist: false,
        }
    }
}

/// How a prompt may reuse what the KV cache holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KvReuse {
    /// The common prefix, plus one run of later chunks moved to new positions (RoPE shift)
    /// when a chunk before them changed.
    #[default]
    Shift,
    /// The longest common token prefix only.
    Prefix,
    /// Nothing: evaluate the whole prompt (for comparisons and tests).
    None,
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    EndOfText,
    StopRule,
    MaxTokens,
    TimeCap,
    PromptOnly,
    /// The completion pipeline did not ask the model (see `complete::Skip`).
    Skipped,
}

/// Where the time went.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Timings {
    pub prompt_tokens: usize,
    /// Tokens whose KV was reused in place (the common prefix, or a snapshot loaded from disk).
    pub reused_tokens: usize,
    /// Tokens whose KV was reused after a position shift.
    #[serde(default)]
    pub shifted_tokens: usize,
    /// Tokens whose KV came from a snapshot on disk.
    #[serde(default)]
    pub loaded_tokens: usize,
    pub evaluated_tokens: usize,
    pub generated_tokens: usize,
    /// From the job's start on the engine thread to the first sampled token.
    pub ttft_ms: f64,
    pub prompt_ms: f64,
    pub total_ms: f64,
    /// Milliseconds the job waited in the queue before the engine took it.
    pub queue_ms: f64,
    pub tokens_per_second: f64,
    /// Speculative decoding: tokens proposed and accepted.
    pub draft_proposed: usize,
    pub draft_accepted: usize,
}

/// A finished suggestion.
#[derive(Debug, Clone, Serialize)]
pub struct Generation {
    /// The suggestion after stop rules and trimming; may be empty.
    pub text: String,
    /// Everything the model produced before the stop (for debugging and benchmarks).
    pub raw: String,
    pub stop_reason: StopReason,
    pub timings: Timings,
}

impl Generation {
    /// The empty generation of a completion that was not asked of the model.
    pub fn skipped() -> Generation {
        Generation {
            text: String::new(),
            raw: String::new(),
            stop_reason: StopReason::Skipped,
            timings: Timings::default(),
        }
    }
}

/// Facts about the loaded model.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub path: PathBuf,
    pub name: String,
    pub fim: FimTokens,
    pub n_ctx: u32,
    pub n_ctx_train: u32,
    pub n_vocab: i32,
    /// The draft model's path, when one is loaded.
    pub draft: Option<String>,
    /// What the start-up probe measured, when speculation was asked for.
    pub batch_probe: Option<BatchProbe>,
}

impl ModelInfo {
    /// One line on what speculation does in this engine, when it was asked for.
    pub fn speculation_summary(&self) -> Option<String> {
        let p = self.batch_probe.as_ref()?;
        let ratio = p.ratio();
        let exact = if p.exact {
            "bit-identical to one-token passes"
        } else {
            "NOT bit-identical to one-token passes: near-ties may differ from plain decoding"
        };
        Some(if p.speculating {
            format!(
                "speculation on (a three-token pass costs {ratio:.1} one-token passes; verification rows {exact})"
            )
        } else {
            format!(
                "speculation off: a three-token pass costs {ratio:.1} one-token passes here, so auto decodes plainly"
            )
        })
    }
}

/// Verification batches on this backend, measured at start-up when speculation was asked for.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct BatchProbe {
    /// Every row of a three-token pass had bit for bit the logits of one-token passes over the
    /// same tokens, so verified tokens are exactly what plain decoding picks. When false, a row
    /// whose top two logits are close defers to a one-token pass (best effort).
    pub exact: bool,
    /// Median milliseconds of a one-token pass and of a three-token pass.
    pub one_ms: f64,
    pub three_ms: f64,
    /// How long the probe took at start-up.
    pub took_ms: f64,
    /// Read from the snapshot directory, where an earlier start with the same model, build,
    /// threads and CPU saved it.
    #[serde(default)]
    pub from_cache: bool,
    /// Whether requests speculate: the mode asked for, or what `auto` chose from the costs.
    pub speculating: bool,
    /// The timed passes varied too much (another workload ran): such a probe proves nothing,
    /// so `auto` decodes plainly and the probe is not saved (the next start probes again).
    #[serde(default)]
    pub noisy: bool,
    /// The costs came from live decoding rather than the start-up probe (`auto` turned
    /// speculation off because they disagreed with the probe).
    #[serde(default)]
    pub live: bool,
}

impl BatchProbe {
    /// What a three-token pass costs in one-token passes.
    pub fn ratio(&self) -> f64 {
        self.three_ms / self.one_ms.max(1e-9)
    }

    /// Whether `auto` may speculate on these numbers: they must be trustworthy and show that
    /// drafting pays.
    pub fn pays(&self) -> bool {
        !self.noisy && crate::speculative::speculation_pays(self.one_ms, self.three_ms)
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error("cancelled")]
    Cancelled,
    #[error("{0}")]
    Load(String),
    #[error("prompt: {0}")]
    Prompt(String),
    #[error("decode failed: {0}")]
    Decode(String),
    #[error("the engine thread has stopped")]
    Gone,
}

pub(crate) struct Job {
    pub request: GenerateRequest,
    pub cancel: CancelToken,
    pub queued_at: std::time::Instant,
    pub reply: oneshot::Sender<Result<Generation, EngineError>>,
}

impl Job {
    /// Cancelled, or nobody waits for the answer any more (the caller went away, e.g. a server
    /// shutting down): either way the work would be thrown away.
    pub fn abandoned(&self) -> bool {
        self.cancel.is_cancelled() || self.reply.is_closed()
    }
}

/// A handle to the engine thread; cheap to clone. The thread ends when the last handle is dropped.
#[derive(Clone)]
pub struct Engine {
    tx: mpsc::Sender<Job>,
    info: Arc<ModelInfo>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("model", &self.info.name)
            .finish()
    }
}

impl Engine {
    /// Starts the engine thread and waits until the model is loaded (or failed to load).
    pub fn spawn(config: EngineConfig) -> Result<Engine, EngineError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        LIVE_THREADS.fetch_add(1, Ordering::SeqCst);
        let live = LiveThread;
        std::thread::Builder::new()
            .name("inkling-engine".into())
            .spawn(move || {
                let _live = live;
                worker::run(config, ready_tx, rx);
            })
            .map_err(|e| EngineError::Load(format!("cannot start the engine thread: {e}")))?;
        let info = ready_rx.recv().map_err(|_| EngineError::Gone)??;
        Ok(Engine {
            tx,
            info: Arc::new(info),
        })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Queues a job; the answer arrives on the returned channel.
    pub fn submit(
        &self,
        request: GenerateRequest,
        cancel: CancelToken,
    ) -> oneshot::Receiver<Result<Generation, EngineError>> {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            request,
            cancel,
            queued_at: std::time::Instant::now(),
            reply,
        };
        if let Err(mpsc::SendError(job)) = self.tx.send(job) {
            let _ = job.reply.send(Err(EngineError::Gone));
        }
        rx
    }

    pub async fn generate(
        &self,
        request: GenerateRequest,
        cancel: CancelToken,
    ) -> Result<Generation, EngineError> {
        self.submit(request, cancel)
            .await
            .unwrap_or(Err(EngineError::Gone))
    }

    /// For synchronous callers (the CLI, tests). Must not be called inside an async runtime.
    pub fn generate_blocking(
        &self,
        request: GenerateRequest,
        cancel: CancelToken,
    ) -> Result<Generation, EngineError> {
        self.submit(request, cancel)
            .blocking_recv()
            .unwrap_or(Err(EngineError::Gone))
    }
}
