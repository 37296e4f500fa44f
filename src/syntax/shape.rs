//! Shape: what kind of suggestion fits at the cursor (nothing, one line, or a block).
//!
//! Text rules decide the clear cases (mid-identifier, code after the cursor, a blank line, a line
//! ending in a block opener); the tree refines them when there is one: a blank line inside an
//! argument list or a literal wants one line, and an unfinished function signature wants a body.

use ropey::Rope;
use tree_sitter::Node;

use super::Syntax;

/// What kind of suggestion fits at the cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// Suggest nothing (mid-identifier, or code follows the cursor on the line).
    Nothing,
    /// At most the rest of the current line.
    Line,
    /// Several lines: a body, a statement list, a definition.
    Block,
}

/// More than this many non-closing characters after the cursor on its line: suggest nothing.
pub const MAX_TAIL: usize = 3;

/// Characters after the cursor that a suggestion may end before (they close what it completes).
pub(crate) const CLOSING: &[char] = &[')', ']', '}', '>', '"', '\'', '`', ';', ',', ':'];

/// Keywords that start a line whose trailing `:` opens a block (Python, and C-like `case`).
const COLON_BLOCK_KEYWORDS: &[&str] = &[
    "def",
    "class",
    "if",
    "elif",
    "else",
    "for",
    "while",
    "with",
    "try",
    "except",
    "finally",
    "match",
    "case",
    "default",
    "async",
    "public",
    "private",
    "protected",
];

/// Keywords that introduce a function signature.
const FUNCTION_KEYWORDS: &[&str] = &["fn", "def", "func", "function", "function*"];

/// Node kinds whose inside holds one item per line: a blank line there wants a single line.
const LIST_KINDS: &[&str] = &[
    "arguments",
    "argument_list",
    "parameters",
    "formal_parameters",
    "parameter_list",
    "lambda_parameters",
    "type_arguments",
    "type_parameters",
    "type_parameter_list",
    "array",
    "array_expression",
    "array_initializer",
    "list",
    "tuple",
    "tuple_expression",
    "dictionary",
    "set",
    "object",
    "object_pattern",
    "array_pattern",
    "literal_value",
    "initializer_list",
    "list_comprehension",
    "dictionary_comprehension",
    "set_comprehension",
    "generator_expression",
    "parenthesized_expression",
    "string",
    "string_literal",
    "raw_string_literal",
    "template_string",
    "interpreted_string_literal",
    "text_block",
    "comment",
    "line_comment",
    "block_comment",
];

/// Node kinds of function definitions and declarations.
pub(crate) const FUNCTION_KINDS: &[&str] = &[
    "function_item",
    "function_signature_item",
    "function_definition",
    "function_declaration",
    "generator_function_declaration",
    "function_signature",
    "method_declaration",
    "constructor_declaration",
    "method_definition",
    "method_signature",
];

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The cursor line split at the cursor (line ending removed), and the cursor's byte offset.
pub(crate) fn split_line(rope: &Rope, cursor: usize) -> (String, String, usize) {
    let cursor = cursor.min(rope.len_chars());
    let line = rope.char_to_line(cursor);
    let start = rope.line_to_char(line);
    let text = rope.line(line);
    let before = text.slice(..cursor - start).to_string();
    let after = text
        .slice(cursor - start..)
        .to_string()
        .trim_end_matches(['\n', '\r'])
        .to_string();
    (before, after, rope.char_to_byte(cursor))
}

/// What kind of suggestion fits at `cursor` (a char offset; clamped).
pub fn shape(syntax: Option<&Syntax>, rope: &Rope, cursor: usize) -> Shape {
    let (before, after, byte) = split_line(rope, cursor);
    if before.chars().next_back().is_some_and(is_word) && after.chars().next().is_some_and(is_word)
    {
        return Shape::Nothing;
    }
    let tail = after
        .chars()
        .filter(|c| !c.is_whitespace() && !CLOSING.contains(c))
        .count();
    if tail > MAX_TAIL {
        return Shape::Nothing;
    }
    // A tree for another text would mislead; the text rules still hold.
    let syntax = syntax.filter(|s| s.matches(rope));

    if before.trim().is_empty() && after.trim().is_empty() {
        return match syntax {
            Some(s) if in_list(s, byte) || in_comment_or_string(s, byte) => Shape::Line,
            _ => Shape::Block,
        };
    }
    if tail > 0 || syntax.is_some_and(|s| in_comment_or_string(s, byte)) {
        return Shape::Line;
    }
    let head = before.trim_end();
    let eol = after.trim().is_empty();
    if head.ends_with('{') {
        // `{|}` is a body unless the brace opens a literal (an object, an initializer).
        return match syntax {
            Some(s) if !eol && opens_literal(s, byte) => Shape::Line,
            _ => Shape::Block,
        };
    }
    if eol && (head.ends_with(['(', '[']) || head.ends_with("=>")) {
        return Shape::Block;
    }
    if head.ends_with(':') && colon_opens_block(head) {
        return Shape::Block;
    }
    if eol && (text_signature(head) || syntax.is_some_and(|s| tree_signature(s, byte))) {
        return Shape::Block;
    }
    Shape::Line
}

/// The innermost named node that strictly contains `byte`.
fn container(syntax: &Syntax, byte: usize) -> Option<Node<'_>> {
    let root = syntax.tree.root_node();
    let mut node = root.descendant_for_byte_range(byte, byte)?;
    loop {
        if node.is_named() && node.start_byte() < byte && byte < node.end_byte() {
            return Some(node);
        }
        node = node.parent()?;
    }
}

/// The cursor is inside a string or a comment, or at the end of a line comment: prose, or a
/// literal, not code structure.
fn in_comment_or_string(syntax: &Syntax, byte: usize) -> bool {
    let is_text = |kind: &str| kind.contains("comment") || kind.contains("string");
    if container(syntax, byte).is_some_and(|n| is_text(n.kind())) {
        return true;
    }
    // A comment that ends right at the cursor (a line comment runs to the end of its line).
    let root = syntax.tree.root_node();
    let mut node = root.descendant_for_byte_range(byte.saturating_sub(1), byte);
    while let Some(n) = node {
        if n.start_byte() < byte && byte <= n.end_byte() && n.kind().contains("comment") {
            return true;
        }
        node = n.parent();
    }
    false
}

/// The cursor sits inside an argument list, a literal, a string or a comment.
fn in_list(syntax: &Syntax, byte: usize) -> bool {
    let Some(node) = container(syntax, byte) else {
        return false;
    };
    if node.kind() == "token_tree" {
        // Rust macro arguments: `{ ... }` holds code, `( ... )` and `[ ... ]` hold items.
        return node.child(0).is_some_and(|c| c.kind() != "{");
    }
    LIST_KINDS.contains(&node.kind())
}

/// The `{` right before the cursor opens a literal (an object, an initializer) rather than a body.
fn opens_literal(syntax: &Syntax, byte: usize) -> bool {
    let Some(leaf) = last_leaf_before(syntax.tree.root_node(), byte) else {
        return false;
    };
    leaf.kind() == "{"
        && leaf.parent().is_some_and(|p| {
            LIST_KINDS.contains(&p.kind())
                || (p.kind() == "token_tree" && p.child(0).is_some_and(|c| c.id() == leaf.id()))
        })
}

/// A line ending in `:` that opens a block: `def f():`, `if x:`, `case 1:`, `else:`.
fn colon_opens_block(head: &str) -> bool {
    let first = head
        .split(|c: char| !is_word(c))
        .find(|w| !w.is_empty())
        .unwrap_or("");
    COLON_BLOCK_KEYWORDS.contains(&first)
}

/// `fn name(args) -> T`, `def f(x)`, `func (r R) f() int`, `function f(a)`: a signature with its
/// parameters closed and no body yet.
fn text_signature(head: &str) -> bool {
    let words: Vec<&str> = head.split_whitespace().take(4).collect();
    if !words.iter().any(|w| {
        FUNCTION_KEYWORDS
            .iter()
            .any(|k| w == k || w.starts_with(&format!("{k}(")))
    }) {
        return false;
    }
    let opens = head.matches('(').count();
    opens > 0 && opens == head.matches(')').count() && !head.ends_with([';', ',', '}', '='])
}

/// The tree has a function declaration without a body ending right before the cursor.
fn tree_signature(syntax: &Syntax, byte: usize) -> bool {
    let root = syntax.tree.root_node();
    let Some(leaf) = last_leaf_before(root, byte) else {
        return false;
    };
    if matches!(leaf.kind(), ";" | "}" | "{" | ",") {
        return false;
    }
    let mut node = leaf;
    while let Some(parent) = node.parent() {
        node = parent;
        if node.end_byte() > leaf.end_byte() {
            return false;
        }
        if is_function(node) {
            let body = node.child_by_field_name("body");
            return body.is_none_or(|b| b.start_byte() == b.end_byte());
        }
    }
    false
}

fn is_function(node: Node<'_>) -> bool {
    let kind = node.kind();
    if FUNCTION_KINDS.contains(&kind) {
        return true;
    }
    // C/C++ `int f(int a)` parses as a declaration (missing `;`) with a function declarator.
    matches!(kind, "declaration" | "field_declaration")
        && node
            .child_by_field_name("declarator")
            .is_some_and(|d| d.kind() == "function_declarator")
}

/// The last real leaf (not missing, not empty, not a comment) that ends at or before `byte`.
pub(crate) fn last_leaf_before(node: Node<'_>, byte: usize) -> Option<Node<'_>> {
    if node.child_count() == 0 {
        let real = !node.is_missing() && node.start_byte() < node.end_byte();
        return (real && node.end_byte() <= byte).then_some(node);
    }
    for i in (0..node.child_count()).rev() {
        let Some(child) = node.child(i as _) else {
            continue;
        };
        if child.start_byte() >= byte || child.kind().contains("comment") {
            continue;
        }
        if let Some(leaf) = last_leaf_before(child, byte) {
            return Some(leaf);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_signatures() {
        assert!(text_signature("fn add(a: u32) -> u32"));
        assert!(text_signature("    pub async fn run(&self)"));
        assert!(text_signature("def f(x, y=(1, 2))"));
        assert!(text_signature("func (s *S) Run() error"));
        assert!(text_signature("export function f(a)"));
        assert!(!text_signature("let x = f(a);"));
        assert!(!text_signature("fn add(a: u32,"));
        assert!(!text_signature("x = def_value(a)"));
    }

    #[test]
    fn colon_blocks() {
        assert!(colon_opens_block("    if x > 0:"));
        assert!(colon_opens_block("case 1:"));
        assert!(colon_opens_block("else:"));
        assert!(!colon_opens_block("d = {'a':"));
        assert!(!colon_opens_block("let x:"));
    }

    #[test]
    fn last_leaf_skips_comments_and_missing() {
        let rope = Rope::from_str("int f(int a) // c\n");
        let syntax = Syntax::new(super::super::Lang::C, &rope);
        let leaf = last_leaf_before(syntax.tree().root_node(), 17).unwrap();
        assert_eq!(leaf.kind(), ")");
    }
}
