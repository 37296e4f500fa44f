//! Turning a document and a cursor into a suggestion: prompt planning, the engine call, and the
//! tricks that avoid the model (typed-through reuse of shown suggestions, prefetched ones).
//!
//! Shared by `inkling complete`, the language server and the benchmark, so they measure the same
//! code path.
//!
//! Architecture Invariant: no LSP types; documents are ropes and cursors are char offsets.

use std::sync::Arc;
use std::time::Duration;

use ropey::Rope;

use crate::config::Settings;
use crate::engine::{CancelToken, EngineError, GenerateRequest, Generation, Generator};
use crate::prompt::{self, Anchor, ContextFile, FileView, Plan};
use crate::syntax::{self, Shape, Syntax};

/// Builds engine requests from settings.
#[derive(Clone)]
pub struct Completer {
    pub engine: Arc<dyn Generator>,
    pub settings: Settings,
}

impl std::fmt::Debug for Completer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Completer")
            .field("model", &self.engine.name())
            .finish()
    }
}

impl Completer {
    pub fn new(engine: Arc<dyn Generator>, settings: Settings) -> Self {
        Completer { engine, settings }
    }

    /// What kind of suggestion fits at the cursor; `Nothing` means do not ask the model.
    pub fn shape(&self, syntax: Option<&Syntax>, view: &FileView) -> Shape {
        if !self.settings.syntax {
            return Shape::Block;
        }
        syntax::shape(syntax, view.rope, view.cursor)
    }

    /// Trims a finished suggestion to the code around it (the end of its block, no repeated
    /// closers, nothing that breaks a file that parsed). Empty: show nothing.
    pub fn fit(&self, syntax: Option<&Syntax>, view: &FileView, text: &str) -> String {
        if !self.settings.syntax || text.is_empty() {
            return text.to_string();
        }
        syntax::fit(syntax, view.rope, view.cursor, text).unwrap_or_default()
    }

    /// Plans the prompt and the request for `view`, shaped by the syntax tree when there is one.
    pub fn request_shaped(
        &self,
        view: &FileView,
        anchor: Option<&Anchor>,
        context: &[ContextFile],
        shape: Shape,
    ) -> (Plan, GenerateRequest) {
        let (plan, mut req) = self.request(view, anchor, context);
        if self.settings.syntax {
            match shape {
                Shape::Line => req.stop.single_line = true,
                Shape::Block => req.stop.single_line = false,
                Shape::Nothing => {}
            }
        }
        (plan, req)
    }

    /// Plans the prompt and the request for `view` (text rules only).
    pub fn request(
        &self,
        view: &FileView,
        anchor: Option<&Anchor>,
        context: &[ContextFile],
    ) -> (Plan, GenerateRequest) {
        let plan = prompt::plan(view, &self.settings.budget(), context, anchor);
        let req = GenerateRequest {
            prompt: plan.prompt.clone(),
            stop: plan.stop.clone(),
            max_tokens: self.settings.max_tokens,
            time_cap_after_newline: Some(Duration::from_millis(self.settings.time_cap_ms)),
            partial: None,
            speculation: self.settings.speculation,
            kv: crate::engine::KvReuse::default(),
            persist: false,
        };
        (plan, req)
    }

    /// One blocking completion (CLI, tests, benchmark), with the syntax rules when `syntax` is given.
    pub fn complete_blocking(
        &self,
        view: &FileView,
        anchor: Option<&Anchor>,
        context: &[ContextFile],
        cancel: CancelToken,
    ) -> Result<(Plan, Generation), EngineError> {
        self.complete_with_syntax(None, view, anchor, context, cancel)
    }

    pub fn complete_with_syntax(
        &self,
        syntax: Option<&Syntax>,
        view: &FileView,
        anchor: Option<&Anchor>,
        context: &[ContextFile],
        cancel: CancelToken,
    ) -> Result<(Plan, Generation), EngineError> {
        let shape = self.shape(syntax, view);
        let (plan, req) = self.request_shaped(view, anchor, context, shape);
        if shape == Shape::Nothing {
            let g = Generation {
                text: String::new(),
                raw: String::new(),
                stop_reason: crate::engine::StopReason::StopRule,
                timings: Default::default(),
            };
            return Ok((plan, g));
        }
        let mut g = self
            .engine
            .submit(req, cancel)
            .blocking_recv()
            .unwrap_or(Err(EngineError::Gone))?;
        g.text = self.fit(syntax, view, &g.text);
        Ok((plan, g))
    }
}

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

    pub fn insert(&mut self, s: Shown) {
        self.entries.retain(|e| e != &s);
        self.entries.insert(0, s);
        self.entries.truncate(Self::MAX);
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
}
