//! The completion feature shared by `textDocument/inlineCompletion`, `textDocument/completion`
//! and `inkling/complete`: a cached answer when the user typed through one, else a model job
//! through the completion pipeline (joined when the user only typed what it is writing), and a
//! prefetch of the suggestion that follows accepting it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tower_lsp_server::ls_types::{
    Position, SelectedCompletionInfo, TextDocumentIdentifier, Uri, VersionedTextDocumentIdentifier,
};

use super::jobs::{Job, LastAnswer, Waiter};
use super::protocol::{
    self, Source, SuggestionDone, SuggestionDoneParams, SuggestionGrown, SuggestionGrownParams,
    Timings,
};
use super::state::Server;
use crate::complete::{Completer, Input, Prepared, Shown, check};
use crate::engine::{CancelToken, EngineError};
use crate::stop::StopRules;

/// A suggestion that grew by at least this many chars since it was answered is announced.
const GROWN_CHARS: usize = 4;
/// ... once the user has been idle this long after the answer.
const GROWN_IDLE: Duration = Duration::from_millis(100);

/// What the task that streams a job's pieces needs.
struct Stream {
    uri: Uri,
    input: Input,
    completer: Completer,
    stop: StopRules,
    /// When the request that started the job arrived, and when its first piece was published.
    t0: Instant,
    first_piece: Arc<std::sync::OnceLock<f64>>,
}

/// How a request waits for a model job.
struct Wait {
    /// With streaming: answer with what there is by then.
    deadline: Instant,
    /// Answer with the part written so far, as soon as it ends a word (or at the deadline).
    streaming: bool,
}

/// What waiting for a job came to.
enum Waited {
    /// The rest of the suggestion after what was typed since the job started.
    Text {
        text: String,
        fresh: bool,
        timings: Option<Timings>,
        streaming: bool,
    },
    /// The job writes something else than what was typed since it started.
    Diverged,
    Nothing,
}

/// A piece is worth showing before the deadline once it holds a whole word (it has a char that
/// ends one): half an identifier is rarely what the user wants to accept.
fn ends_a_word(rest: &str) -> bool {
    rest.chars().any(|c| !(c.is_alphanumeric() || c == '_'))
}

impl Wait {
    async fn on(&self, job: &Job, input: &Input, token: &CancelToken) -> Waited {
        let fresh = job.at.cursor == input.cursor;
        let typed = if fresh {
            String::new()
        } else {
            match job.at.typed_since(&input.rope, input.cursor) {
                Some(t) => t,
                None => return Waited::Diverged,
            }
        };
        let mut done = job.done.clone();
        let mut piece = job.piece.clone();
        let mut pieces_open = self.streaming;
        loop {
            let result = done.borrow_and_update().clone();
            if let Some(result) = result {
                let generation = match result {
                    Ok(g) => g,
                    Err(EngineError::Cancelled) => return Waited::Nothing,
                    Err(e) => {
                        tracing::warn!("completion failed: {e}");
                        return Waited::Nothing;
                    }
                };
                let text = if fresh {
                    Some(generation.text.clone())
                } else {
                    let shown = Shown {
                        suggestion: generation.text.clone(),
                        ..job.at.clone()
                    };
                    shown.typed_through(&input.rope, input.cursor)
                };
                return match text {
                    Some(t) if !t.is_empty() => Waited::Text {
                        text: t,
                        fresh,
                        timings: Some(Timings::from(&generation.timings)),
                        streaming: false,
                    },
                    None if !fresh => Waited::Diverged,
                    _ => Waited::Nothing,
                };
            }
            let past_deadline = Instant::now() >= self.deadline;
            if self.streaming {
                let p = piece.borrow_and_update().clone();
                match p.strip_prefix(typed.as_str()) {
                    Some(rest) if !rest.is_empty() && (past_deadline || ends_a_word(rest)) => {
                        job.mark_shown();
                        return Waited::Text {
                            text: rest.to_string(),
                            fresh,
                            timings: None,
                            streaming: true,
                        };
                    }
                    Some(_) => {}
                    None if !typed.starts_with(p.as_str()) => return Waited::Diverged,
                    None => {}
                }
            }
            tokio::select! {
                r = done.changed() => if r.is_err() { return Waited::Nothing },
                r = piece.changed(), if pieces_open => if r.is_err() { pieces_open = false },
                () = tokio::time::sleep_until(self.deadline.into()), if self.streaming && !past_deadline => {}
                () = token.cancelled() => return Waited::Nothing,
            }
        }
    }
}

/// A suggestion with everything the three request kinds need to answer.
#[derive(Debug)]
pub(super) struct Answer {
    pub text: String,
    /// Start of the replaced range (the cursor, or the start of a selected completion item).
    pub start: Position,
    pub end: Position,
    pub source: Source,
    pub latency_ms: f64,
    pub timings: Option<Timings>,
    /// The model is still writing it: this is the part written so far.
    pub streaming: bool,
}

impl Server {
    /// The shared path of all three completion requests. `Err` only for a document that is not
    /// open; every reason not to suggest is `Ok(None)`. With `stream` (and the `streaming`
    /// setting) a model answer may be the part written so far (see [`Wait`]).
    pub(super) async fn suggest(
        self: &Arc<Self>,
        uri: &Uri,
        pos: Position,
        invoked: bool,
        stream: bool,
        selected: Option<&SelectedCompletionInfo>,
    ) -> Result<Option<Answer>, String> {
        let t0 = Instant::now();
        let enc = self.enc();
        let settings = self.settings();
        // A completion marks the document used (and brings back its tree if it was put away).
        self.docs.touch(uri);
        if let Some(mut state) = self.docs.get_mut(uri) {
            state.cursor_known = true;
        }
        // Snapshot the document: ropes clone in O(1), and the lock is not held across awaits.
        let (mut input, clamped, version) = {
            let Some(state) = self.docs.get(uri) else {
                return Err(format!("unknown document {}", uri.as_str()));
            };
            if state.out_of_sync {
                tracing::warn!(
                    uri = uri.as_str(),
                    "document out of sync; waiting for a full-text change"
                );
                return Ok(None);
            }
            let c = protocol::to_char(&state.doc.rope, pos, enc);
            (state.input(c.char_idx), c.clamped, state.doc.version)
        };
        if clamped {
            tracing::debug!(
                line = pos.line,
                character = pos.character,
                "position clamped"
            );
        }
        if let Err(skip) = check(&settings, &input) {
            tracing::info!(uri = uri.as_str(), "no completion: {skip}");
            return Ok(None);
        }
        let start_pos = protocol::to_position(&input.rope, input.cursor, enc);
        // A selected completion item in the editor's menu: complete as if it were inserted.
        let mut start = start_pos;
        let mut lead = String::new();
        if let Some(sel) = selected {
            if let Some((s, e)) = protocol::to_char_range(&input.rope, sel.range, enc) {
                if e == input.cursor {
                    input.rope.remove(s..e);
                    input.rope.insert(s, &sel.text);
                    input.cursor = s + sel.text.chars().count();
                    // The tree no longer matches the text.
                    input.syntax = None;
                    start = sel.range.start;
                    lead = sel.text.clone();
                }
            }
        }
        let end = start_pos;
        let answer =
            |text: String, source: Source, timings: Option<Timings>, streaming: bool| Answer {
                text,
                start,
                end,
                source,
                latency_ms: t0.elapsed().as_secs_f64() * 1e3,
                timings,
                streaming,
            };

        self.remember_cursor(uri, &input.rope, input.cursor);
        let token = self.jobs.new_request();
        let remember = |a: &Answer| {
            if lead.is_empty() {
                self.jobs.answered(LastAnswer {
                    uri: uri.clone(),
                    version,
                    position: end,
                    cursor: input.cursor,
                    text: a.text.clone(),
                    at: Instant::now(),
                    request: token.clone(),
                });
            }
        };
        // Typed-through, streamed so far, or prefetched: no model needed.
        if lead.is_empty() {
            let hit = self
                .docs
                .get(uri)
                .and_then(|s| s.cache.lookup(&input.rope, input.cursor));
            if let Some((text, prefetched)) = hit {
                let source = if prefetched {
                    Source::Prefetch
                } else {
                    Source::TypedThrough
                };
                let a = answer(text, source, None, false);
                remember(&a);
                return Ok(Some(a));
            }
        }
        let Some(engine) = self.generator() else {
            return Ok(None);
        };
        let completer = Completer::new(engine, settings.clone());
        let prepared = match completer.prepare(&input) {
            Ok(p) => p,
            Err(skip) => {
                tracing::debug!(uri = uri.as_str(), "no completion: {skip}");
                return Ok(None);
            }
        };

        // Typing through what the model is still writing: wait for it instead of starting over.
        let mut joined = if lead.is_empty() {
            self.jobs.joinable(uri, &input.rope, input.cursor)
        } else {
            None
        };
        let mut prepared = Some(prepared);
        let wait = Wait {
            deadline: t0 + Duration::from_millis(settings.answer_deadline_ms),
            streaming: stream && settings.streaming && lead.is_empty(),
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
                    let p = match prepared.take() {
                        Some(p) => p,
                        // A joined job wrote something else: prepare anew.
                        None => match completer.prepare(&input) {
                            Ok(p) => p,
                            Err(_) => return Ok(None),
                        },
                    };
                    self.start_job(uri, &input, &completer, p, t0)
                }
            };
            let _waiting = Waiter::new(&job);
            match wait.on(&job, &input, &token).await {
                Waited::Text {
                    text,
                    fresh,
                    timings,
                    streaming,
                } => {
                    let text = format!("{lead}{text}");
                    let source = if fresh {
                        Source::Model
                    } else {
                        Source::TypedThrough
                    };
                    let a = answer(text, source, timings, streaming);
                    remember(&a);
                    return Ok(Some(a));
                }
                // The joined job wrote something else than what was typed: ask the model anew.
                Waited::Diverged => continue,
                Waited::Nothing => return Ok(None),
            }
        }
    }

    /// Starts a model job for `input`, replacing the one in flight. While it runs, what may be
    /// shown of it grows in the document's cache (typing through it is answered at once, and an
    /// idle client is told); when it finishes, its suggestion is fitted, cached, and followed by
    /// a prefetch. `t0` is when the request that started it arrived.
    fn start_job(
        self: &Arc<Self>,
        uri: &Uri,
        input: &Input,
        completer: &Completer,
        prepared: Prepared,
        t0: Instant,
    ) -> Arc<Job> {
        let (job, feed) = Job::new(
            uri.clone(),
            Shown::new(&input.rope, input.cursor, String::new(), false),
        );
        self.jobs.install(&job);
        let anchor = prepared.plan.anchor;
        let stop = prepared.request.stop.clone();
        let raw = feed.partial.subscribe();
        let rx = completer.start(prepared, Some(feed.partial), job.token.clone());
        let me = Arc::clone(self);
        let (uri, input, completer) = (uri.clone(), input.clone(), completer.clone());
        let piece = feed.piece;
        let done = feed.done;
        let first_piece = Arc::new(std::sync::OnceLock::new());
        if completer.settings.streaming {
            tokio::spawn(Arc::clone(&me).stream_pieces(
                Stream {
                    uri: uri.clone(),
                    input: input.clone(),
                    completer: completer.clone(),
                    stop,
                    t0,
                    first_piece: Arc::clone(&first_piece),
                },
                raw,
                piece,
            ));
        }
        tokio::spawn(async move {
            let result = rx
                .await
                .unwrap_or(Err(EngineError::Gone))
                .map(|g| completer.finish(&input, g));
            if let Ok(g) = &result {
                if let Some(mut state) = me.docs.get_mut(&uri) {
                    state.anchor = Some(anchor);
                    let shown = Shown::new(&input.rope, input.cursor, g.text.clone(), false);
                    if g.text.is_empty() {
                        // A streamed piece whose finished text does not fit: show nothing.
                        state.cache.remove(&shown);
                    } else {
                        state.cache.insert(shown);
                    }
                }
                let elapsed_ms = t0.elapsed().as_secs_f64() * 1e3;
                me.client
                    .send_notification::<SuggestionDone>(SuggestionDoneParams {
                        text_document: TextDocumentIdentifier::new(uri.clone()),
                        elapsed_ms,
                        first_piece_ms: first_piece.get().copied().unwrap_or(elapsed_ms),
                        chars: g.text.chars().count(),
                        generated_tokens: g.timings.generated_tokens,
                    })
                    .await;
                me.check_grown(&uri, true);
                if !g.text.is_empty() {
                    me.spawn_prefetch(uri.clone(), input.accepted(&g.text, anchor), &completer);
                }
                // The prefix is in the cache now: saving its snapshot costs no evaluation.
                me.warm_context(&uri, false);
            }
            done.send_replace(Some(result));
        });
        job
    }

    /// Publishes what may be shown of a running job as it grows (each piece extends the last),
    /// keeps it in the document's cache, and tells an idle client when it grew.
    async fn stream_pieces(
        self: Arc<Self>,
        job: Stream,
        mut raw: watch::Receiver<String>,
        piece: watch::Sender<String>,
    ) {
        let Stream {
            uri,
            input,
            completer,
            stop,
            t0,
            first_piece,
        } = job;
        let mut last = String::new();
        // Ends when the engine drops the request (the job is done or cancelled).
        while raw.changed().await.is_ok() {
            let text = raw.borrow_and_update().clone();
            let next = completer.piece(&input, &stop, &text);
            // A piece only ever extends the last one: a shorter one (a cut that the next tokens
            // undo) is not published, so nothing shown is ever taken back while typing through.
            if next.len() <= last.len() || !next.starts_with(&last) {
                continue;
            }
            last = next;
            let _ = first_piece.set(t0.elapsed().as_secs_f64() * 1e3);
            if let Some(mut state) = self.docs.get_mut(&uri) {
                state
                    .cache
                    .insert(Shown::new(&input.rope, input.cursor, last.clone(), false));
            }
            piece.send_replace(last.clone());
            self.check_grown(&uri, false);
        }
    }

    /// Tells the client that the suggestion it was last answered has grown, when the user has
    /// been idle since (a typist gets the longer text with the next keystroke anyway).
    fn check_grown(self: &Arc<Self>, uri: &Uri, done: bool) {
        let Some(last) = self.jobs.last_answer() else {
            return;
        };
        if &last.uri != uri {
            return;
        }
        let now = {
            let Some(state) = self.docs.get(uri) else {
                return;
            };
            if state.doc.version != last.version {
                return;
            }
            match state.cache.lookup(&state.doc.rope, last.cursor) {
                Some((text, _)) => text,
                None => return,
            }
        };
        let (now_chars, shown_chars) = (now.chars().count(), last.text.chars().count());
        let grown = now.starts_with(&last.text)
            && (now_chars >= shown_chars + GROWN_CHARS || (done && now_chars > shown_chars));
        if !grown {
            return;
        }
        let idle_at = last.at + GROWN_IDLE;
        if Instant::now() < idle_at {
            // Look again once the user has been idle long enough (a keystroke meanwhile makes
            // the last answer stale, and this a no-op).
            let me = Arc::clone(self);
            let uri = uri.clone();
            tokio::spawn(async move {
                tokio::time::sleep_until(idle_at.into()).await;
                me.check_grown(&uri, done);
            });
            return;
        }
        self.jobs.grew(&now);
        let me = Arc::clone(self);
        let params = SuggestionGrownParams {
            text_document: VersionedTextDocumentIdentifier::new(uri.clone(), last.version),
            position: last.position,
            chars: now_chars,
            done,
        };
        tokio::spawn(async move {
            me.client.send_notification::<SuggestionGrown>(params).await;
        });
    }

    /// Computes, in idle engine time, the suggestion that follows accepting one (`next` is the
    /// state after the accept); this also leaves the KV cache warm for that state. Any new
    /// request cancels it.
    fn spawn_prefetch(self: &Arc<Self>, uri: Uri, next: Input, completer: &Completer) {
        let Ok(prepared) = completer.prepare(&next) else {
            return;
        };
        let token = CancelToken::new();
        self.jobs.set_prefetch(token.clone());
        let rx = completer.start(prepared, None, token);
        let me = Arc::clone(self);
        let completer = completer.clone();
        tokio::spawn(async move {
            if let Ok(Ok(g)) = rx.await {
                let g = completer.finish(&next, g);
                if !g.text.is_empty() {
                    if let Some(mut state) = me.docs.get_mut(&uri) {
                        state
                            .cache
                            .insert(Shown::new(&next.rope, next.cursor, g.text, true));
                    }
                }
            }
        });
    }
}
