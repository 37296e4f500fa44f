//! Tags (definitions and references), text objects and prompt context, from the query files.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use ropey::Rope;
use tree_sitter::{Node, Query, QueryCursor, StreamingIterator, TextProvider, Tree};

use super::{Lang, QueryKind, Syntax, query};

/// How many lines either side of the cursor [`context_symbols`] looks at for references.
pub const CONTEXT_LINES: usize = 50;

/// How deep in the tree an import may start (0 is the root).
const IMPORT_DEPTH: u32 = 4;

/// One definition or reference found by `queries/<lang>/tags.scm`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// The capture name, e.g. `definition.function`, `definition.class`, `reference.call`.
    pub kind: String,
    pub name: String,
    /// Byte range of the whole tagged node (the function, the call, ...).
    pub start_byte: usize,
    pub end_byte: usize,
    /// 0-based line of the name.
    pub line: usize,
}

impl Tag {
    pub fn is_definition(&self) -> bool {
        self.kind.starts_with("definition.")
    }

    pub fn is_reference(&self) -> bool {
        self.kind.starts_with("reference.")
    }
}

/// Imports and nearby references, for the repo-context prompt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContextSymbols {
    /// Module paths as written (`crate::engine::worker`, `os.path`, `./util`, `fmt`, `stdio.h`),
    /// without quotes or angle brackets; nearest to the cursor first.
    pub imports: Vec<String>,
    /// Names called or used as types within [`CONTEXT_LINES`] of the cursor, not counting names
    /// that are defined right there or the word under the cursor; nearest first.
    pub references: Vec<String>,
}

/// The tags of a whole source text (parsed afresh).
pub fn tags(lang: Lang, source: &str) -> Vec<Tag> {
    let mut parser = lang.parser();
    let Some(tree) = parser.parse(source, None) else {
        return Vec::new();
    };
    collect_tags(lang, &tree, source.as_bytes(), Scope::default())
}

impl Syntax {
    /// The tags of this document; `rope` must be its text.
    pub fn tags(&self, rope: &Rope) -> Vec<Tag> {
        collect_tags(self.lang, &self.tree, RopeText(rope), Scope::default())
    }
}

/// Byte ranges → text, for both `&str` sources and ropes.
trait Text: Copy {
    fn text(self, range: Range<usize>) -> String;
    fn with_provider<R>(self, f: impl FnOnce(&mut dyn FnMut(Node) -> Vec<u8>) -> R) -> R {
        let mut provider = |node: Node| self.text(node.byte_range()).into_bytes();
        f(&mut provider)
    }
}

impl Text for &[u8] {
    fn text(self, range: Range<usize>) -> String {
        let end = range.end.min(self.len());
        let start = range.start.min(end);
        String::from_utf8_lossy(&self[start..end]).into_owned()
    }
}

#[derive(Clone, Copy)]
struct RopeText<'a>(&'a Rope);

impl Text for RopeText<'_> {
    fn text(self, range: Range<usize>) -> String {
        // `byte_to_char` rounds into the enclosing char, so no offset can panic here.
        let len = self.0.len_bytes();
        let start = self.0.byte_to_char(range.start.min(len));
        let end = self.0.byte_to_char(range.end.min(len));
        self.0.slice(start..end.max(start)).to_string()
    }
}

/// Adapts a node → bytes closure to tree-sitter's text provider (used by `#eq?` / `#match?`).
struct Provider<'a>(&'a mut dyn FnMut(Node) -> Vec<u8>);

impl TextProvider<Vec<u8>> for Provider<'_> {
    type I = std::iter::Once<Vec<u8>>;
    fn text(&mut self, node: Node) -> Self::I {
        std::iter::once((self.0)(node))
    }
}

/// Where a query runs: the whole tree, or a byte range, and how deep its matches may start.
#[derive(Default)]
struct Scope {
    range: Option<Range<usize>>,
    max_start_depth: Option<u32>,
}

impl Scope {
    fn range(range: Range<usize>) -> Scope {
        Scope {
            range: Some(range),
            max_start_depth: None,
        }
    }
}

/// Runs `query` over `tree` within `scope` and calls `f` with each match's pattern index and
/// captures as (capture name, node) pairs.
fn for_each_match<T: Text>(
    query: &Query,
    tree: &Tree,
    text: T,
    scope: Scope,
    mut f: impl FnMut(usize, &[(&str, Node)]),
) {
    let names = query.capture_names();
    let mut cursor = QueryCursor::new();
    if let Some(range) = scope.range {
        cursor.set_byte_range(range);
    }
    cursor.set_max_start_depth(scope.max_start_depth);
    text.with_provider(|provider| {
        let mut matches = cursor.matches(query, tree.root_node(), Provider(provider));
        while let Some(m) = matches.next() {
            let captures: Vec<(&str, Node)> = m
                .captures
                .iter()
                .map(|c| (names[c.index as usize], c.node))
                .collect();
            f(m.pattern_index, &captures);
        }
    });
}

fn collect_tags<T: Text>(lang: Lang, tree: &Tree, text: T, scope: Scope) -> Vec<Tag> {
    let Some(query) = query(lang, QueryKind::Tags) else {
        return Vec::new();
    };
    // Several patterns can tag the same node (a method also looks like a function); the first
    // pattern in the file is the more specific one and wins.
    let mut best: HashMap<(usize, usize, usize), (usize, Tag)> = HashMap::new();
    for_each_match(query, tree, text, scope, |pattern, captures| {
        let name = captures.iter().find(|(n, _)| *n == "name").map(|c| c.1);
        let tagged = captures
            .iter()
            .find(|(n, _)| n.starts_with("definition.") || n.starts_with("reference."));
        let (Some(name), Some((kind, node))) = (name, tagged) else {
            return;
        };
        let key = (node.start_byte(), node.end_byte(), name.start_byte());
        if best.get(&key).is_some_and(|(p, _)| *p <= pattern) {
            return;
        }
        let tag = Tag {
            kind: kind.to_string(),
            name: text.text(name.byte_range()),
            start_byte: node.start_byte(),
            end_byte: node.end_byte(),
            line: name.start_position().row,
        };
        best.insert(key, (pattern, tag));
    });
    let mut tags: Vec<(usize, Tag)> = best.into_values().collect();
    tags.sort_by_key(|(p, t)| (t.start_byte, std::cmp::Reverse(t.end_byte), *p));
    tags.into_iter().map(|(_, t)| t).collect()
}

/// The char range of the innermost `capture` (e.g. `function.around`, `class.inside`,
/// `block.around`) from `textobjects.scm` that contains the cursor.
pub fn text_object(
    syntax: &Syntax,
    rope: &Rope,
    cursor: usize,
    capture: &str,
) -> Option<Range<usize>> {
    let query = query(syntax.lang, QueryKind::TextObjects)?;
    if !syntax.matches(rope) {
        return None;
    }
    let byte = rope.char_to_byte(cursor.min(rope.len_chars()));
    let mut best: Option<Range<usize>> = None;
    for_each_match(
        query,
        &syntax.tree,
        RopeText(rope),
        Scope::range(byte..byte + 1),
        |_, captures| {
            for (name, node) in captures {
                let r = node.byte_range();
                if *name == capture
                    && r.start <= byte
                    && byte <= r.end
                    && best.as_ref().is_none_or(|b| r.len() < b.len())
                {
                    best = Some(r);
                }
            }
        },
    );
    best.map(|r| rope.byte_to_char(r.start)..rope.byte_to_char(r.end))
}

/// Byte ranges of the `@function.around` and `@class.around` nodes overlapping `range`.
pub(crate) fn definition_ranges(
    lang: Lang,
    tree: &Tree,
    text: &str,
    range: Range<usize>,
) -> HashSet<(usize, usize)> {
    let mut out = HashSet::new();
    let Some(query) = query(lang, QueryKind::TextObjects) else {
        return out;
    };
    for_each_match(
        query,
        tree,
        text.as_bytes(),
        Scope::range(range),
        |_, captures| {
            for (name, node) in captures {
                if *name == "function.around" || *name == "class.around" {
                    out.insert((node.start_byte(), node.end_byte()));
                }
            }
        },
    );
    out
}

/// Imports of the file and the names referenced near the cursor, both nearest first.
pub fn context_symbols(syntax: &Syntax, rope: &Rope, cursor: usize) -> ContextSymbols {
    if !syntax.matches(rope) {
        return ContextSymbols::default();
    }
    let cursor = cursor.min(rope.len_chars());
    let byte = rope.char_to_byte(cursor);
    let text = RopeText(rope);

    let mut imports: Vec<(usize, String)> = Vec::new();
    if let Some(q) = query(syntax.lang, QueryKind::Imports) {
        // Imports sit at the top level or a few levels down (in a function, an `#ifdef`, a
        // `const x = require()`); not looking deeper makes this ~5x faster on large files.
        let scope = Scope {
            range: None,
            max_start_depth: Some(IMPORT_DEPTH),
        };
        for_each_match(q, &syntax.tree, text, scope, |_, captures| {
            for (name, node) in captures {
                if *name == "import" {
                    let path = clean_import(&text.text(node.byte_range()));
                    if !path.is_empty() {
                        imports.push((node.start_byte().abs_diff(byte), path));
                    }
                }
            }
        });
    }

    let line = rope.char_to_line(cursor);
    let first = rope.line_to_byte(line.saturating_sub(CONTEXT_LINES));
    let last = rope.line_to_byte((line + CONTEXT_LINES + 1).min(rope.len_lines()));
    let tags = collect_tags(syntax.lang, &syntax.tree, text, Scope::range(first..last));
    let defined: HashSet<&str> = tags
        .iter()
        .filter(|t| t.is_definition())
        .map(|t| t.name.as_str())
        .collect();
    let at_cursor = word_at(rope, cursor);
    let mut references: Vec<(usize, String)> = tags
        .iter()
        .filter(|t| t.is_reference())
        .filter(|t| !defined.contains(t.name.as_str()) && Some(&t.name) != at_cursor.as_ref())
        .map(|t| (distance(t, byte), t.name.clone()))
        .collect();

    ContextSymbols {
        imports: nearest_unique(&mut imports),
        references: nearest_unique(&mut references),
    }
}

/// Imports and references of the whole file (names defined in it left out), the most used
/// first. Unlike [`context_symbols`] it does not move with the cursor, so the repo context chosen
/// from it stays put while the user types.
pub fn file_symbols(lang: Lang, source: &str) -> ContextSymbols {
    let mut parser = lang.parser();
    let Some(tree) = parser.parse(source, None) else {
        return ContextSymbols::default();
    };
    let text = source.as_bytes();
    let mut imports: Vec<(usize, String)> = Vec::new();
    if let Some(q) = query(lang, QueryKind::Imports) {
        let scope = Scope {
            range: None,
            max_start_depth: Some(IMPORT_DEPTH),
        };
        for_each_match(q, &tree, text, scope, |_, captures| {
            for (name, node) in captures {
                if *name == "import" {
                    let path = clean_import(&text.text(node.byte_range()));
                    if !path.is_empty() {
                        imports.push((node.start_byte(), path));
                    }
                }
            }
        });
    }
    let tags = collect_tags(lang, &tree, text, Scope::default());
    let defined: HashSet<&str> = tags
        .iter()
        .filter(|t| t.is_definition())
        .map(|t| t.name.as_str())
        .collect();
    let mut counts: HashMap<&str, (usize, usize)> = HashMap::new();
    for t in tags.iter().filter(|t| t.is_reference()) {
        if !defined.contains(t.name.as_str()) {
            let e = counts.entry(t.name.as_str()).or_insert((0, t.start_byte));
            e.0 += 1;
        }
    }
    let mut references: Vec<(&str, (usize, usize))> = counts.into_iter().collect();
    // Most used first; ties in document order, so the result is deterministic.
    references.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.1.1.cmp(&b.1.1)));
    ContextSymbols {
        imports: nearest_unique(&mut imports),
        references: references.into_iter().map(|(n, _)| n.to_string()).collect(),
    }
}

fn distance(tag: &Tag, byte: usize) -> usize {
    if (tag.start_byte..tag.end_byte).contains(&byte) {
        0
    } else {
        tag.start_byte
            .abs_diff(byte)
            .min(tag.end_byte.abs_diff(byte))
    }
}

/// Sorts by distance (stable, so ties keep document order) and drops repeated names.
fn nearest_unique(items: &mut [(usize, String)]) -> Vec<String> {
    items.sort_by_key(|(d, _)| *d);
    let mut seen = HashSet::new();
    items
        .iter()
        .filter(|(_, s)| seen.insert(s.clone()))
        .map(|(_, s)| s.clone())
        .collect()
}

/// Strips quotes and angle brackets from an include/import path.
fn clean_import(raw: &str) -> String {
    raw.trim()
        .trim_matches(|c| matches!(c, '"' | '\'' | '`' | '<' | '>'))
        .trim()
        .to_string()
}

/// The identifier the cursor touches, if any (it is being typed: not a reference yet).
fn word_at(rope: &Rope, cursor: usize) -> Option<String> {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let mut start = cursor;
    while start > 0 && is_word(rope.char(start - 1)) {
        start -= 1;
    }
    let mut end = cursor;
    while end < rope.len_chars() && is_word(rope.char(end)) {
        end += 1;
    }
    (end > start).then(|| rope.slice(start..end).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_paths_lose_their_quotes() {
        assert_eq!(clean_import("\"util.h\""), "util.h");
        assert_eq!(clean_import("<stdio.h>"), "stdio.h");
        assert_eq!(clean_import(" crate::a::b "), "crate::a::b");
    }

    #[test]
    fn nearest_first_without_repeats() {
        let mut items = vec![
            (5, "b".to_string()),
            (1, "a".to_string()),
            (3, "b".to_string()),
        ];
        assert_eq!(nearest_unique(&mut items), ["a", "b"]);
    }

    #[test]
    fn word_under_cursor() {
        let rope = Rope::from_str("let value = 1;");
        assert_eq!(word_at(&rope, 6).as_deref(), Some("value"));
        assert_eq!(word_at(&rope, 10), None);
    }
}
