//! Warm at the cursor: the prompt of the spot where the cursor rests is evaluated in idle engine
//! time (`inkling/cursor` from the editors, or the first edit's position otherwise), so that the
//! first keystroke there costs its own tokens only.
//!
//! - Each file's last cursor is remembered (and kept on disk beside the KV snapshots), and opening
//!   the file warms it again.
//! - On open and on save the warm-up is persisted: its KV snapshot is saved (or loaded back after a
//!   restart), keyed by the exact prompt tokens, so the first completion after a restart at the
//!   last cursor of an unchanged file is warm. Cursor moves are not persisted (each snapshot of a
//!   whole prompt is megabytes).
//! - A warm-up runs in its own slot: any completion job cancels it, a newer warm-up replaces it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use ropey::Rope;
use tower_lsp_server::ls_types::{Position, TextDocumentIdentifier, Uri};

use super::protocol::{self, CursorParams, Warmed, WarmedParams};
use super::state::Server;
use crate::complete::Completer;
use crate::engine::{CancelToken, EngineError};

/// Last cursors per file (absolute path → line and char column, which survive edits on other
/// lines and a restart with the file as saved), loaded from and saved to the KV directory.
#[derive(Debug, Default)]
pub struct Cursors {
    map: Mutex<Option<HashMap<PathBuf, (usize, usize)>>>,
}

/// `cursor` (a char offset) as a line and a char column.
fn line_col(rope: &Rope, cursor: usize) -> (usize, usize) {
    let cursor = cursor.min(rope.len_chars());
    let line = rope.char_to_line(cursor);
    (line, cursor - rope.line_to_char(line))
}

/// A line and a char column as a char offset, clamped to the text and to the line's end.
fn offset(rope: &Rope, (line, col): (usize, usize)) -> usize {
    if line >= rope.len_lines() {
        return rope.len_chars();
    }
    let text = rope.line(line);
    let len = text.len_chars();
    let ends = |k: usize| len >= k && matches!(text.char(len - k), '\n' | '\r');
    let newline = usize::from(ends(1)) + usize::from(ends(1) && ends(2));
    rope.line_to_char(line) + col.min(len - newline)
}

/// At most this many files are remembered; past it, an arbitrary one is forgotten.
const MAX_CURSORS: usize = 4096;
const FILE: &str = "cursors.json";

impl Cursors {
    fn with<R>(
        &self,
        dir: Option<&PathBuf>,
        f: impl FnOnce(&mut HashMap<PathBuf, (usize, usize)>) -> R,
    ) -> R {
        let mut guard = self.map.lock().expect("cursors lock");
        let map = guard.get_or_insert_with(|| {
            dir.and_then(|d| std::fs::read(d.join(FILE)).ok())
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default()
        });
        f(map)
    }

    pub fn get(&self, dir: Option<&PathBuf>, file: &PathBuf) -> Option<(usize, usize)> {
        self.with(dir, |m| m.get(file).copied())
    }

    pub fn set(&self, dir: Option<&PathBuf>, file: PathBuf, cursor: (usize, usize)) {
        self.with(dir, |m| {
            if m.len() >= MAX_CURSORS && !m.contains_key(&file) {
                if let Some(k) = m.keys().next().cloned() {
                    m.remove(&k);
                }
            }
            m.insert(file, cursor);
        });
    }

    /// Writes the map to `dir` (a temporary file renamed over the old one: a crash leaves
    /// either the old map or the new one).
    pub fn save(&self, dir: Option<&PathBuf>) {
        let Some(dir) = dir else { return };
        let bytes = self.with(Some(dir), |m| serde_json::to_vec(m).unwrap_or_default());
        let tmp = dir.join(format!("{FILE}.tmp"));
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&tmp, &bytes))
            .and_then(|()| std::fs::rename(&tmp, dir.join(FILE)));
        if let Err(e) = written {
            tracing::debug!("last cursors not saved: {e}");
        }
    }
}

fn file_of(uri: &Uri) -> Option<PathBuf> {
    uri.to_file_path().map(|p| p.into_owned())
}

impl Server {
    /// `inkling/cursor`: remember the cursor and warm its prompt.
    pub(super) fn cursor_moved(self: &Arc<Self>, params: CursorParams) {
        let uri = params.text_document.uri;
        let (cursor, rope) = {
            let Some(mut state) = self.docs.get_mut(&uri) else {
                return;
            };
            state.cursor_known = true;
            let c = protocol::to_char(&state.doc.rope, params.position, self.enc()).char_idx;
            (c, state.doc.rope.clone())
        };
        self.remember_cursor(&uri, &rope, cursor);
        self.warm_cursor(&uri, cursor, false);
    }

    pub(super) fn remember_cursor(&self, uri: &Uri, rope: &Rope, cursor: usize) {
        if let Some(file) = file_of(uri) {
            let at = line_col(rope, cursor);
            self.cursors
                .set(self.settings().kv_dir().as_ref(), file, at);
        }
    }

    /// The file's last known cursor (from this session or an earlier one), as a char offset.
    pub(super) fn last_cursor(&self, uri: &Uri) -> Option<usize> {
        let file = file_of(uri)?;
        let at = self.cursors.get(self.settings().kv_dir().as_ref(), &file)?;
        let state = self.docs.get(uri)?;
        Some(offset(&state.doc.rope, at))
    }

    /// Saves the last cursors to disk.
    pub(super) fn save_cursors(&self) {
        self.cursors.save(self.settings().kv_dir().as_ref());
    }

    /// Evaluates the prompt at `cursor` in idle engine time; with `persist`, its KV snapshot is
    /// loaded from disk or saved there. The client hears `inkling/warmed` when it is done.
    pub(super) fn warm_cursor(self: &Arc<Self>, uri: &Uri, cursor: usize, persist: bool) {
        let settings = self.settings();
        if !settings.warm_cursor {
            return;
        }
        let Some(engine) = self.generator() else {
            return;
        };
        let (input, position) = {
            let Some(state) = self.docs.get(uri) else {
                return;
            };
            if state.out_of_sync {
                return;
            }
            let cursor = cursor.min(state.doc.rope.len_chars());
            let mut input = state.input(cursor);
            if persist {
                // A persisted warm-up must be the prompt a fresh start plans (no earlier anchor),
                // or its snapshot would never be found again.
                input.anchor = None;
            }
            let position = protocol::to_position(&state.doc.rope, cursor, self.enc());
            (input, position)
        };
        let completer = Completer::new(engine, settings);
        let token = CancelToken::new();
        let Some((anchor, rx)) = completer.warm_at(&input, persist, token.clone()) else {
            return;
        };
        self.jobs.set_cursor_warm(token);
        let me = Arc::clone(self);
        let uri = uri.clone();
        tokio::spawn(async move {
            match rx.await.unwrap_or(Err(EngineError::Gone)) {
                Ok(g) => {
                    let t = &g.timings;
                    tracing::debug!(
                        uri = uri.as_str(),
                        tokens = t.prompt_tokens,
                        evaluated = t.evaluated_tokens,
                        loaded = t.loaded_tokens,
                        ms = t.total_ms as u64,
                        "cursor warmed"
                    );
                    if let Some(mut state) = me.docs.get_mut(&uri) {
                        // The next keystroke there keeps this prompt's anchor, so that its prompt
                        // only appends to the one now in the cache.
                        if state.doc.rope == input.rope {
                            state.anchor = Some(anchor);
                        }
                    }
                    me.client
                        .send_notification::<Warmed>(WarmedParams {
                            text_document: TextDocumentIdentifier::new(uri.clone()),
                            position: Position::new(position.line, position.character),
                            prompt_tokens: t.prompt_tokens,
                            evaluated_tokens: t.evaluated_tokens,
                            loaded_tokens: t.loaded_tokens,
                            ms: t.total_ms,
                        })
                        .await;
                    // The repo prefix is in the cache now: saving its snapshot is free.
                    me.warm_context(&uri, false);
                }
                Err(EngineError::Cancelled) => {}
                Err(e) => tracing::debug!("cursor warm-up failed: {e}"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_survives_as_a_line_and_column() {
        let rope = Rope::from_str("ab\r\n    \nxyz");
        assert_eq!(line_col(&rope, 8), (1, 4));
        // Typed one more char on that line, then restarted with the file as saved: clamped to
        // the line's end, before its newline.
        assert_eq!(offset(&rope, (1, 5)), 8);
        assert_eq!(offset(&rope, (0, 9)), 2);
        assert_eq!(offset(&rope, (9, 0)), rope.len_chars());
    }
}
