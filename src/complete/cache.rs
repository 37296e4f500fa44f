//! The tricks that avoid the model: suggestions kept per document state, so that typing through
//! a shown suggestion (or accepting it, for a prefetched one) is answered without a model job.
//!
//! Architecture Invariant: no LSP types; documents are ropes and cursors are char offsets.

use ropey::Rope;

/// A suggestion that was computed for one document state, kept so that typing through it (or
/// accepting it) is answered without the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// Cursor (char offset) when the suggestion was made.
    pub cursor: usize,
    /// Up to [`CONTEXT_CHARS`] chars before and after the cursor at that time.
    pub before: String,
    pub after: String,
    pub suggestion: String,
    /// True when it was computed ahead of time for the state after accepting another suggestion.
    pub prefetched: bool,
}

/// How much text around the cursor must match for a cached suggestion to apply.
pub const CONTEXT_CHARS: usize = 256;

fn around(rope: &Rope, cursor: usize) -> (String, String) {
    let cursor = cursor.min(rope.len_chars());
    let b = cursor.saturating_sub(CONTEXT_CHARS);
    let a = (cursor + CONTEXT_CHARS).min(rope.len_chars());
    (
        rope.slice(b..cursor).to_string(),
        rope.slice(cursor..a).to_string(),
    )
}

impl Shown {
    pub fn new(rope: &Rope, cursor: usize, suggestion: String, prefetched: bool) -> Self {
        let (before, after) = around(rope, cursor);
        Shown {
            cursor,
            before,
            after,
            suggestion,
            prefetched,
        }
    }

    /// The rest of the suggestion if the user has typed a prefix of it since it was made.
    pub fn typed_through(&self, rope: &Rope, cursor: usize) -> Option<String> {
        let typed = self.typed_since(rope, cursor)?;
        let rest = self.suggestion.strip_prefix(typed.as_str())?;
        (!rest.is_empty()).then(|| rest.to_string())
    }

    /// The text typed at the cursor since this state, if nothing else changed around it.
    pub fn typed_since(&self, rope: &Rope, cursor: usize) -> Option<String> {
        if cursor < self.cursor || cursor > rope.len_chars() {
            return None;
        }
        let before_len = self.before.chars().count();
        if self.cursor < before_len || self.cursor > rope.len_chars() {
            return None;
        }
        if rope.slice(self.cursor - before_len..self.cursor) != self.before.as_str() {
            return None;
        }
        let after_len = self.after.chars().count();
        let end = (cursor + after_len).min(rope.len_chars());
        if rope.slice(cursor..end) != self.after.as_str() {
            return None;
        }
        Some(rope.slice(self.cursor..cursor).to_string())
    }

    /// Both were made for the same document state (and the same kind: prefetched or not).
    pub fn same_state(&self, other: &Shown) -> bool {
        self.cursor == other.cursor
            && self.prefetched == other.prefetched
            && self.before == other.before
            && self.after == other.after
    }

    /// The document and cursor as they would be after accepting this suggestion.
    pub fn accepted(&self, rope: &Rope) -> (Rope, usize) {
        let mut r = rope.clone();
        let at = self.cursor.min(r.len_chars());
        r.insert(at, &self.suggestion);
        (r, at + self.suggestion.chars().count())
    }
}

/// A few recent suggestions per document, newest first.
#[derive(Debug, Clone, Default)]
pub struct SuggestionCache {
    entries: Vec<Shown>,
}

impl SuggestionCache {
    const MAX: usize = 8;

    /// Keeps `s`, replacing what was kept for the same document state (a streamed suggestion
    /// grows in place instead of filling the cache with its pieces).
    pub fn insert(&mut self, s: Shown) {
        self.remove(&s);
        self.entries.insert(0, s);
        self.entries.truncate(Self::MAX);
    }

    /// Forgets what was kept for `s`'s document state (a streamed piece whose finished text
    /// turned out not to fit).
    pub fn remove(&mut self, s: &Shown) {
        self.entries.retain(|e| !e.same_state(s));
    }

    /// A cached answer for this state: (rest of suggestion, was it prefetched).
    pub fn lookup(&self, rope: &Rope, cursor: usize) -> Option<(String, bool)> {
        self.entries
            .iter()
            .find_map(|e| e.typed_through(rope, cursor).map(|r| (r, e.prefetched)))
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typing_through_a_suggestion() {
        let rope = Rope::from_str("def add(a, b):\n    \n");
        let cursor = 19;
        let shown = Shown::new(&rope, cursor, "return a + b".into(), false);
        let mut typed = rope.clone();
        typed.insert(cursor, "ret");
        assert_eq!(
            shown.typed_through(&typed, cursor + 3).as_deref(),
            Some("urn a + b")
        );
        // A character that does not follow the suggestion.
        let mut other = rope.clone();
        other.insert(cursor, "x");
        assert_eq!(shown.typed_through(&other, cursor + 1), None);
        // Typed everything: nothing left to show.
        let mut all = rope.clone();
        all.insert(cursor, "return a + b");
        assert_eq!(shown.typed_through(&all, cursor + 12), None);
        // An edit above the cursor invalidates it.
        let mut above = typed.clone();
        above.insert(0, "#\n");
        assert_eq!(shown.typed_through(&above, cursor + 5), None);
    }

    #[test]
    fn prefetched_suggestion_after_accept() {
        let rope = Rope::from_str("x = [\n");
        let first = Shown::new(&rope, 5, "1, 2".into(), false);
        let (accepted, cursor) = first.accepted(&rope);
        assert_eq!(accepted.to_string(), "x = [1, 2\n");
        let mut cache = SuggestionCache::default();
        cache.insert(first);
        cache.insert(Shown::new(&accepted, cursor, ", 3]".into(), true));
        assert_eq!(
            cache.lookup(&accepted, cursor),
            Some((", 3]".to_string(), true))
        );
    }

    #[test]
    fn a_growing_suggestion_replaces_its_shorter_piece() {
        let rope = Rope::from_str("x = \n");
        let mut cache = SuggestionCache::default();
        cache.insert(Shown::new(&rope, 4, "comp".into(), false));
        cache.insert(Shown::new(&rope, 4, "compute(".into(), false));
        assert_eq!(cache.entries.len(), 1);
        assert_eq!(
            cache.lookup(&rope, 4),
            Some(("compute(".to_string(), false))
        );
        cache.remove(&Shown::new(&rope, 4, String::new(), false));
        assert_eq!(cache.lookup(&rope, 4), None);
    }
}
