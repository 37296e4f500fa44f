//! The LSP handlers (tower-lsp-server's `LanguageServer`): thin shells that convert from the
//! protocol, call a feature on the [`Server`] state, and convert back (`to_proto`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use serde_json::Value;
use tower_lsp_server::LanguageServer;
use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::*;

use super::documents::Applied;
use super::protocol;
use super::protocol::{CompleteResult, CompletionStats, CompletionStatsParams, CursorParams};
use super::state::Server;
use super::suggest::Answer;
use super::to_proto;
use crate::config::Settings;
use crate::position::Encoding;
use crate::workspace::Workspace;

/// Wraps `Arc<Server>` so the `LanguageServer` impl can hand clones to background tasks.
#[derive(Clone)]
pub struct Handle(pub Arc<Server>);

impl Handle {
    /// The three completion requests share the feature; an unknown document is invalid params.
    async fn suggest(
        &self,
        params: &TextDocumentPositionParams,
        invoked: bool,
        stream: bool,
        selected: Option<&SelectedCompletionInfo>,
    ) -> Result<Option<Answer>> {
        self.0
            .suggest(
                &params.text_document.uri,
                params.position,
                invoked,
                stream,
                selected,
            )
            .await
            .map_err(Error::invalid_params)
    }

    pub async fn inline_completion(
        &self,
        params: InlineCompletionParams,
    ) -> Result<Option<InlineCompletionResponse>> {
        let invoked = params.context.trigger_kind == InlineCompletionTriggerKind::INVOKED;
        let selected = params.context.selected_completion_info.as_ref();
        let Some(a) = self
            .suggest(&params.text_document_position, invoked, true, selected)
            .await?
        else {
            return Ok(None);
        };
        self.0.stats(&a).await;
        Ok(Some(InlineCompletionResponse::Array(vec![
            to_proto::inline_item(&a),
        ])))
    }

    /// `inkling/cursor` (a notification): warm the prompt where the cursor rests.
    pub async fn cursor(&self, params: CursorParams) {
        self.0.cursor_moved(params);
    }

    pub async fn inkling_complete(&self, params: InlineCompletionParams) -> Result<CompleteResult> {
        let t0 = Instant::now();
        let selected = params.context.selected_completion_info.as_ref();
        // The request that reports timings answers with the whole suggestion.
        let a = self
            .suggest(&params.text_document_position, true, false, selected)
            .await?;
        Ok(to_proto::complete_result(
            a,
            t0.elapsed().as_secs_f64() * 1e3,
        ))
    }
}

impl Server {
    async fn stats(&self, a: &Answer) {
        let generated = a.timings.as_ref().map_or(0, |t| t.generated_tokens);
        self.client
            .send_notification::<CompletionStats>(CompletionStatsParams {
                latency_ms: a.latency_ms,
                source: a.source,
                generated_tokens: generated,
                streaming: a.streaming,
            })
            .await;
    }

    /// Settings from a client's JSON (`{inkling: {...}}` or the bare object) over `base`: taken
    /// key by key and clamped; whatever was refused or changed is told to the user, naming the
    /// key. `None` when there is nothing to apply.
    fn settings_from(self: &Arc<Self>, value: &Value, base: &Settings) -> Option<Settings> {
        let v = value.get("inkling").unwrap_or(value);
        if v.is_null() {
            return None;
        }
        let Some(changes) = v.as_object() else {
            self.warn(format!(
                "inkling: ignoring invalid settings: expected an object, got {v}"
            ));
            return None;
        };
        let (merged, refused) = base.merged(changes);
        let (settings, adjusted) = merged.clamped();
        let mut parts = Vec::new();
        if !refused.is_empty() {
            parts.push(format!("ignoring invalid settings: {}", refused.join("; ")));
        }
        if !adjusted.is_empty() {
            parts.push(format!("settings adjusted: {}", adjusted.join("; ")));
        }
        if !parts.is_empty() {
            self.warn(format!("inkling: {}", parts.join(". ")));
        }
        Some(settings)
    }

    /// A warning for the user (and the log), sent without holding up the caller.
    fn warn(self: &Arc<Self>, message: String) {
        tracing::warn!("{message}");
        let me = Arc::clone(self);
        tokio::spawn(async move { me.client.show_message(MessageType::WARNING, message).await });
    }

    fn apply_settings(self: &Arc<Self>, value: &Value) {
        // Keys left out keep their current values: clients may send only what changed.
        let Some(new) = self.settings_from(value, &self.settings()) else {
            return;
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
        me.progress_supported.store(progress, Ordering::Relaxed);
        let watch = params
            .capabilities
            .workspace
            .as_ref()
            .and_then(|w| w.did_change_watched_files.as_ref())
            .and_then(|d| d.dynamic_registration)
            .unwrap_or(false);
        me.watch_supported.store(watch, Ordering::Relaxed);
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
        *me.workspace.write().expect("workspace lock") = root.as_deref().map(Workspace::at);
        if let Some(opts) = &params.initialization_options {
            if let Some(s) = me.settings_from(opts, &Settings::default()) {
                *me.settings.write().expect("settings lock") = s;
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
        if self.0.watch_supported.load(Ordering::Relaxed) {
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
        self.0.jobs.cancel_all();
        self.0.save_cursors();
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let me = &self.0;
        let td = params.text_document;
        let place = me.place(&td.uri);
        me.touch(&place.path);
        me.docs
            .open(td.uri.clone(), &td.text, td.version, &td.language_id, place);
        me.refresh_context(&td.uri);
        me.warm_context(&td.uri, true);
        // Back where the user left the file: its prompt (from disk, after a restart) first.
        if let Some(cursor) = me.last_cursor(&td.uri) {
            me.warm_cursor(&td.uri, cursor, true);
        }
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        // No await before the edits are applied: notifications are handled in arrival order.
        let me = &self.0;
        let uri = params.text_document.uri;
        let version = params.text_document.version;
        let applied = me
            .docs
            .change(&uri, version, &params.content_changes, me.enc(), || {
                me.place(&uri)
            });
        match applied {
            Applied::Ok => {}
            Applied::Opened => return,
            Applied::Stale => {
                tracing::warn!(uri = uri.as_str(), version, "stale didChange refused");
                return;
            }
            Applied::Unknown => {
                tracing::warn!(
                    uri = uri.as_str(),
                    "didChange for a document that is not open; ignored"
                );
                return;
            }
        }
        // Keystrokes pre-empt prefetch work at once, and take the last answer off the screen.
        me.jobs.cancel_prefetch();
        me.jobs.forget_answer();
        // A client that does not say where its cursor is: the first edit shows where it works.
        let first_edit = me.docs.get_mut(&uri).and_then(|mut st| {
            if st.cursor_known {
                return None;
            }
            st.cursor_known = true;
            let change = params.content_changes.last()?;
            let range = change.range?;
            let at = protocol::to_char(&st.doc.rope, range.start, me.enc()).char_idx;
            Some((at + change.text.chars().count(), st.doc.rope.clone()))
        });
        if let Some((cursor, rope)) = first_edit {
            me.remember_cursor(&uri, &rope, cursor);
            me.warm_cursor(&uri, cursor, false);
        }
    }

    async fn did_save(&self, params: DidSaveTextDocumentParams) {
        let me = &self.0;
        let uri = params.text_document.uri;
        let path = me.docs.get(&uri).map(|d| d.place.path.clone());
        let indexed = if let Some(ctx) = me.repo.write().expect("repo lock").as_mut() {
            if let Some(file) = uri.to_file_path() {
                ctx.index.update_file(&file);
            }
            if let Some(p) = &path {
                ctx.touch(p);
            }
            true
        } else {
            false
        };
        if indexed {
            me.refresh_contexts();
            me.warm_context(&uri, true);
        }
        // The file on disk is now what a restart opens: keep the prompt at its cursor on disk.
        if let Some(cursor) = me.last_cursor(&uri) {
            me.warm_cursor(&uri, cursor, true);
        }
        me.save_cursors();
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
        self.0.docs.close(&params.text_document.uri);
        self.0.save_cursors();
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        self.0.apply_settings(&params.settings);
    }

    async fn completion(&self, params: CompletionParams) -> Result<Option<CompletionResponse>> {
        let invoked = params
            .context
            .as_ref()
            .is_some_and(|c| c.trigger_kind == CompletionTriggerKind::INVOKED);
        let pos = &params.text_document_position;
        let Some(a) = self.suggest(pos, invoked, true, None).await? else {
            return Ok(None);
        };
        self.0.stats(&a).await;
        let rope = self
            .0
            .docs
            .get(&pos.text_document.uri)
            .map(|s| s.doc.rope.clone());
        let item = to_proto::completion_item(&a, rope.as_ref(), self.0.enc());
        Ok(Some(CompletionResponse::List(CompletionList {
            is_incomplete: true,
            items: vec![item],
        })))
    }
}
