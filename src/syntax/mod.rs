//! Syntax layer: one incrementally updated tree-sitter tree per document, and the rules built on it.
//!
//! - [`Syntax`]: the tree of one document, updated from char-range edits on a rope (parsers are
//!   kept per thread and language, not per document).
//! - [`shape`]: whether a suggestion at the cursor should be nothing, one line or a block.
//! - [`fit`]: post-processing of a model suggestion (stop at the end of the enclosing block or at a
//!   new sibling definition, no duplicated closers, drop suggestions that break a clean tree).
//! - [`tags`], [`context_symbols`], [`text_object`]: queries from `queries/<lang>/*.scm`, kept as
//!   data files and compiled once per language.
//!
//! Architecture Invariant: no LSP types and no model; input is a rope and char offsets. Every entry
//! point degrades to text rules when a language has no grammar, and nothing here panics on input
//! (offsets are clamped).

mod fit;
mod queries;
mod shape;
mod tags;

use std::collections::HashMap;
use std::fmt;

use ropey::Rope;
use tree_sitter::{InputEdit, Language, Parser, Point, Tree};

pub use fit::{FIT_MAX_BYTES, fit, fit_piece};
pub use queries::{QueryKind, compile_query, query, query_source};
pub use shape::{MAX_TAIL, Shape, shape};
pub use tags::{
    CONTEXT_LINES, ContextSymbols, Tag, context_symbols, file_symbols, tags, text_object,
};

/// Languages with a bundled grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    Rust,
    Python,
    JavaScript,
    TypeScript,
    Tsx,
    Go,
    C,
    Cpp,
    Java,
}

impl Lang {
    /// Every language, for tests and tables.
    pub const ALL: [Lang; 9] = [
        Lang::Rust,
        Lang::Python,
        Lang::JavaScript,
        Lang::TypeScript,
        Lang::Tsx,
        Lang::Go,
        Lang::C,
        Lang::Cpp,
        Lang::Java,
    ];

    /// From an LSP `languageId`.
    pub fn from_language_id(id: &str) -> Option<Lang> {
        Some(match id {
            "rust" => Lang::Rust,
            "python" => Lang::Python,
            "javascript" | "javascriptreact" => Lang::JavaScript,
            "typescript" => Lang::TypeScript,
            "typescriptreact" => Lang::Tsx,
            "go" => Lang::Go,
            "c" => Lang::C,
            "cpp" | "cuda-cpp" => Lang::Cpp,
            "java" => Lang::Java,
            _ => return None,
        })
    }

    /// From a file path or URI, by extension (case-insensitive).
    pub fn from_path(path: &str) -> Option<Lang> {
        let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
        let (_, ext) = name.rsplit_once('.')?;
        Some(match ext.to_ascii_lowercase().as_str() {
            "rs" => Lang::Rust,
            "py" | "pyi" | "pyw" => Lang::Python,
            "js" | "mjs" | "cjs" | "jsx" => Lang::JavaScript,
            "ts" | "mts" | "cts" => Lang::TypeScript,
            "tsx" => Lang::Tsx,
            "go" => Lang::Go,
            // `.h` is shared by C and C++; the C grammar is the conventional default.
            "c" | "h" => Lang::C,
            "cc" | "cpp" | "cxx" | "c++" | "hh" | "hpp" | "hxx" | "h++" | "ipp" | "tpp" | "cu" => {
                Lang::Cpp
            }
            "java" => Lang::Java,
            _ => return None,
        })
    }

    /// Short lowercase name, also the folder under `queries/`.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::JavaScript => "javascript",
            Lang::TypeScript => "typescript",
            Lang::Tsx => "tsx",
            Lang::Go => "go",
            Lang::C => "c",
            Lang::Cpp => "cpp",
            Lang::Java => "java",
        }
    }

    /// The tree-sitter grammar.
    pub fn language(self) -> Language {
        match self {
            Lang::Rust => tree_sitter_rust::LANGUAGE.into(),
            Lang::Python => tree_sitter_python::LANGUAGE.into(),
            Lang::JavaScript => tree_sitter_javascript::LANGUAGE.into(),
            Lang::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
            Lang::Tsx => tree_sitter_typescript::LANGUAGE_TSX.into(),
            Lang::Go => tree_sitter_go::LANGUAGE.into(),
            Lang::C => tree_sitter_c::LANGUAGE.into(),
            Lang::Cpp => tree_sitter_cpp::LANGUAGE.into(),
            Lang::Java => tree_sitter_java::LANGUAGE.into(),
        }
    }

    /// Blocks are delimited by indentation rather than brackets.
    pub fn indent_blocks(self) -> bool {
        self == Lang::Python
    }

    /// Runs `f` with this thread's parser for the language. Parsers are kept per thread and
    /// language rather than per document: an idle document then holds only its tree (a parser
    /// per open document cost memory for nothing), and a snapshot of a tree needs no new parser.
    pub(crate) fn with_parser<R>(self, f: impl FnOnce(&mut Parser) -> R) -> R {
        thread_local! {
            static PARSERS: std::cell::RefCell<HashMap<Lang, Parser>> =
                std::cell::RefCell::new(HashMap::new());
        }
        PARSERS.with(|cell| match cell.try_borrow_mut() {
            Ok(mut parsers) => f(parsers.entry(self).or_insert_with(|| self.parser())),
            // Re-entered (never expected): a parser of its own.
            Err(_) => f(&mut self.parser()),
        })
    }

    /// A parser set to this language.
    pub(crate) fn parser(self) -> Parser {
        let mut parser = Parser::new();
        // Only fails on an ABI mismatch between tree-sitter and a grammar crate, which the query
        // compile test catches for every language.
        parser
            .set_language(&self.language())
            .expect("grammar ABI is supported by this tree-sitter version");
        parser
    }
}

/// One edit of a document, as [`Syntax::edit_tree`] takes it: `start..old_end` (char offsets
/// on `before`) replaced by `new_text`, giving `after`.
#[derive(Debug, Clone, Copy)]
pub struct RopeEdit<'a> {
    pub before: &'a Rope,
    pub start: usize,
    pub old_end: usize,
    pub new_text: &'a str,
    pub after: &'a Rope,
}

/// One document's tree, updated incrementally.
#[derive(Clone)]
pub struct Syntax {
    tree: Tree,
    lang: Lang,
    /// The text has no line breaks other than `\n` and `\r\n`, so ropey's line index equals
    /// tree-sitter's row (which counts `\n` only) and points can be computed in O(log n).
    plain_lines: bool,
}

impl fmt::Debug for Syntax {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Syntax")
            .field("lang", &self.lang)
            .field("bytes", &self.tree.root_node().end_byte())
            .field("has_error", &self.tree.root_node().has_error())
            .finish()
    }
}

impl Syntax {
    /// Parses the whole rope.
    pub fn new(lang: Lang, rope: &Rope) -> Syntax {
        let tree = lang.with_parser(|p| parse_rope(p, rope, None));
        Syntax {
            tree,
            lang,
            plain_lines: plain_lines(rope.slice(..)),
        }
    }

    /// Replaces the whole text (a full-document sync): a fresh parse.
    pub fn set_text(&mut self, rope: &Rope) {
        self.tree = self.lang.with_parser(|p| parse_rope(p, rope, None));
        self.plain_lines = plain_lines(rope.slice(..));
    }

    /// Applies one edit given in char offsets on `before` (`start..old_end` replaced by
    /// `new_text`), with `after` the rope once the edit is applied, and reparses incrementally.
    /// Out-of-range offsets are clamped.
    pub fn edit(
        &mut self,
        before: &Rope,
        start: usize,
        old_end: usize,
        new_text: &str,
        after: &Rope,
    ) {
        let e = RopeEdit {
            before,
            start,
            old_end,
            new_text,
            after,
        };
        if self.edit_tree(&e) {
            self.reparse(after);
        }
    }

    /// Reparses `rope` (this document's text after [`Syntax::edit_tree`] calls) incrementally.
    pub fn reparse(&mut self, rope: &Rope) {
        let old = &self.tree;
        self.tree = self.lang.with_parser(|p| parse_rope(p, rope, Some(old)));
    }

    /// Like [`Syntax::edit`], but only marks the edit in the tree: a message with many edits
    /// reparses once, after the last (a reparse per edit made one message of 20,000 edits take
    /// seconds). False when the ropes did not describe the edit and the text was parsed afresh.
    pub fn edit_tree(&mut self, e: &RopeEdit<'_>) -> bool {
        let RopeEdit {
            before,
            start,
            old_end,
            new_text,
            after,
        } = *e;
        let len = before.len_chars();
        let start = start.min(len);
        let old_end = old_end.clamp(start, len);
        let new_end = start + new_text.chars().count();
        if after.len_chars() != len - (old_end - start) + (new_end - start) {
            // The ropes do not describe this edit: parse the new text afresh.
            self.set_text(after);
            return false;
        }
        let start_byte = before.char_to_byte(start);
        let old_end_byte = before.char_to_byte(old_end);
        let new_end_byte = after.char_to_byte(new_end);
        let start_position = point_at(before, start_byte, self.plain_lines);
        let old_end_position = point_at(before, old_end_byte, self.plain_lines);
        // Only the text around the edit can have changed which line breaks the rope holds.
        if self.plain_lines {
            let lo = start.saturating_sub(1);
            let hi = (new_end + 1).min(after.len_chars());
            self.plain_lines = plain_lines(after.slice(lo..hi));
        }
        let new_end_position = point_at(after, new_end_byte, self.plain_lines);
        self.tree.edit(&InputEdit {
            start_byte,
            old_end_byte,
            new_end_byte,
            start_position,
            old_end_position,
            new_end_position,
        });
        true
    }

    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    pub fn lang(&self) -> Lang {
        self.lang
    }

    /// Tree-sitter's point (row, byte column) of a byte offset in `rope`, which must be this
    /// document's text.
    pub fn point(&self, rope: &Rope, byte: usize) -> Point {
        point_at(rope, byte.min(rope.len_bytes()), self.plain_lines)
    }

    /// The tree matches `rope` in length; a cheap guard against a caller passing another text.
    pub(crate) fn matches(&self, rope: &Rope) -> bool {
        self.tree.root_node().end_byte() == rope.len_bytes()
    }
}

/// Parses a rope chunk by chunk, without copying it into one string.
pub(crate) fn parse_rope(parser: &mut Parser, rope: &Rope, old: Option<&Tree>) -> Tree {
    let len = rope.len_bytes();
    let mut read = |byte: usize, _: Point| -> &[u8] {
        if byte >= len {
            return &[];
        }
        let (chunk, chunk_start, _, _) = rope.chunk_at_byte(byte);
        &chunk.as_bytes()[byte - chunk_start..]
    };
    // With a language set and neither a progress callback nor cancellation, parsing always
    // returns a tree.
    parser
        .parse_with_options(&mut read, old, None)
        .expect("parser has a language and no cancellation")
}

/// Whether every line break in `text` is `\n` or `\r\n`.
fn plain_lines(text: ropey::RopeSlice<'_>) -> bool {
    let mut prev_cr = false;
    for c in text.chars() {
        if prev_cr && c != '\n' {
            return false;
        }
        prev_cr = c == '\r';
        if matches!(c, '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}') {
            return false;
        }
    }
    !prev_cr
}

/// Tree-sitter's point for a byte offset: rows count `\n`, columns are bytes.
fn point_at(rope: &Rope, byte: usize, plain_lines: bool) -> Point {
    let byte = byte.min(rope.len_bytes());
    if plain_lines {
        let row = rope.byte_to_line(byte);
        return Point::new(row, byte - rope.line_to_byte(row));
    }
    // Other line breaks in the text: count `\n` ourselves (linear, but rare).
    let mut row = 0;
    let mut line_start = 0;
    let mut offset = 0;
    for chunk in rope.byte_slice(..byte).chunks() {
        for (i, b) in chunk.bytes().enumerate() {
            if b == b'\n' {
                row += 1;
                line_start = offset + i + 1;
            }
        }
        offset += chunk.len();
    }
    Point::new(row, byte - line_start)
}

/// The point reached from `start` after the text `s`.
pub(crate) fn advance_point(start: Point, s: &str) -> Point {
    match s.rfind('\n') {
        Some(i) => Point::new(
            start.row + s.bytes().filter(|b| *b == b'\n').count(),
            s.len() - i - 1,
        ),
        None => Point::new(start.row, start.column + s.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_count_newlines_only() {
        let rope = Rope::from_str("ab\r\ncd\u{2028}é\rx\n");
        for byte in 0..=rope.len_bytes() {
            if !rope.to_string().is_char_boundary(byte) {
                continue;
            }
            let text = rope.to_string();
            let before = &text[..byte];
            let want = Point::new(
                before.matches('\n').count(),
                byte - before.rfind('\n').map_or(0, |i| i + 1),
            );
            assert_eq!(point_at(&rope, byte, false), want, "byte {byte}");
        }
        let plain = Rope::from_str("a\r\nbé\nc");
        assert!(plain_lines(plain.slice(..)));
        assert_eq!(point_at(&plain, 8, true), Point::new(2, 1));
        assert!(!plain_lines(Rope::from_str("a\rb").slice(..)));
        assert!(!plain_lines(Rope::from_str("a\u{85}b").slice(..)));
    }

    #[test]
    fn advance_point_after_text() {
        assert_eq!(advance_point(Point::new(3, 4), "ab"), Point::new(3, 6));
        assert_eq!(advance_point(Point::new(3, 4), "a\nbé"), Point::new(4, 3));
        assert_eq!(advance_point(Point::new(0, 0), ""), Point::new(0, 0));
    }

    #[test]
    fn syntax_debug_and_guards() {
        let rope = Rope::from_str("fn f() {}\n");
        let syntax = Syntax::new(Lang::Rust, &rope);
        assert!(format!("{syntax:?}").contains("Rust"));
        assert!(syntax.matches(&rope));
        assert!(!syntax.matches(&Rope::from_str("fn")));
        assert_eq!(syntax.point(&rope, 999), Point::new(1, 0));
    }
}
