//! Open documents: text, version, syntax tree, and what the server keeps per document (prompt
//! anchor, suggestion cache, repo-context chunks).
//!
//! Edits are applied in arrival order, with no await in between (the handlers call in
//! synchronously); a stale version is refused; an edit outside the document marks it out of sync
//! until a full-text change, so the server never completes on text it does not hold.

use std::sync::Arc;

use dashmap::DashMap;
use dashmap::mapref::one::{Ref, RefMut};
use ropey::Rope;
use tower_lsp_server::ls_types::{TextDocumentContentChangeEvent, Uri};

use super::protocol;
use crate::complete::{Input, SuggestionCache};
use crate::document::{Document, Edit};
use crate::position::Encoding;
use crate::prompt::{Anchor, ContextFile};
use crate::syntax::{Lang, RopeEdit, Syntax};

/// Documents larger than this get no syntax tree: parsing them would hold up the I/O task.
const MAX_SYNTAX_BYTES: usize = 2 << 20;

/// A message with more edits than this parses its final text afresh (see [`Documents::change`]).
const MAX_TREE_EDITS: usize = 256;

fn syntax_for(lang: Option<Lang>, rope: &Rope) -> Option<Syntax> {
    lang.filter(|_| rope.len_bytes() <= MAX_SYNTAX_BYTES)
        .map(|l| Syntax::new(l, rope))
}

/// Where a document is, as the model sees it (see [`crate::workspace`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// Path relative to its workspace.
    pub path: String,
    /// The workspace's name.
    pub repo: String,
    /// The file (or what it links to) may hold secrets: no completions in it.
    pub secret: bool,
}

/// One open document and what the server keeps for it.
#[derive(Debug)]
pub struct DocState {
    pub doc: Document,
    /// The tree-sitter tree, for languages with a grammar; `None` also while the tree is put
    /// away (only the most recently used documents keep one, see [`MAX_TREES`]).
    pub syntax: Option<Syntax>,
    /// The grammar of the document, when there is one.
    lang: Option<Lang>,
    /// When the document was last opened, edited or completed in (a counter, for eviction).
    used: u64,
    pub place: Place,
    pub anchor: Option<Anchor>,
    pub cache: SuggestionCache,
    /// Set when an edit could not be applied; cleared by the next full-text change.
    pub out_of_sync: bool,
    /// Repo-context chunks for this file; changes only on open, save and index updates.
    pub context: Arc<Vec<ContextFile>>,
    /// True once the engine holds (and has saved) the KV of this context's prefix.
    pub warmed: bool,
    /// The client told where its cursor is (`inkling/cursor` or a completion request); until
    /// then the first edit's position stands for it.
    pub cursor_known: bool,
}

impl DocState {
    fn new(doc: Document, place: Place) -> Self {
        let lang = Lang::from_language_id(&doc.language).or_else(|| Lang::from_path(&place.path));
        DocState {
            syntax: syntax_for(lang, &doc.rope),
            lang,
            used: 0,
            doc,
            place,
            anchor: None,
            cache: SuggestionCache::default(),
            out_of_sync: false,
            context: Arc::new(Vec::new()),
            warmed: false,
            cursor_known: false,
        }
    }

    /// Parses the document again when its tree was put away; true when it did.
    pub fn ensure_syntax(&mut self) -> bool {
        if self.syntax.is_some() || self.lang.is_none() {
            return false;
        }
        self.syntax = syntax_for(self.lang, &self.doc.rope);
        self.syntax.is_some()
    }

    /// The completion input at char offset `cursor`.
    pub fn input(&self, cursor: usize) -> Input {
        Input {
            rope: self.doc.rope.clone(),
            cursor,
            path: self.place.path.clone(),
            repo: self.place.repo.clone(),
            language: self.doc.language.clone(),
            syntax: self.syntax.clone(),
            anchor: self.anchor,
            context: Arc::clone(&self.context),
            secret: self.place.secret,
        }
    }
}

/// What a `didChange` came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Every change was applied (or skipped while out of sync).
    Ok,
    /// The version was not newer than the one held: nothing was applied.
    Stale,
    /// The document is not open and no full text came with the change.
    Unknown,
    /// The document was not open; its full text opened it.
    Opened,
}

/// Documents that keep their syntax tree at once. A tree takes some 25 times the memory of its
/// text (1,000 open 19 KB files held 0.9 MB each), and only the documents being worked on need
/// one; another gets its tree back, parsed afresh, when it is edited or completed in.
pub const MAX_TREES: usize = 32;

/// The open documents by URI.
#[derive(Debug, Default)]
pub struct Documents {
    map: DashMap<Uri, DocState>,
    clock: std::sync::atomic::AtomicU64,
}

impl Documents {
    pub fn open(&self, uri: Uri, text: &str, version: i32, language: &str, place: Place) {
        let doc = Document::new(text, version, language);
        let mut state = DocState::new(doc, place);
        state.used = self.tick();
        let grew = state.syntax.is_some();
        self.map.insert(uri.clone(), state);
        if grew {
            self.put_away_trees(&uri);
        }
    }

    fn tick(&self) -> u64 {
        self.clock
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Marks a document used (a completion there) and gives it its tree back when it was put
    /// away.
    pub fn touch(&self, uri: &Uri) {
        let grew = match self.map.get_mut(uri) {
            Some(mut st) => {
                st.used = self.tick();
                st.ensure_syntax()
            }
            None => false,
        };
        if grew {
            self.put_away_trees(uri);
        }
    }

    /// Drops the trees of the least recently used documents beyond [`MAX_TREES`], never `keep`'s.
    fn put_away_trees(&self, keep: &Uri) {
        let mut with_tree: Vec<(u64, Uri)> = self
            .map
            .iter()
            .filter(|d| d.syntax.is_some() && d.key() != keep)
            .map(|d| (d.used, d.key().clone()))
            .collect();
        let excess = (with_tree.len() + 1).saturating_sub(MAX_TREES);
        if excess == 0 {
            return;
        }
        with_tree.sort_unstable();
        for (_, uri) in with_tree.into_iter().take(excess) {
            if let Some(mut d) = self.map.get_mut(&uri) {
                d.syntax = None;
            }
        }
    }

    pub fn close(&self, uri: &Uri) {
        self.map.remove(uri);
    }

    pub fn get(&self, uri: &Uri) -> Option<Ref<'_, Uri, DocState>> {
        self.map.get(uri)
    }

    pub fn get_mut(&self, uri: &Uri) -> Option<RefMut<'_, Uri, DocState>> {
        self.map.get_mut(uri)
    }

    pub fn iter(&self) -> dashmap::iter::Iter<'_, Uri, DocState> {
        self.map.iter()
    }

    pub fn iter_mut(&self) -> dashmap::iter::IterMut<'_, Uri, DocState> {
        self.map.iter_mut()
    }

    /// Applies one `didChange` in order. `place` names a document that a full-text change opens.
    pub fn change(
        &self,
        uri: &Uri,
        version: i32,
        changes: &[TextDocumentContentChangeEvent],
        enc: Encoding,
        place: impl FnOnce() -> Place,
    ) -> Applied {
        let Some(mut state) = self.map.get_mut(uri) else {
            // didChange before didOpen: a full-text change is enough to start tracking it.
            return match changes.iter().rev().find(|c| c.range.is_none()) {
                Some(full) => {
                    self.open(uri.clone(), &full.text, version, "", place());
                    Applied::Opened
                }
                None => Applied::Unknown,
            };
        };
        if version <= state.doc.version {
            return Applied::Stale;
        }
        let st = &mut *state;
        st.used = self.tick();
        // Edits mark the tree; it is reparsed once, after the last of them. Marking an edit can
        // cost a walk over a wide node's children, so a message with very many edits parses the
        // final text afresh instead.
        let incremental = changes.len() <= MAX_TREE_EDITS;
        let mut reparse = false;
        let mut fresh = false;
        for change in changes {
            match change.range {
                None => {
                    st.doc = Document::new(&change.text, version, &st.doc.language);
                    st.syntax = syntax_for(st.lang, &st.doc.rope);
                    st.out_of_sync = false;
                    reparse = false;
                    fresh = false;
                }
                Some(_) if st.out_of_sync => {}
                Some(range) => match protocol::to_char_range(&st.doc.rope, range, enc) {
                    Some((start, end)) => {
                        // Ropes clone in O(1): the tree's InputEdit needs the text before and after.
                        let before = st.doc.rope.clone();
                        st.doc.apply(&Edit {
                            start,
                            end,
                            text: change.text.clone(),
                        });
                        match st.syntax.as_mut() {
                            Some(syn) if incremental => {
                                reparse |= syn.edit_tree(&RopeEdit {
                                    before: &before,
                                    start,
                                    old_end: end,
                                    new_text: &change.text,
                                    after: &st.doc.rope,
                                });
                            }
                            Some(_) => fresh = true,
                            None => {}
                        }
                    }
                    None => {
                        tracing::warn!(
                            uri = uri.as_str(),
                            ?range,
                            "edit outside the document; waiting for a full resync"
                        );
                        st.out_of_sync = true;
                    }
                },
            }
        }
        if let Some(syn) = st.syntax.as_mut() {
            if fresh {
                syn.set_text(&st.doc.rope);
            } else if reparse {
                syn.reparse(&st.doc.rope);
            }
        }
        st.doc.version = version;
        // A document being edited gets its tree back if it was put away.
        let grew = st.ensure_syntax();
        drop(state);
        if grew {
            self.put_away_trees(uri);
        }
        Applied::Ok
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use tower_lsp_server::ls_types::{Position, Range};

    use super::*;

    fn uri() -> Uri {
        Uri::from_str("file:///w/a.py").unwrap()
    }

    fn place() -> Place {
        Place {
            path: "a.py".into(),
            repo: "w".into(),
            secret: false,
        }
    }

    fn insert(line: u32, character: u32, text: &str) -> TextDocumentContentChangeEvent {
        let p = Position::new(line, character);
        TextDocumentContentChangeEvent {
            range: Some(Range::new(p, p)),
            range_length: None,
            text: text.into(),
        }
    }

    fn full(text: &str) -> TextDocumentContentChangeEvent {
        TextDocumentContentChangeEvent {
            range: None,
            range_length: None,
            text: text.into(),
        }
    }

    fn text(docs: &Documents) -> String {
        docs.get(&uri()).unwrap().doc.rope.to_string()
    }

    #[test]
    fn changes_apply_in_order_within_and_across_messages() {
        let docs = Documents::default();
        docs.open(uri(), "x = \n", 1, "python", place());
        let enc = Encoding::Utf16;
        // Two edits in one message: the second sees the first.
        let r = docs.change(
            &uri(),
            2,
            &[insert(0, 4, "1"), insert(0, 5, "2")],
            enc,
            place,
        );
        assert_eq!(r, Applied::Ok);
        assert_eq!(text(&docs), "x = 12\n");
        let r = docs.change(&uri(), 3, &[insert(0, 6, "3")], enc, place);
        assert_eq!(r, Applied::Ok);
        assert_eq!(text(&docs), "x = 123\n");
        // The syntax tree follows the text.
        let d = docs.get(&uri()).unwrap();
        assert!(!d.syntax.as_ref().unwrap().tree().root_node().has_error());
        assert_eq!(d.doc.version, 3);
    }

    #[test]
    fn stale_versions_are_refused() {
        let docs = Documents::default();
        docs.open(uri(), "a\n", 5, "python", place());
        let enc = Encoding::Utf16;
        assert_eq!(
            docs.change(&uri(), 5, &[insert(0, 0, "b")], enc, place),
            Applied::Stale
        );
        assert_eq!(
            docs.change(&uri(), 4, &[insert(0, 0, "b")], enc, place),
            Applied::Stale
        );
        assert_eq!(text(&docs), "a\n");
        assert_eq!(
            docs.change(&uri(), 6, &[insert(0, 0, "b")], enc, place),
            Applied::Ok
        );
        assert_eq!(text(&docs), "ba\n");
    }

    #[test]
    fn an_edit_outside_waits_for_a_full_text_change() {
        let docs = Documents::default();
        docs.open(uri(), "a\n", 1, "python", place());
        let enc = Encoding::Utf16;
        docs.change(&uri(), 2, &[insert(9, 0, "x")], enc, place);
        assert!(docs.get(&uri()).unwrap().out_of_sync);
        // Later ranged edits are ignored: their positions refer to text the server lacks.
        docs.change(&uri(), 3, &[insert(0, 0, "y")], enc, place);
        assert_eq!(text(&docs), "a\n");
        docs.change(&uri(), 4, &[full("fresh\n"), insert(0, 5, "!")], enc, place);
        assert!(!docs.get(&uri()).unwrap().out_of_sync);
        assert_eq!(text(&docs), "fresh!\n");
    }

    #[test]
    fn many_edits_in_one_message_leave_a_matching_tree() {
        let docs = Documents::default();
        docs.open(uri(), "x = []\n", 1, "python", place());
        // 20,000 inserts in one message (the tree is reparsed once, after the last).
        let edits: Vec<_> = (0..20_000u32)
            .map(|i| insert(0, 5 + 2 * i, if i % 2 == 0 { "1," } else { "2," }))
            .collect();
        assert_eq!(
            docs.change(&uri(), 2, &edits, Encoding::Utf16, place),
            Applied::Ok
        );
        let d = docs.get(&uri()).unwrap();
        let text = d.doc.rope.to_string();
        assert_eq!(text.len(), "x = []\n".len() + 40_000);
        let fresh = Syntax::new(Lang::Python, &d.doc.rope);
        let kept = d.syntax.as_ref().unwrap();
        assert_eq!(
            kept.tree().root_node().to_sexp(),
            fresh.tree().root_node().to_sexp()
        );
    }

    #[test]
    fn only_the_most_recently_used_documents_keep_a_tree() {
        let docs = Documents::default();
        let uri_n = |i: usize| Uri::from_str(&format!("file:///w/d{i}.py")).unwrap();
        for i in 0..MAX_TREES + 10 {
            docs.open(uri_n(i), "x = 1\n", 1, "python", place());
        }
        let with_tree = || docs.iter().filter(|d| d.syntax.is_some()).count();
        assert_eq!(with_tree(), MAX_TREES);
        assert!(
            docs.get(&uri_n(0)).unwrap().syntax.is_none(),
            "the oldest lost its tree"
        );
        // An edit brings it back (parsed afresh, matching the text) and puts another away.
        let r = docs.change(&uri_n(0), 2, &[insert(0, 5, "2")], Encoding::Utf16, place);
        assert_eq!(r, Applied::Ok);
        let d = docs.get(&uri_n(0)).unwrap();
        let tree = d.syntax.as_ref().expect("tree back");
        let fresh = Syntax::new(Lang::Python, &d.doc.rope);
        assert_eq!(
            tree.tree().root_node().to_sexp(),
            fresh.tree().root_node().to_sexp()
        );
        drop(d);
        assert_eq!(with_tree(), MAX_TREES);
        // So does a completion there.
        assert!(docs.get(&uri_n(1)).unwrap().syntax.is_none());
        docs.touch(&uri_n(1));
        assert!(docs.get(&uri_n(1)).unwrap().syntax.is_some());
        assert_eq!(with_tree(), MAX_TREES);
    }

    #[test]
    fn only_lsp_line_breaks_count() {
        // Form feed, vertical tab, NEL, U+2028 and U+2029 are not line breaks in LSP.
        let docs = Documents::default();
        let odd = "a\u{c}b\u{b}c\u{85}d\u{2028}e\u{2029}f\nx\r\ny\rz\n";
        docs.open(uri(), odd, 1, "python", place());
        let enc = Encoding::Utf16;
        let r = docs.change(
            &uri(),
            2,
            &[
                insert(0, 11, "!"),
                insert(1, 1, "1"),
                insert(2, 1, "2"),
                insert(3, 1, "3"),
            ],
            enc,
            place,
        );
        assert_eq!(r, Applied::Ok);
        assert!(!docs.get(&uri()).unwrap().out_of_sync);
        assert_eq!(
            text(&docs),
            "a\u{c}b\u{b}c\u{85}d\u{2028}e\u{2029}f!\nx1\r\ny2\rz3\n"
        );
    }

    #[test]
    fn a_change_before_open_needs_the_full_text() {
        let docs = Documents::default();
        let enc = Encoding::Utf16;
        assert_eq!(
            docs.change(&uri(), 1, &[insert(0, 0, "x")], enc, place),
            Applied::Unknown
        );
        assert!(docs.get(&uri()).is_none());
        assert_eq!(
            docs.change(&uri(), 1, &[full("y = 1\n")], enc, place),
            Applied::Opened
        );
        assert_eq!(text(&docs), "y = 1\n");
        assert!(
            docs.get(&uri()).unwrap().syntax.is_some(),
            "language from the path"
        );
        docs.close(&uri());
        assert!(docs.get(&uri()).is_none());
    }
}
