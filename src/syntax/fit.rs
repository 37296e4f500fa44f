//! Fit: make a model suggestion fit the code around the cursor, using the tree.
//!
//! The suggestion is parsed in place (prefix + suggestion + suffix, reparsed incrementally from the
//! document's tree) and then:
//! 1. a multi-line suggestion ends where it closes the block enclosing the cursor (dropping the
//!    closer when the suffix already has it), where it dedents out of that block (indentation
//!    languages), or where it starts a second sibling definition;
//! 2. closing brackets and quotes at its end that the cursor line already has after the cursor are
//!    dropped, when the tree says they are duplicates;
//! 3. it is dropped if it turns an error-free tree into one with errors (the suffix included, so
//!    code that only the suffix completes is fine), unless one of its last few line ends leaves a
//!    prefix that parses cleanly: then that prefix is kept.

use std::collections::HashMap;

use ropey::Rope;
use tree_sitter::{InputEdit, Node, Parser, Point, Tree};

use super::shape::{CLOSING, FUNCTION_KINDS, last_leaf_before, split_line};
use super::tags::definition_ranges;
use super::{Syntax, advance_point};
use crate::stop::indent_width;

/// Documents larger than this are not reparsed per suggestion (each candidate copies the text).
pub const FIT_MAX_BYTES: usize = 8 << 20;

/// Post-processes `suggestion`, to be inserted at `cursor` (a char offset; clamped). `None`: show
/// nothing. Without a grammar, with a tree for another text, or for a document over
/// [`FIT_MAX_BYTES`], the suggestion comes back as is.
pub fn fit(
    syntax: Option<&Syntax>,
    rope: &Rope,
    cursor: usize,
    suggestion: &str,
) -> Option<String> {
    let usable = |s: &&Syntax| s.matches(rope) && rope.len_bytes() <= FIT_MAX_BYTES;
    let Some(syntax) = syntax.filter(usable) else {
        return Some(suggestion.to_string());
    };
    if suggestion.trim().is_empty() {
        return None;
    }
    let mut fitter = Fitter::new(syntax, rope, cursor);
    let mut s = suggestion.to_string();
    if s.contains('\n') {
        let cut = fitter.multi_line_cut(&s);
        s.truncate(cut);
    }
    let s = fitter.drop_duplicate_closers(s);
    if s.trim().is_empty() {
        return None;
    }
    if !syntax.tree.root_node().has_error() && fitter.errors(&s) > 0 {
        // A multi-line suggestion may still have whole lines that parse (the model was cut off
        // mid-statement): keep the longest such prefix among the last few line ends.
        return s
            .match_indices('\n')
            .map(|(i, _)| s[..i].trim_end())
            .rev()
            .take(SALVAGE_TRIES)
            .find(|prefix| !prefix.trim().is_empty() && fitter.errors(prefix) == 0)
            .map(str::to_string);
    }
    Some(s)
}

/// The part of an unfinished suggestion (the model is still writing it) that may be shown now:
/// steps 1 and 2 of [`fit`], which only ever shorten it, so the piece stays a prefix of what the
/// finished text can become. Step 3 waits for the finished text: half a statement never parses.
pub fn fit_piece(syntax: Option<&Syntax>, rope: &Rope, cursor: usize, piece: &str) -> String {
    let usable = |s: &&Syntax| s.matches(rope) && rope.len_bytes() <= FIT_MAX_BYTES;
    let Some(syntax) = syntax.filter(usable) else {
        return piece.to_string();
    };
    if piece.trim().is_empty() {
        return String::new();
    }
    let mut fitter = Fitter::new(syntax, rope, cursor);
    let mut s = piece.to_string();
    if s.contains('\n') {
        let cut = fitter.multi_line_cut(&s);
        s.truncate(cut);
    }
    fitter.drop_duplicate_closers(s)
}

/// How many shorter line prefixes of a suggestion that breaks a clean tree are tried.
const SALVAGE_TRIES: usize = 6;

/// Anonymous functions: their bodies are function bodies too.
const LAMBDA_KINDS: &[&str] = &[
    "closure_expression",
    "arrow_function",
    "function_expression",
    "lambda",
    "lambda_expression",
    "func_literal",
];

/// Types and modules: their bodies hold definitions side by side.
const TYPE_KINDS: &[&str] = &[
    "impl_item",
    "trait_item",
    "mod_item",
    "class_definition",
    "class_declaration",
    "abstract_class_declaration",
    "class",
    "interface_declaration",
    "enum_declaration",
    "record_declaration",
    "class_specifier",
    "struct_specifier",
    "namespace_definition",
    "internal_module",
    "module",
];

/// `byte` lies strictly inside a string or a comment (multi-line strings hold any indentation).
fn in_string_or_comment(root: Node<'_>, byte: usize) -> bool {
    let mut node = root.descendant_for_byte_range(byte, byte);
    while let Some(n) = node {
        let kind = n.kind();
        if (kind.contains("string") || kind.contains("comment"))
            && n.start_byte() < byte
            && byte < n.end_byte()
        {
            return true;
        }
        node = n.parent();
    }
    false
}

/// Opening tokens and the closer each expects.
fn closer_for(opener: &str) -> Option<&'static str> {
    match opener {
        "{" | "${" | "#{" => Some("}"),
        "(" => Some(")"),
        "[" | "#[" | "#![" => Some("]"),
        _ => None,
    }
}

fn is_closer(kind: &str) -> bool {
    matches!(kind, "}" | ")" | "]")
}

/// A bracket opened before the cursor and not closed before it.
#[derive(Debug)]
struct Enclosing {
    closer: &'static str,
    /// Where the original text closes it, if it does.
    closed_at: Option<usize>,
}

struct Fitter<'a> {
    syntax: &'a Syntax,
    parser: Parser,
    prefix: String,
    suffix: String,
    byte: usize,
    point: Point,
    line_before: String,
    line_after: String,
    /// Error counts of the candidates parsed so far.
    scores: HashMap<String, usize>,
}

impl<'a> Fitter<'a> {
    fn new(syntax: &'a Syntax, rope: &Rope, cursor: usize) -> Self {
        let (line_before, line_after, byte) = split_line(rope, cursor);
        Fitter {
            syntax,
            parser: syntax.lang.parser(),
            prefix: rope.byte_slice(..byte).to_string(),
            suffix: rope.byte_slice(byte..).to_string(),
            byte,
            point: syntax.point(rope, byte),
            line_before,
            line_after,
            scores: HashMap::new(),
        }
    }

    /// The document with `s` inserted at the cursor, parsed incrementally from the document's tree.
    fn parse(&mut self, s: &str) -> (Tree, String) {
        let mut old = self.syntax.tree.clone();
        old.edit(&InputEdit {
            start_byte: self.byte,
            old_end_byte: self.byte,
            new_end_byte: self.byte + s.len(),
            start_position: self.point,
            old_end_position: self.point,
            new_end_position: advance_point(self.point, s),
        });
        let text = format!("{}{s}{}", self.prefix, self.suffix);
        let tree = self
            .parser
            .parse(&text, Some(&old))
            .expect("parser has a language and no cancellation");
        (tree, text)
    }

    /// Number of ERROR and MISSING nodes once `s` is inserted.
    fn errors(&mut self, s: &str) -> usize {
        if let Some(n) = self.scores.get(s) {
            return *n;
        }
        let (tree, _) = self.parse(s);
        let n = count_errors(tree.root_node());
        self.scores.insert(s.to_string(), n);
        n
    }

    /// Byte length of `s` to keep: the earliest of the block end, the dedent out of the block and
    /// the start of a second sibling definition.
    fn multi_line_cut(&mut self, s: &str) -> usize {
        let (tree, text) = self.parse(s);
        let end = self.byte + s.len();
        let leaves = leaves_in(tree.root_node(), self.byte, end);
        let mut cut = s.len();
        if let Some(c) = self.block_end(s, &leaves) {
            cut = cut.min(c);
        }
        if self.syntax.lang.indent_blocks() {
            if let Some(c) = self.dedent(s, &tree, &leaves) {
                cut = cut.min(c);
            }
        }
        if let Some(c) = self.second_definition(s, &tree, &text) {
            cut = cut.min(c);
        }
        cut
    }

    /// Brackets that enclose the cursor in the original tree, innermost first.
    fn enclosing(&self) -> Vec<Enclosing> {
        let root = self.syntax.tree.root_node();
        // The ancestors of the cursor position, and those of the last leaf before it (an
        // unclosed `{` at the end of the text sits in a node that ends at the cursor).
        let mut nodes: Vec<Node<'_>> = Vec::new();
        let starts = [
            last_leaf_before(root, self.byte),
            root.descendant_for_byte_range(self.byte, self.byte),
        ];
        for start in starts.into_iter().flatten() {
            let mut node = Some(start);
            while let Some(n) = node {
                if !nodes.iter().any(|m| m.id() == n.id()) {
                    nodes.push(n);
                }
                node = n.parent();
            }
        }
        // Innermost first: a node's brackets nest inside those of any larger node here.
        nodes.sort_by_key(|n| n.end_byte() - n.start_byte());
        let mut out = Vec::new();
        for n in nodes {
            let mut cursor = n.walk();
            let children: Vec<Node<'_>> = n
                .children(&mut cursor)
                .filter(|c| !c.is_missing())
                .collect();
            let mut openers = Vec::new();
            let mut depth = 0usize;
            for c in children.iter().rev().filter(|c| c.end_byte() <= self.byte) {
                if is_closer(c.kind()) {
                    depth += 1;
                } else if let Some(closer) = closer_for(c.kind()) {
                    if depth == 0 {
                        openers.push(closer);
                    } else {
                        depth -= 1;
                    }
                }
            }
            // The first unmatched closers after the cursor close them, innermost first.
            let mut closers = Vec::new();
            let mut depth = 0usize;
            for c in children.iter().filter(|c| c.start_byte() >= self.byte) {
                if closer_for(c.kind()).is_some() {
                    depth += 1;
                } else if is_closer(c.kind()) {
                    if depth == 0 {
                        closers.push((c.kind(), c.start_byte()));
                    } else {
                        depth -= 1;
                    }
                }
            }
            for (i, closer) in openers.into_iter().enumerate() {
                let closed_at = closers
                    .get(i)
                    .filter(|(kind, _)| *kind == closer)
                    .map(|(_, at)| *at);
                out.push(Enclosing { closer, closed_at });
            }
        }
        out
    }

    /// Where `s` closes a bracket opened before the cursor, on a line after its first: keep the
    /// closer only when the suffix does not already close that bracket.
    fn block_end(&self, s: &str, leaves: &[Node<'_>]) -> Option<usize> {
        let first_line = s.find('\n').unwrap_or(s.len());
        let end = self.byte + s.len();
        let mut depth = 0i32;
        let mut lowest = 0i32;
        let mut enclosing: Option<Vec<Enclosing>> = None;
        for leaf in leaves {
            if leaf.start_byte() < self.byte || leaf.end_byte() > end {
                continue;
            }
            let kind = leaf.kind();
            if closer_for(kind).is_some() {
                depth += 1;
                continue;
            }
            if !is_closer(kind) {
                continue;
            }
            depth -= 1;
            if depth >= lowest {
                continue;
            }
            lowest = depth;
            let rel = leaf.start_byte() - self.byte;
            if rel < first_line {
                // Closing what the cursor line opened (`foo(a|` + `b)`) is the line's business.
                continue;
            }
            let enclosing = enclosing.get_or_insert_with(|| self.enclosing());
            let which = (-lowest - 1) as usize;
            let line_start = s[..rel].rfind('\n').map_or(0, |i| i + 1);
            let starts_line = s[line_start..rel].trim().is_empty();
            return Some(match enclosing.get(which) {
                Some(e) if e.closer == kind && e.closed_at.is_none() => {
                    // The suffix does not close it: the suggestion's closer ends the block.
                    s[rel..].find('\n').map_or(s.len(), |i| rel + i)
                }
                Some(e)
                    if e.closer == kind
                        && e.closed_at.is_some_and(|at| {
                            at < self.byte + self.line_after.len() && starts_line
                        }) =>
                {
                    // `{|}`: the closer follows on the cursor line; end on the closer's line so
                    // the suffix's closer lands where the suggestion put its own.
                    rel
                }
                _ if starts_line => s[..line_start].trim_end().len(),
                _ => s[..rel].trim_end().len(),
            });
        }
        None
    }

    /// Indentation languages: the first later line indented less than the block the suggestion
    /// is written in (outside brackets and strings).
    fn dedent(&self, s: &str, tree: &Tree, leaves: &[Node<'_>]) -> Option<usize> {
        let tab = 4;
        let first = s.split('\n').next().unwrap_or("");
        let line_indent = indent_width(&self.line_before, tab);
        let joined = format!("{}{}", self.line_before, first);
        let base = if self.line_before.trim().is_empty() {
            if first.trim().is_empty() {
                s.split('\n')
                    .skip(1)
                    .find(|l| !l.trim().is_empty())
                    .map_or(0, |l| indent_width(l, tab))
            } else {
                indent_width(&joined, tab)
            }
        } else if joined.trim_end().ends_with(':') {
            line_indent + 1
        } else {
            line_indent
        };
        let mut offset = first.len() + 1;
        for line in s.split('\n').skip(1) {
            let at = self.byte + offset;
            let line_offset = offset;
            offset += line.len() + 1;
            if line.trim().is_empty() || indent_width(line, tab) >= base {
                continue;
            }
            // Inside a string or an open bracket the indentation means nothing.
            let mut depth = 0i32;
            let mut inside_leaf = in_string_or_comment(tree.root_node(), at);
            for leaf in leaves {
                if leaf.start_byte() < at && at < leaf.end_byte() {
                    inside_leaf = true;
                }
                if leaf.end_byte() <= at && leaf.start_byte() >= self.byte {
                    if closer_for(leaf.kind()).is_some() {
                        depth += 1;
                    } else if is_closer(leaf.kind()) {
                        depth -= 1;
                    }
                }
            }
            if inside_leaf || depth > 0 {
                continue;
            }
            let word = line
                .trim_start()
                .split(|c: char| !c.is_alphanumeric())
                .next();
            let continues = matches!(word, Some("else" | "elif" | "except" | "finally"))
                && indent_width(line, tab) >= line_indent;
            if continues {
                continue;
            }
            return Some(s[..line_offset].trim_end().len());
        }
        None
    }

    /// A definition that starts on a later line of `s`, after another definition the suggestion
    /// wrote or finished at the same level: cut before it (and its attributes and comments).
    fn second_definition(&self, s: &str, tree: &Tree, text: &str) -> Option<usize> {
        let first_line_end = self.byte + s.find('\n')?;
        let end = self.byte + s.trim_end().len();
        if end <= self.byte {
            return None;
        }
        let defs = definition_ranges(self.syntax.lang, tree, text, self.byte..end);
        let is_def = |n: Node<'_>| {
            let direct = |n: Node<'_>| {
                defs.contains(&(n.start_byte(), n.end_byte())) || FUNCTION_KINDS.contains(&n.kind())
            };
            direct(n) || {
                let mut cursor = n.walk();
                matches!(n.kind(), "export_statement" | "template_declaration")
                    && n.named_children(&mut cursor).any(direct)
            }
        };
        let container = tree.root_node().descendant_for_byte_range(self.byte, end)?;
        // Inside a function body, nested definitions are statements like any other; that body's
        // end (a closer, a dedent) is what stops the suggestion. The nearest enclosing function or
        // type decides.
        let mut node = Some(container);
        while let Some(n) = node {
            if FUNCTION_KINDS.contains(&n.kind()) || LAMBDA_KINDS.contains(&n.kind()) {
                return None;
            }
            if TYPE_KINDS.contains(&n.kind()) {
                break;
            }
            node = n.parent();
        }
        let mut cursor = container.walk();
        let children: Vec<Node<'_>> = container.named_children(&mut cursor).collect();
        let mut seen_def = false;
        for (i, child) in children.iter().enumerate() {
            if child.end_byte() <= self.byte {
                continue;
            }
            if child.start_byte() >= end {
                break;
            }
            let def = is_def(*child);
            if def && seen_def && child.start_byte() > first_line_end {
                let mut start = child.start_byte();
                for prev in children[..i].iter().rev() {
                    let kind = prev.kind();
                    let leading = kind.contains("comment")
                        || kind.contains("attribute")
                        || kind.contains("decorator")
                        || kind.contains("annotation");
                    if !leading || prev.start_byte() <= first_line_end {
                        break;
                    }
                    start = prev.start_byte();
                }
                let rel = start - self.byte;
                let line_start = s[..rel].rfind('\n').map_or(0, |i| i + 1);
                return Some(s[..line_start].trim_end().len());
            }
            seen_def |= def;
        }
        None
    }

    /// Drops closing characters at the end of `s` that the cursor line already has after the
    /// cursor, choosing between keeping and dropping by the parse (then by bracket balance).
    fn drop_duplicate_closers(&mut self, s: String) -> String {
        let rest = self.line_after.trim_start().to_string();
        if rest.trim().is_empty() {
            return s;
        }
        let trimmed = s.trim_end();
        let mut candidates: Vec<String> = Vec::new();
        let ends: Vec<usize> = rest
            .char_indices()
            .map(|(i, _)| i)
            .skip(1)
            .chain([rest.len()])
            .collect();
        for k in ends {
            let part = rest[..k].trim_end();
            let closing = part
                .chars()
                .all(|c| CLOSING.contains(&c) || c.is_whitespace());
            if part.is_empty() || !(closing || k == rest.len()) || !trimmed.ends_with(part) {
                continue;
            }
            let candidate = trimmed[..trimmed.len() - part.len()].to_string();
            if !candidates.contains(&candidate) {
                candidates.push(candidate);
            }
        }
        if candidates.is_empty() {
            return s;
        }
        let mut best = (self.errors(&s), self.imbalance(&s), usize::MAX);
        let mut chosen = s.clone();
        for candidate in candidates {
            let removed = s.len() - candidate.len();
            let score = (
                self.errors(&candidate),
                self.imbalance(&candidate),
                usize::MAX - removed,
            );
            if score < best {
                best = score;
                chosen = candidate;
            }
        }
        chosen
    }

    /// Unbalanced brackets and quotes on the cursor line once `s` is inserted: a tie-breaker when
    /// the parse cannot tell (the file has errors anyway).
    fn imbalance(&self, s: &str) -> usize {
        let line = format!("{}{s}{}", self.line_before, self.line_after);
        let count = |c: char| line.chars().filter(|x| *x == c).count();
        let pairs = [('(', ')'), ('[', ']'), ('{', '}')];
        let brackets: usize = pairs
            .iter()
            .map(|(o, c)| count(*o).abs_diff(count(*c)))
            .sum();
        let quotes: usize = ['"', '`'].iter().map(|q| count(*q) % 2).sum();
        brackets + quotes
    }
}

/// ERROR and MISSING nodes in the tree, visiting only subtrees that have errors.
pub(crate) fn count_errors(root: Node<'_>) -> usize {
    let mut count = 0;
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        if node.is_error() || node.is_missing() {
            count += 1;
        }
        if !node.has_error() {
            continue;
        }
        let mut cursor = node.walk();
        stack.extend(
            node.children(&mut cursor)
                .filter(|c| c.has_error() || c.is_missing()),
        );
    }
    count
}

/// The real leaves (not missing, not empty) that overlap `start..end`, in order.
pub(crate) fn leaves_in(root: Node<'_>, start: usize, end: usize) -> Vec<Node<'_>> {
    let mut out = Vec::new();
    let mut cursor = root.walk();
    'walk: loop {
        let node = cursor.node();
        if node.start_byte() >= end && node.end_byte() > node.start_byte() {
            break;
        }
        let overlaps = node.start_byte() < end && node.end_byte() > start;
        if overlaps && node.child_count() > 0 && cursor.goto_first_child_for_byte(start).is_some() {
            continue;
        }
        if overlaps && node.child_count() == 0 && !node.is_missing() {
            out.push(node);
        }
        loop {
            if cursor.goto_next_sibling() {
                continue 'walk;
            }
            if !cursor.goto_parent() {
                break 'walk;
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "fit_tests.rs"]
mod tests;
