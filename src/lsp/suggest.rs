//! The completion feature shared by `textDocument/inlineCompletion`, `textDocument/completion`
//! and `inkling/complete`: a cached answer when the user typed through one, else a model job
//! through the completion pipeline (joined when the user only typed what it is writing), and a
//! prefetch of the suggestion that follows accepting it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tower_lsp_server::ls_types::{Position, SelectedCompletionInfo, Uri};

use super::jobs::{Job, Waiter};
use super::protocol::{self, Source, Timings};
use super::state::Server;
use crate::complete::{Completer, Input, Prepared, Shown, check};
use crate::engine::{CancelToken, EngineError};

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
}

impl Server {
    /// The shared path of all three completion requests. `Err` only for a document that is not
    /// open; every reason not to suggest is `Ok(None)`.
    pub(super) async fn suggest(
        self: &Arc<Self>,
        uri: &Uri,
        pos: Position,
        invoked: bool,
        selected: Option<&SelectedCompletionInfo>,
    ) -> Result<Option<Answer>, String> {
        let t0 = Instant::now();
        let enc = self.enc();
        let settings = self.settings();
        // A completion marks the document used (and brings back its tree if it was put away).
        self.docs.touch(uri);
        // Snapshot the document: ropes clone in O(1), and the lock is not held across awaits.
        let (mut input, clamped) = {
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
            (state.input(c.char_idx), c.clamped)
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
        let answer = |text: String, source: Source, timings: Option<Timings>| Answer {
            text,
            start,
            end,
            source,
            latency_ms: t0.elapsed().as_secs_f64() * 1e3,
            timings,
        };

        let token = self.jobs.new_request();
        // Typed-through or prefetched: no model needed.
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
                return Ok(Some(answer(text, source, None)));
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
                    self.start_job(uri, &input, &completer, p)
                }
            };
            let _waiting = Waiter::new(&job);
            let result = tokio::select! {
                r = job.result() => r,
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
            let fresh = job.at.cursor == input.cursor;
            let text = if fresh {
                Some(generation.text.clone())
            } else {
                let shown = Shown {
                    suggestion: generation.text.clone(),
                    ..job.at.clone()
                };
                shown.typed_through(&input.rope, input.cursor)
            };
            match text {
                Some(t) => {
                    let text = format!("{lead}{t}");
                    if text.is_empty() {
                        return Ok(None);
                    }
                    let source = if fresh {
                        Source::Model
                    } else {
                        Source::TypedThrough
                    };
                    return Ok(Some(answer(
                        text,
                        source,
                        Some(Timings::from(&generation.timings)),
                    )));
                }
                // The joined job wrote something else than what was typed: ask the model anew.
                None if !fresh => continue,
                None => return Ok(None),
            }
        }
    }

    /// Starts a model job for `input`, replacing the one in flight; when it finishes, its
    /// suggestion is fitted, cached, and followed by a prefetch.
    fn start_job(
        self: &Arc<Self>,
        uri: &Uri,
        input: &Input,
        completer: &Completer,
        prepared: Prepared,
    ) -> Arc<Job> {
        let (job, feed) = Job::new(
            uri.clone(),
            Shown::new(&input.rope, input.cursor, String::new(), false),
        );
        self.jobs.install(&job);
        let anchor = prepared.plan.anchor;
        let rx = completer.start(prepared, Some(feed.partial), job.token.clone());
        let me = Arc::clone(self);
        let (uri, input, completer) = (uri.clone(), input.clone(), completer.clone());
        tokio::spawn(async move {
            let result = rx
                .await
                .unwrap_or(Err(EngineError::Gone))
                .map(|g| completer.finish(&input, g));
            if let Ok(g) = &result {
                if let Some(mut state) = me.docs.get_mut(&uri) {
                    state.anchor = Some(anchor);
                    if !g.text.is_empty() {
                        state.cache.insert(Shown::new(
                            &input.rope,
                            input.cursor,
                            g.text.clone(),
                            false,
                        ));
                    }
                }
                if !g.text.is_empty() {
                    me.spawn_prefetch(uri.clone(), input.accepted(&g.text, anchor), &completer);
                }
                // The prefix is in the cache now: saving its snapshot costs no evaluation.
                me.warm_context(&uri, false);
            }
            feed.done.send_replace(Some(result));
        });
        job
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
