//! The language server: document sync, completion requests, model lifecycle.
//!
//! Latency rules: the model never runs on the LSP I/O task (it has its own thread), a completion
//! request only awaits; a newer request (or `$/cancelRequest`, or a keystroke) cancels the engine
//! job of the older one; typed-through and prefetched suggestions answer without the model.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use ropey::Rope;
use serde_json::Value;
use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer};

use super::protocol::{
    self, CompleteResult, CompletionStats, CompletionStatsParams, Source, Status, StatusParams,
};
use crate::complete::{Completer, Shown, SuggestionCache};
use crate::config::Settings;
use crate::context::{RepoContext, WorkspaceIndex};
use crate::document::{self, Document, Edit};
use crate::engine::{CancelToken, EngineError, Generation, Generator};
use crate::position::Encoding;
use crate::prompt::{Anchor, ContextFile, FileView};
use crate::syntax::{Lang, Shape, Syntax};

/// Loads a generator for the given settings (blocking; called off the I/O task).
pub type Loader = Arc<
    dyn Fn(
            &Settings,
            Option<crate::engine::ProgressFn>,
        ) -> std::result::Result<Arc<dyn Generator>, EngineError>
        + Send
        + Sync,
>;

/// The real loader: llama.cpp on its engine thread.
pub fn llama_loader() -> Loader {
    Arc::new(|settings, progress| {
        let mut cfg = settings.engine_config();
        cfg.progress = progress;
        crate::engine::Engine::spawn(cfg).map(|e| Arc::new(e) as Arc<dyn Generator>)
    })
}

enum EngineState {
    Loading,
    Ready(Arc<dyn Generator>),
    Failed(String),
}

struct DocState {
    doc: Document,
    /// The tree-sitter tree, for languages with a grammar.
    syntax: Option<Syntax>,
    path: String,
    anchor: Option<Anchor>,
    cache: SuggestionCache,
    /// Set when an edit could not be applied; cleared by the next full-text change.
    out_of_sync: bool,
    /// Repo-context chunks for this file; changes only on open, save and index updates.
    context: Arc<Vec<ContextFile>>,
    /// True once the engine holds (and has saved) the KV of this context's prefix.
    warmed: bool,
}

impl DocState {
    fn new(doc: Document, syntax: Option<Syntax>, path: String) -> Self {
        DocState {
            doc,
            syntax,
            path,
            anchor: None,
            cache: SuggestionCache::default(),
            out_of_sync: false,
            context: Arc::new(Vec::new()),
            warmed: false,
        }
    }
}

/// A suggestion with everything the three request kinds need to answer.
struct Answer {
    text: String,
    /// Start of the replaced range (the cursor, or the start of a selected completion item).
    start: Position,
    end: Position,
    source: Source,
    latency_ms: f64,
    timings: Option<crate::engine::Timings>,
}

/// A model job, owned by the server rather than by the request that started it: requests that
/// only typed through its text wait for it instead of cancelling it.
struct Job {
    uri: Uri,
    /// The document state the job completes.
    at: Shown,
    token: CancelToken,
    partial: tokio::sync::watch::Receiver<String>,
    done: tokio::sync::watch::Receiver<Option<std::result::Result<Generation, EngineError>>>,
    /// Requests waiting for this job.
    waiters: std::sync::atomic::AtomicUsize,
}

/// How long a job whose requests were all cancelled keeps running, waiting for the next keystroke's
/// request to join it; editors cancel the previous request on every keystroke.
const ORPHAN_GRACE: Duration = Duration::from_millis(150);

/// Counts a request waiting on a job; the last one to leave cancels the job after a grace period.
struct Waiter(Arc<Job>);

impl Waiter {
    fn new(job: &Arc<Job>) -> Self {
        job.waiters
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Waiter(Arc::clone(job))
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if self
            .0
            .waiters
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst)
            != 1
        {
            return;
        }
        let job = Arc::clone(&self.0);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                tokio::time::sleep(ORPHAN_GRACE).await;
                if job.waiters.load(std::sync::atomic::Ordering::SeqCst) == 0
                    && job.done.borrow().is_none()
                {
                    job.token.cancel();
                }
            });
        } else {
            job.token.cancel();
        }
    }
}

pub struct Server {
    client: Client,
    loader: Loader,
    docs: DashMap<Uri, DocState>,
    settings: RwLock<Settings>,
    engine: RwLock<EngineState>,
    encoding: RwLock<Encoding>,
    root: RwLock<Option<PathBuf>>,
    /// The newest request: a newer one makes it answer null (latest wins).
    latest: Mutex<Option<CancelToken>>,
    /// The model job in flight; a request that only typed through its text so far joins it.
    job: Mutex<Option<Arc<Job>>>,
    prefetch: Mutex<Option<CancelToken>>,
    /// The workspace index and recent-files ring, once the walk is done.
    repo: RwLock<Option<RepoContext>>,
    /// The repo-prefix warm-up in flight; any completion pre-empts it.
    warm: Mutex<Option<CancelToken>>,
    watch_supported: std::sync::atomic::AtomicBool,
    /// Bumped on each (re)load so an old load finishing late does not win.
    generation: std::sync::atomic::AtomicU64,
    progress_supported: std::sync::atomic::AtomicBool,
}

impl Server {
    pub fn new(client: Client, loader: Loader) -> Self {
        Server {
            client,
            loader,
            docs: DashMap::new(),
            settings: RwLock::new(Settings::default()),
            engine: RwLock::new(EngineState::Loading),
            encoding: RwLock::new(Encoding::Utf16),
            root: RwLock::new(None),
            latest: Mutex::new(None),
            job: Mutex::new(None),
            prefetch: Mutex::new(None),
            repo: RwLock::new(None),
            warm: Mutex::new(None),
            watch_supported: std::sync::atomic::AtomicBool::new(false),
            generation: std::sync::atomic::AtomicU64::new(0),
            progress_supported: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn enc(&self) -> Encoding {
        *self.encoding.read().expect("encoding lock")
    }

    fn settings(&self) -> Settings {
        self.settings.read().expect("settings lock").clone()
    }

    async fn status(&self, state: &str, message: Option<String>) {
        self.client
            .send_notification::<Status>(StatusParams {
                state: state.to_string(),
                message,
            })
            .await;
    }

    /// Loads (or reloads) the model in the background, reporting `$/progress`.
    fn start_loading(self: &Arc<Self>) {
        let me = Arc::clone(self);
        let generation = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        *self.engine.write().expect("engine lock") = EngineState::Loading;
        tokio::spawn(async move {
            let settings = me.settings();
            let model = settings.model_path();
            me.status("loading", Some(model.display().to_string()))
                .await;
            let token = NumberOrString::String("inkling/load".into());
            let progress = if me
                .progress_supported
                .load(std::sync::atomic::Ordering::Relaxed)
                && me
                    .client
                    .create_work_done_progress(token.clone())
                    .await
                    .is_ok()
            {
                Some(
                    me.client
                        .progress(token, "inkling: loading model")
                        .with_message(model.display().to_string())
                        .with_percentage(0)
                        .begin()
                        .await,
                )
            } else {
                None
            };
            let (ptx, mut prx) = tokio::sync::mpsc::unbounded_channel::<u32>();
            let cb: crate::engine::ProgressFn = Arc::new(move |p: f32| {
                let _ = ptx.send((p * 100.0) as u32);
            });
            let loader = Arc::clone(&me.loader);
            let s2 = settings.clone();
            let mut task = tokio::task::spawn_blocking(move || loader(&s2, Some(cb)));
            let mut last = 0;
            let result = loop {
                tokio::select! {
                    r = &mut task => break r,
                    Some(p) = prx.recv() => {
                        // Report in steps of 10% to keep the channel quiet.
                        if p >= last + 10 {
                            last = p;
                            if let Some(pr) = &progress { pr.report(p.min(100)).await; }
                        }
                    }
                }
            };
            let result = result
                .unwrap_or_else(|e| Err(EngineError::Load(format!("model loader panicked: {e}"))));
            if me.generation.load(std::sync::atomic::Ordering::SeqCst) != generation {
                return; // A newer load replaced this one.
            }
            match result {
                Ok(engine) => {
                    let name = engine.name();
                    let details = engine
                        .details()
                        .map(|d| format!("; {d}"))
                        .unwrap_or_default();
                    *me.engine.write().expect("engine lock") = EngineState::Ready(engine);
                    if let Some(pr) = progress {
                        pr.finish_with_message(format!("{name} ready")).await;
                    }
                    me.client
                        .log_message(
                            MessageType::INFO,
                            format!("inkling: model {name} ready{details}"),
                        )
                        .await;
                    me.status("ready", Some(name)).await;
                    me.warm_latest();
                }
                Err(e) => {
                    let msg = e.to_string();
                    tracing::error!("{msg}");
                    *me.engine.write().expect("engine lock") = EngineState::Failed(msg.clone());
                    if let Some(pr) = progress {
                        pr.finish_with_message("failed").await;
                    }
                    me.client
                        .show_message(MessageType::ERROR, format!("inkling: {msg}"))
                        .await;
                    me.status("error", Some(msg)).await;
                }
            }
        });
    }

    fn generator(&self) -> Option<Arc<dyn Generator>> {
        match &*self.engine.read().expect("engine lock") {
            EngineState::Ready(g) => Some(Arc::clone(g)),
            EngineState::Loading => {
                tracing::debug!("no completion: the model is still loading");
                None
            }
            EngineState::Failed(e) => {
                tracing::debug!("no completion: the model failed to load: {e}");
                None
            }
        }
    }

    fn relative_path(&self, uri: &Uri) -> String {
        let path = uri
            .to_file_path()
            .map(|p| p.into_owned())
            .unwrap_or_else(|| PathBuf::from(uri.path().as_str()));
        let root = self.root.read().expect("root lock").clone();
        match root.as_deref().and_then(|r| path.strip_prefix(r).ok()) {
            Some(rel) => rel.to_string_lossy().into_owned(),
            None => path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| uri.as_str().to_string()),
        }
    }

    fn repo_name(&self) -> String {
        self.root
            .read()
            .expect("root lock")
            .as_deref()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "workspace".into())
    }

    /// Registers a new request: older requests give up (they answer null).
    fn new_request(&self) -> CancelToken {
        let token = CancelToken::new();
        if let Some(old) = self
            .latest
            .lock()
            .expect("latest lock")
            .replace(token.clone())
        {
            old.cancel();
        }
        token
    }

    /// Stops the model job in flight and any prefetch work.
    fn cancel_jobs(&self) {
        if let Some(j) = self.job.lock().expect("job lock").take() {
            j.token.cancel();
        }
        if let Some(p) = self.prefetch.lock().expect("prefetch lock").take() {
            p.cancel();
        }
        if let Some(w) = self.warm.lock().expect("warm lock").take() {
            w.cancel();
        }
    }

    /// Walks the workspace in the background, then gives every open document its context.
    fn start_indexing(self: &Arc<Self>) {
        let settings = self.settings();
        let Some(root) = self.root.read().expect("root lock").clone() else {
            return;
        };
        if settings.context_tokens == 0 {
            return;
        }
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let t = Instant::now();
            let r = root.clone();
            let index = match tokio::task::spawn_blocking(move || WorkspaceIndex::build(&r)).await {
                Ok(i) => i,
                Err(e) => {
                    tracing::error!("workspace index failed: {e}");
                    return;
                }
            };
            tracing::info!(
                files = index.files.len(),
                ms = t.elapsed().as_millis() as u64,
                root = %root.display(),
                "workspace indexed"
            );
            let mut ctx = RepoContext::new(index, settings.context_tokens);
            // Files opened before the walk finished count as recent, oldest first.
            for d in me.docs.iter() {
                ctx.touch(&d.path);
            }
            *me.repo.write().expect("repo lock") = Some(ctx);
            me.refresh_contexts();
            me.warm_latest();
        });
    }

    /// Recomputes every open document's context chunks; unchanged ones stay byte-identical.
    fn refresh_contexts(&self) {
        let repo = self.repo.read().expect("repo lock");
        let Some(ctx) = repo.as_ref() else { return };
        for mut d in self.docs.iter_mut() {
            let chunks = ctx.context_for(&d.path, &d.doc.rope.to_string());
            if *d.context != chunks {
                d.context = Arc::new(chunks);
                d.warmed = false;
            }
        }
    }

    /// Warms the prefix of the most recently used open document.
    fn warm_latest(self: &Arc<Self>) {
        let recent = self
            .repo
            .read()
            .expect("repo lock")
            .as_ref()
            .and_then(|c| c.recent.first().cloned());
        let uri = recent.and_then(|p| {
            self.docs
                .iter()
                .find(|d| d.path == p)
                .map(|d| d.key().clone())
        });
        if let Some(uri) = uri {
            self.warm_context(&uri, true);
        }
    }

    /// Evaluates (or loads from disk) the KV of a document's repo prefix in idle engine time,
    /// reporting `$/progress` when `announce`; the next completion then starts from it.
    fn warm_context(self: &Arc<Self>, uri: &Uri, announce: bool) {
        let Some(engine) = self.generator() else {
            return;
        };
        let (prompt, files) = {
            let Some(st) = self.docs.get(uri) else { return };
            if st.warmed || st.context.is_empty() {
                return;
            }
            (
                crate::prompt::repo_prefix(&self.repo_name(), &st.context, &st.path),
                st.context.len(),
            )
        };
        let mut req = crate::engine::GenerateRequest::new(prompt.clone(), Default::default(), 0);
        req.persist = true;
        let token = CancelToken::new();
        if let Some(old) = self.warm.lock().expect("warm lock").replace(token.clone()) {
            old.cancel();
        }
        let rx = engine.submit(req, token);
        let me = Arc::clone(self);
        let uri = uri.clone();
        tokio::spawn(async move {
            let progress = if announce
                && me
                    .progress_supported
                    .load(std::sync::atomic::Ordering::Relaxed)
            {
                let token = NumberOrString::String(format!("inkling/context/{}", uri.as_str()));
                match me.client.create_work_done_progress(token.clone()).await {
                    Ok(()) => Some(
                        me.client
                            .progress(token, "inkling: repo context")
                            .with_message(format!("{files} files"))
                            .begin()
                            .await,
                    ),
                    Err(_) => None,
                }
            } else {
                None
            };
            let result = rx.await.unwrap_or(Err(EngineError::Gone));
            let message = match &result {
                Ok(g) => {
                    let t = &g.timings;
                    if let Some(mut st) = me.docs.get_mut(&uri) {
                        let now =
                            crate::prompt::repo_prefix(&me.repo_name(), &st.context, &st.path);
                        if now == prompt {
                            st.warmed = true;
                        }
                    }
                    tracing::info!(
                        tokens = t.prompt_tokens,
                        loaded = t.loaded_tokens,
                        evaluated = t.evaluated_tokens,
                        ms = t.total_ms as u64,
                        "repo prefix ready"
                    );
                    format!(
                        "{} tokens ready ({} from disk, {} evaluated) in {:.1} s",
                        t.prompt_tokens,
                        t.loaded_tokens,
                        t.evaluated_tokens,
                        t.total_ms / 1e3
                    )
                }
                Err(EngineError::Cancelled) => "paused for a completion".to_string(),
                Err(e) => {
                    tracing::warn!("repo prefix warm-up failed: {e}");
                    format!("failed: {e}")
                }
            };
            if let Some(p) = progress {
                p.finish_with_message(message).await;
            }
        });
    }

    /// The job in flight, if the user has only typed what it is generating since it started.
    fn joinable(&self, uri: &Uri, rope: &Rope, cursor: usize) -> Option<Arc<Job>> {
        let job = self.job.lock().expect("job lock").clone()?;
        if &job.uri != uri || job.token.is_cancelled() || job.done.borrow().is_some() {
            return None;
        }
        let typed = job.at.typed_since(rope, cursor)?;
        let partial = job.partial.borrow();
        (partial.starts_with(&typed) || typed.starts_with(partial.as_str()))
            .then(|| Arc::clone(&job))
    }

    /// Starts a model job for this state, replacing the one in flight.
    #[allow(clippy::too_many_arguments)]
    fn start_job(
        self: &Arc<Self>,
        uri: &Uri,
        rope: &Rope,
        cursor: usize,
        anchor: Option<Anchor>,
        completer: Completer,
        path: String,
        repo: String,
        syntax: Option<Syntax>,
        shape: Shape,
        context: Arc<Vec<ContextFile>>,
    ) -> Arc<Job> {
        self.cancel_jobs();
        let view = FileView {
            rope,
            cursor,
            path: &path,
            repo: &repo,
        };
        let (plan, mut req) = completer.request_shaped(&view, anchor.as_ref(), &context, shape);
        let (ptx, prx) = tokio::sync::watch::channel(String::new());
        req.partial = Some(Arc::new(ptx));
        let (dtx, drx) = tokio::sync::watch::channel(None);
        let token = CancelToken::new();
        let job = Arc::new(Job {
            uri: uri.clone(),
            at: Shown::new(rope, cursor, String::new(), false),
            token: token.clone(),
            partial: prx,
            done: drx,
            waiters: std::sync::atomic::AtomicUsize::new(0),
        });
        *self.job.lock().expect("job lock") = Some(Arc::clone(&job));
        let rx = completer.engine.submit(req, token);
        let me = Arc::clone(self);
        let (uri, rope) = (uri.clone(), rope.clone());
        tokio::spawn(async move {
            let mut result = rx.await.unwrap_or(Err(EngineError::Gone));
            if let Ok(g) = result.as_mut() {
                let view = FileView {
                    rope: &rope,
                    cursor,
                    path: &path,
                    repo: &repo,
                };
                g.text = completer.fit(syntax.as_ref(), &view, &g.text);
                if let Some(mut state) = me.docs.get_mut(&uri) {
                    state.anchor = Some(plan.anchor);
                    if !g.text.is_empty() {
                        state
                            .cache
                            .insert(Shown::new(&rope, cursor, g.text.clone(), false));
                    }
                }
                if !g.text.is_empty() {
                    me.spawn_prefetch(
                        uri.clone(),
                        &rope,
                        cursor,
                        &g.text,
                        plan.anchor,
                        &completer,
                        &path,
                        &repo,
                        &context,
                    );
                }
                // The prefix is in the cache now: saving its snapshot costs no evaluation.
                me.warm_context(&uri, false);
            }
            dtx.send_replace(Some(result));
        });
        job
    }

    /// The shared path of all three completion requests.
    async fn suggest(
        self: &Arc<Self>,
        uri: &Uri,
        pos: Position,
        invoked: bool,
        selected: Option<&SelectedCompletionInfo>,
    ) -> Result<Option<Answer>> {
        let t0 = Instant::now();
        let enc = self.enc();
        let settings = self.settings();
        // Snapshot the document: ropes clone in O(1), and the lock is not held across awaits.
        let (mut rope, path, anchor, language, cursor, clamped, syntax, context) = {
            let Some(state) = self.docs.get(uri) else {
                return Err(Error::invalid_params(format!(
                    "unknown document {}",
                    uri.as_str()
                )));
            };
            if state.out_of_sync {
                tracing::warn!(
                    uri = uri.as_str(),
                    "document out of sync; waiting for a full-text change"
                );
                return Ok(None);
            }
            let c = protocol::to_char(&state.doc.rope, pos, enc);
            (
                state.doc.rope.clone(),
                state.path.clone(),
                state.anchor,
                state.doc.language.clone(),
                c.char_idx,
                c.clamped,
                state.syntax.clone(),
                Arc::clone(&state.context),
            )
        };
        if clamped {
            tracing::debug!(
                line = pos.line,
                character = pos.character,
                "position clamped"
            );
        }
        if !settings.enable || settings.disabled_languages.contains(&language) {
            return Ok(None);
        }
        if let Err(e) = document::completable(&rope) {
            tracing::info!(uri = uri.as_str(), "no completion: document {e}");
            return Ok(None);
        }
        let start_pos = protocol::to_position(&rope, cursor, enc);
        // A selected completion item in the editor's menu: complete as if it were inserted.
        let (mut cursor, mut start) = (cursor, start_pos);
        let mut lead = String::new();
        if let Some(sel) = selected {
            if let Some((s, e)) = protocol::to_char_range(&rope, sel.range, enc) {
                if e == cursor {
                    rope.remove(s..e);
                    rope.insert(s, &sel.text);
                    cursor = s + sel.text.chars().count();
                    start = sel.range.start;
                    lead = sel.text.clone();
                }
            }
        }
        let end = start_pos;

        let token = self.new_request();
        // Typed-through or prefetched: no model needed.
        if lead.is_empty() {
            let hit = self
                .docs
                .get(uri)
                .and_then(|s| s.cache.lookup(&rope, cursor));
            if let Some((text, prefetched)) = hit {
                return Ok(Some(Answer {
                    text,
                    start,
                    end,
                    source: if prefetched {
                        Source::Prefetch
                    } else {
                        Source::TypedThrough
                    },
                    latency_ms: t0.elapsed().as_secs_f64() * 1e3,
                    timings: None,
                }));
            }
        }
        let Some(engine) = self.generator() else {
            return Ok(None);
        };
        let completer = Completer::new(engine, settings.clone());
        let repo = self.repo_name();
        // A selected menu item changed the text: the tree no longer matches it.
        let syntax = if lead.is_empty() { syntax } else { None };
        let shape = completer.shape(
            syntax.as_ref(),
            &FileView {
                rope: &rope,
                cursor,
                path: &path,
                repo: &repo,
            },
        );
        if shape == Shape::Nothing {
            return Ok(None);
        }

        // Typing through what the model is still writing: wait for it instead of starting over.
        let mut joined = if lead.is_empty() {
            self.joinable(uri, &rope, cursor)
        } else {
            None
        };
        loop {
            let job = match joined.take() {
                Some(j) => j,
                None => {
                    if !invoked && settings.debounce_ms > 0 {
                        tokio::select! {
                            () = tokio::time::sleep(Duration::from_millis(settings.debounce_ms)) => {}
                            () = token.cancelled() => return Ok(None),
                        }
                    }
                    self.start_job(
                        uri,
                        &rope,
                        cursor,
                        anchor,
                        completer.clone(),
                        path.clone(),
                        repo.clone(),
                        syntax.clone(),
                        shape,
                        Arc::clone(&context),
                    )
                }
            };
            let _waiting = Waiter::new(&job);
            let mut done = job.done.clone();
            let result = tokio::select! {
                r = done.wait_for(Option::is_some) => match r {
                    Ok(v) => v.clone().unwrap_or(Err(EngineError::Gone)),
                    Err(_) => Err(EngineError::Gone),
                },
                () = token.cancelled() => return Ok(None),
            };
            let generation = match result {
                Ok(g) => g,
                Err(EngineError::Cancelled) => return Ok(None),
                Err(e) => {
                    tracing::warn!("completion failed: {e}");
                    return Ok(None);
                }
            };
            let fresh = job.at.cursor == cursor;
            let text = if fresh {
                Some(generation.text.clone())
            } else {
                let shown = Shown {
                    suggestion: generation.text.clone(),
                    ..job.at.clone()
                };
                shown.typed_through(&rope, cursor)
            };
            match text {
                Some(t) => {
                    let text = format!("{lead}{t}");
                    if text.is_empty() {
                        return Ok(None);
                    }
                    return Ok(Some(Answer {
                        text,
                        start,
                        end,
                        source: if fresh {
                            Source::Model
                        } else {
                            Source::TypedThrough
                        },
                        latency_ms: t0.elapsed().as_secs_f64() * 1e3,
                        timings: Some(generation.timings),
                    }));
                }
                // The joined job wrote something else than what was typed: ask the model anew.
                None if !fresh => continue,
                None => return Ok(None),
            }
        }
    }

    /// Computes, in idle engine time, the suggestion that follows accepting `suggestion`; this
    /// also leaves the KV cache warm for that state. Any new request cancels it.
    #[allow(clippy::too_many_arguments)]
    fn spawn_prefetch(
        self: &Arc<Self>,
        uri: Uri,
        rope: &Rope,
        cursor: usize,
        suggestion: &str,
        anchor: Anchor,
        completer: &Completer,
        path: &str,
        repo: &str,
        context: &[ContextFile],
    ) {
        let shown = Shown::new(rope, cursor, suggestion.to_string(), false);
        let (accepted, new_cursor) = shown.accepted(rope);
        let view = FileView {
            rope: &accepted,
            cursor: new_cursor,
            path,
            repo,
        };
        let (_, req) = completer.request(&view, Some(&anchor), context);
        let token = CancelToken::new();
        if let Some(old) = self
            .prefetch
            .lock()
            .expect("prefetch lock")
            .replace(token.clone())
        {
            old.cancel();
        }
        let rx = completer.engine.submit(req, token);
        let me = Arc::clone(self);
        tokio::spawn(async move {
            if let Ok(Ok(g)) = rx.await {
                if !g.text.is_empty() {
                    if let Some(mut state) = me.docs.get_mut(&uri) {
                        state
                            .cache
                            .insert(Shown::new(&accepted, new_cursor, g.text, true));
                    }
                }
            }
        });
    }

    async fn stats(&self, a: &Answer) {
        let generated = a.timings.as_ref().map_or(0, |t| t.generated_tokens);
        self.client
            .send_notification::<CompletionStats>(CompletionStatsParams {
                latency_ms: a.latency_ms,
                source: a.source,
                generated_tokens: generated,
            })
            .await;
    }

    fn apply_settings(self: &Arc<Self>, value: &Value) {
        // Accept both `{inkling: {...}}` and the bare object.
        let v = value.get("inkling").unwrap_or(value);
        if v.is_null() {
            return;
        }
        // Keys left out keep their current values: clients may send only what changed.
        let mut merged = serde_json::to_value(self.settings()).unwrap_or_default();
        if let (Some(m), Some(changes)) = (merged.as_object_mut(), v.as_object()) {
            for (k, val) in changes {
                m.insert(k.clone(), val.clone());
            }
        }
        let new: Settings = match serde_json::from_value(merged) {
            Ok(s) => s,
            Err(e) => {
                let me = Arc::clone(self);
                let msg = format!("inkling: ignoring invalid settings: {e}");
                tokio::spawn(
                    async move { me.client.show_message(MessageType::WARNING, msg).await },
                );
                return;
            }
        };
        let reload = {
            let mut cur = self.settings.write().expect("settings lock");
            let reload = cur.needs_reload(&new);
            *cur = new;
            reload
        };
        if reload {
            self.start_loading();
        }
    }

    fn inline_item(&self, a: &Answer) -> InlineCompletionItem {
        InlineCompletionItem {
            insert_text: a.text.clone(),
            filter_text: None,
            range: Some(Range::new(a.start, a.end)),
            command: None,
            insert_text_format: None,
        }
    }
}

/// Documents larger than this get no syntax tree: parsing them would hold up the I/O task.
const MAX_SYNTAX_BYTES: usize = 2 << 20;

fn syntax_for(lang: Option<Lang>, rope: &Rope) -> Option<Syntax> {
    lang.filter(|_| rope.len_bytes() <= MAX_SYNTAX_BYTES)
        .map(|l| Syntax::new(l, rope))
}

/// Wraps `Arc<Server>` so the `LanguageServer` impl can hand clones to background tasks.
#[derive(Clone)]
pub struct Handle(pub Arc<Server>);

impl Handle {
    pub async fn inline_completion(
        &self,
        params: InlineCompletionParams,
    ) -> Result<Option<InlineCompletionResponse>> {
        let uri = params.text_document_position.text_document.uri;
        let pos = params.text_document_position.position;
        let invoked = params.context.trigger_kind == InlineCompletionTriggerKind::INVOKED;
        let a = self
            .0
            .suggest(
                &uri,
                pos,
                invoked,
                params.context.selected_completion_info.as_ref(),
            )
            .await?;
        let Some(a) = a else { return Ok(None) };
        self.0.stats(&a).await;
        Ok(Some(InlineCompletionResponse::Array(vec![
            self.0.inline_item(&a),
        ])))
    }

    pub async fn inkling_complete(&self, params: InlineCompletionParams) -> Result<CompleteResult> {
        let uri = params.text_document_position.text_document.uri;
        let pos = params.text_document_position.position;
        let t0 = Instant::now();
        let a = self
            .0
            .suggest(
                &uri,
                pos,
                true,
                params.context.selected_completion_info.as_ref(),
            )
            .await?;
        Ok(match a {
            Some(a) => CompleteResult {
                items: vec![self.0.inline_item(&a)],
                source: a.source,
                latency_ms: a.latency_ms,
                timings: a.timings,
            },
            None => CompleteResult {
                items: vec![],
                source: Source::None,
                latency_ms: t0.elapsed().as_secs_f64() * 1e3,
                timings: None,
            },
        })
    }
}

impl LanguageServer for Handle {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        let me = &self.0;
        let offered = params
            .capabilities
            .general
            .as_ref()
            .and_then(|g| g.position_encodings.clone())
            .unwrap_or_default();
        let (enc, kind) = if offered.contains(&PositionEncodingKind::UTF8) {
            (Encoding::Utf8, PositionEncodingKind::UTF8)
        } else {
            (Encoding::Utf16, PositionEncodingKind::UTF16)
        };
        *me.encoding.write().expect("encoding lock") = enc;
        let progress = params
            .capabilities
            .window
            .as_ref()
            .and_then(|w| w.work_done_progress)
            .unwrap_or(false);
        me.progress_supported
            .store(progress, std::sync::atomic::Ordering::Relaxed);
        let watch = params
            .capabilities
            .workspace
            .as_ref()
            .and_then(|w| w.did_change_watched_files.as_ref())
            .and_then(|d| d.dynamic_registration)
            .unwrap_or(false);
        me.watch_supported
            .store(watch, std::sync::atomic::Ordering::Relaxed);
        #[allow(deprecated)]
        let root = params
            .workspace_folders
            .as_ref()
            .and_then(|f| f.first())
            .and_then(|f| f.uri.to_file_path().map(|p| p.into_owned()))
            .or_else(|| {
                params
                    .root_uri
                    .as_ref()
                    .and_then(|u| u.to_file_path().map(|p| p.into_owned()))
            });
        *me.root.write().expect("root lock") = root;
        if let Some(opts) = &params.initialization_options {
            match serde_json::from_value::<Settings>(opts.get("inkling").unwrap_or(opts).clone()) {
                Ok(s) => *me.settings.write().expect("settings lock") = s,
                Err(e) => tracing::warn!("ignoring invalid initializationOptions: {e}"),
            }
        }
        Ok(InitializeResult {
            capabilities: ServerCapabilities {
                position_encoding: Some(kind),
                text_document_sync: Some(TextDocumentSyncCapability::Options(
                    TextDocumentSyncOptions {
                        open_close: Some(true),
                        change: Some(TextDocumentSyncKind::INCREMENTAL),
                        save: Some(TextDocumentSyncSaveOptions::Supported(true)),
                        ..Default::default()
                    },
                )),
                completion_provider: Some(CompletionOptions {
                    trigger_characters: None,
                    resolve_provider: Some(false),
                    ..Default::default()
                }),
                inline_completion_provider: Some(OneOf::Left(true)),
                ..Default::default()
            },
            server_info: Some(ServerInfo {
                name: "inkling".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
            offset_encoding: None,
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        self.0.start_loading();
        self.0.start_indexing();
        if self
            .0
            .watch_supported
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            let options = DidChangeWatchedFilesRegistrationOptions {
                watchers: vec![FileSystemWatcher {
                    glob_pattern: GlobPattern::String("**/*".into()),
                    kind: None,
                }],
            };
            let registration = Registration {
                id: "inkling/watched-files".into(),
                method: "workspace/didChangeWatchedFiles".into(),
                register_options: serde_json::to_value(options).ok(),
            };
            // Not awaited here: the client answers whenever it likes.
            let client = self.0.client.clone();
            tokio::spawn(async move {
                if let Err(e) = client.register_capability(vec![registration]).await {
                    tracing::info!("no file watching: {e}");
                }
            });
        }
    }

    async fn shutdown(&self) -> Result<()> {
        if let Some(t) = self.0.latest.lock().expect("latest lock").take() {
            t.cancel();
        }
        self.0.cancel_jobs();
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let td = params.text_document;
        let path = self.0.relative_path(&td.uri);
        let doc = Document::new(&td.text, td.version, &td.language_id);
        let syntax = syntax_for(
            Lang::from_language_id(&td.language_id).or_else(|| Lang::from_path(&path)),
            &doc.rope,
        );
        let mut state = DocState::new(doc, syntax, path);
        if let Some(ctx) = self.0.repo.write().expect("repo lock").as_mut() {
            ctx.touch(&state.path);
            state.context = Arc::new(ctx.context_for(&state.path, &td.text));
        }
        let uri = td.uri.clone();
        self.0.docs.insert(td.uri, state);
        self.0.warm_context(&uri, true);
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        // No await before the edits are applied: notifications are handled in arrival order.
        let me = &self.0;
        let enc = me.enc();
        let uri = params.text_document.uri;
        let version = params.text_document.version;
        let Some(mut state) = me.docs.get_mut(&uri) else {
            // didChange before didOpen: a full-text change is enough to start tracking it.
            if let Some(full) = params
                .content_changes
                .iter()
                .rev()
                .find(|c| c.range.is_none())
            {
                let path = me.relative_path(&uri);
                let doc = Document::new(&full.text, version, "");
                let syntax = syntax_for(Lang::from_path(&path), &doc.rope);
                me.docs.insert(uri, DocState::new(doc, syntax, path));
            } else {
                tracing::warn!(
                    uri = uri.as_str(),
                    "didChange for a document that is not open; ignored"
                );
            }
            return;
        };
        if version <= state.doc.version {
            tracing::warn!(
                uri = uri.as_str(),
                version,
                current = state.doc.version,
                "stale didChange refused"
            );
            return;
        }
        for change in &params.content_changes {
            match change.range {
                None => {
                    state.doc = Document::new(&change.text, version, &state.doc.language);
                    let st = &mut *state;
                    let lang = st
                        .syntax
                        .as_ref()
                        .map(Syntax::lang)
                        .or_else(|| Lang::from_path(&st.path));
                    st.syntax = syntax_for(lang, &st.doc.rope);
                    state.out_of_sync = false;
                }
                Some(_) if state.out_of_sync => {}
                Some(range) => match protocol::to_char_range(&state.doc.rope, range, enc) {
                    Some((start, end)) => {
                        // Ropes clone in O(1): the tree's InputEdit needs the text before and after.
                        let before = state.doc.rope.clone();
                        state.doc.apply(&Edit {
                            start,
                            end,
                            text: change.text.clone(),
                        });
                        let st = &mut *state;
                        if let Some(syn) = st.syntax.as_mut() {
                            syn.edit(&before, start, end, &change.text, &st.doc.rope);
                        }
                    }
                    None => {
                        tracing::warn!(
                            uri = uri.as_str(),
                            ?range,
                            "edit outside the document; waiting for a full resync"
                        );
                        state.out_of_sync = true;
                    }
                },
            }
        }
        state.doc.version = version;
        // Keystrokes pre-empt prefetch work at once.
        if let Some(p) = me.prefetch.lock().expect("prefetch lock").take() {
            p.cancel();
        }
    }

    async fn did_save(&self, params: DidSaveTextDocumentParams) {
        let me = &self.0;
        let uri = params.text_document.uri;
        let path = me.docs.get(&uri).map(|d| d.path.clone());
        if let Some(ctx) = me.repo.write().expect("repo lock").as_mut() {
            if let Some(file) = uri.to_file_path() {
                ctx.index.update_file(&file);
            }
            if let Some(p) = &path {
                ctx.touch(p);
            }
        } else {
            return;
        }
        me.refresh_contexts();
        me.warm_context(&uri, true);
    }

    async fn did_change_watched_files(&self, params: DidChangeWatchedFilesParams) {
        let me = &self.0;
        {
            let mut repo = me.repo.write().expect("repo lock");
            let Some(ctx) = repo.as_mut() else { return };
            for change in &params.changes {
                let Some(file) = change.uri.to_file_path() else {
                    continue;
                };
                if change.typ == FileChangeType::DELETED {
                    ctx.index.remove(&file);
                } else {
                    ctx.index.update_file(&file);
                }
            }
        }
        me.refresh_contexts();
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        self.0.docs.remove(&params.text_document.uri);
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        self.0.apply_settings(&params.settings);
    }

    async fn completion(&self, params: CompletionParams) -> Result<Option<CompletionResponse>> {
        let uri = params.text_document_position.text_document.uri;
        let pos = params.text_document_position.position;
        let invoked = params
            .context
            .as_ref()
            .is_some_and(|c| c.trigger_kind == CompletionTriggerKind::INVOKED);
        let Some(a) = self.0.suggest(&uri, pos, invoked, None).await? else {
            return Ok(None);
        };
        self.0.stats(&a).await;
        // Menus filter by the word before the cursor: replace that word so the item is not hidden.
        let word = self
            .0
            .docs
            .get(&uri)
            .map(|s| {
                let c = protocol::to_char(&s.doc.rope, a.start, self.0.enc()).char_idx;
                let line_start = s.doc.rope.line_to_char(s.doc.rope.char_to_line(c));
                let before: String = s.doc.rope.slice(line_start..c).to_string();
                before
                    .chars()
                    .rev()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<String>()
            })
            .unwrap_or_default();
        let start = Position::new(
            a.start.line,
            a.start.character.saturating_sub(match self.0.enc() {
                Encoding::Utf16 => word.encode_utf16().count() as u32,
                Encoding::Utf8 => word.len() as u32,
            }),
        );
        let full = format!("{word}{}", a.text);
        let label = full
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or(&full)
            .trim()
            .to_string();
        let item = CompletionItem {
            label,
            kind: Some(CompletionItemKind::SNIPPET),
            detail: Some(format!("inkling ({:.0} ms)", a.latency_ms)),
            documentation: Some(Documentation::MarkupContent(MarkupContent {
                kind: MarkupKind::Markdown,
                value: format!("```\n{full}\n```"),
            })),
            preselect: Some(true),
            sort_text: Some("0000".into()),
            filter_text: Some(full.clone()),
            insert_text_format: Some(InsertTextFormat::PLAIN_TEXT),
            text_edit: Some(CompletionTextEdit::Edit(TextEdit {
                range: Range::new(start, a.end),
                new_text: full,
            })),
            ..Default::default()
        };
        Ok(Some(CompletionResponse::List(CompletionList {
            is_incomplete: true,
            items: vec![item],
        })))
    }
}
