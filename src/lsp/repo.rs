//! Repo context in the server: the workspace is indexed in the background after `initialized`;
//! each open document keeps its context chunks (recomputed on open, save and watched-file
//! changes, never per keystroke), and its stable prefix is warmed (loaded from its snapshot or
//! evaluated, with `$/progress`) in idle engine time. Any completion pre-empts a warm-up and then
//! reads the prefix itself.

use std::sync::Arc;
use std::time::Instant;

use tower_lsp_server::ls_types::{NumberOrString, Uri};

use super::documents::DocState;
use super::state::Server;
use crate::complete::{Completer, prefix_of};
use crate::context::{RepoContext, WorkspaceIndex};
use crate::engine::{CancelToken, EngineError};

/// New chunks for `d` when its file's context changed; a changed prefix must be warmed again.
fn refresh(ctx: &RepoContext, d: &mut DocState) {
    let chunks = ctx.context_for(&d.place.path, &d.doc.rope.to_string());
    if *d.context != chunks {
        d.context = Arc::new(chunks);
        d.warmed = false;
    }
}

impl Server {
    /// Walks the workspace in the background, then gives every open document its context.
    pub(super) fn start_indexing(self: &Arc<Self>) {
        let settings = self.settings();
        let Some(root) = self
            .workspace
            .read()
            .expect("workspace lock")
            .as_ref()
            .and_then(|w| w.root().map(std::path::Path::to_path_buf))
        else {
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
                ctx.touch(&d.place.path);
            }
            *me.repo.write().expect("repo lock") = Some(ctx);
            me.refresh_contexts();
            me.warm_latest();
        });
    }

    /// Recomputes every open document's context chunks; unchanged ones stay byte-identical.
    pub(super) fn refresh_contexts(&self) {
        let repo = self.repo.read().expect("repo lock");
        let Some(ctx) = repo.as_ref() else { return };
        for mut d in self.docs.iter_mut() {
            refresh(ctx, &mut d);
        }
    }

    /// Recomputes one document's context chunks (it was just opened).
    pub(super) fn refresh_context(&self, uri: &Uri) {
        let repo = self.repo.read().expect("repo lock");
        let Some(ctx) = repo.as_ref() else { return };
        if let Some(mut d) = self.docs.get_mut(uri) {
            refresh(ctx, &mut d);
        }
    }

    /// A file was opened or saved: it becomes the most recent in the ring.
    pub(super) fn touch(&self, path: &str) {
        if let Some(ctx) = self.repo.write().expect("repo lock").as_mut() {
            ctx.touch(path);
        }
    }

    /// Warms the prefix of the most recently used open document.
    pub(super) fn warm_latest(self: &Arc<Self>) {
        let recent = self
            .repo
            .read()
            .expect("repo lock")
            .as_ref()
            .and_then(|c| c.recent.first().cloned());
        let uri = recent.and_then(|p| {
            self.docs
                .iter()
                .find(|d| d.place.path == p)
                .map(|d| d.key().clone())
        });
        if let Some(uri) = uri {
            self.warm_context(&uri, true);
        }
    }

    /// Evaluates (or loads from disk) the KV of a document's repo prefix in idle engine time,
    /// reporting `$/progress` when `announce`; the next completion then starts from it.
    pub(super) fn warm_context(self: &Arc<Self>, uri: &Uri, announce: bool) {
        let Some(engine) = self.generator() else {
            return;
        };
        let input = {
            let Some(st) = self.docs.get(uri) else { return };
            if st.warmed || st.context.is_empty() {
                return;
            }
            st.input(0)
        };
        let files = input.context.len();
        let prefix = prefix_of(&input);
        let token = CancelToken::new();
        self.jobs.set_warm(token.clone());
        let rx = Completer::new(engine, self.settings()).warm_up(&input, token);
        let me = Arc::clone(self);
        let uri = uri.clone();
        tokio::spawn(async move {
            let token = NumberOrString::String(format!("inkling/context/{}", uri.as_str()));
            let progress = if announce && me.create_progress(token.clone()).await {
                Some(
                    me.client
                        .progress(token, "inkling: repo context")
                        .with_message(format!("{files} files"))
                        .begin()
                        .await,
                )
            } else {
                None
            };
            let result = rx.await.unwrap_or(Err(EngineError::Gone));
            let message = match &result {
                Ok(g) => {
                    let t = &g.timings;
                    if let Some(mut st) = me.docs.get_mut(&uri) {
                        if prefix_of(&st.input(0)) == prefix {
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
}
