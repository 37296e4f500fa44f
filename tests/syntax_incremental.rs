//! Incremental parsing: after each of a seeded sequence of random edits, the tree kept up to date
//! with `Syntax::edit` equals a fresh parse of the new text, node for node (kinds, byte ranges and
//! row/column points).

use inkling::syntax::{Lang, Syntax};
use ropey::Rope;
use tree_sitter::{InputEdit, Node, Parser, Point, Tree};

/// A small linear congruential generator: deterministic, no extra crates.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Pieces an edit inserts: code tokens, line breaks of every kind, brackets, quotes, and
/// multi-byte characters (byte offsets differ from char offsets).
const PIECES: &[&str] = &[
    "x", "foo", " ", "\n", "\n    ", "\r\n", "(", ")", "{", "}", "[", "]", "\"", "'", ";", ",",
    ":", "=", "+", "1", "é", "→", "😀", "return ", "if ", "fn ", "def ", "// c\n", "#", "\t", "\r",
    "\u{2028}",
];

fn dump(node: Node<'_>, out: &mut String) {
    let (s, e) = (node.start_position(), node.end_position());
    out.push_str(&format!(
        "{}{} {}-{} {}:{}-{}:{}\n",
        node.kind(),
        if node.is_missing() { " MISSING" } else { "" },
        node.start_byte(),
        node.end_byte(),
        s.row,
        s.column,
        e.row,
        e.column
    ));
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        dump(child, out);
    }
}

fn parser(lang: Lang) -> Parser {
    let mut parser = Parser::new();
    parser.set_language(&lang.language()).unwrap();
    parser
}

fn dump_tree(tree: &Tree) -> String {
    let mut out = String::new();
    dump(tree.root_node(), &mut out);
    out
}

fn fresh(lang: Lang, text: &str) -> Tree {
    parser(lang).parse(text, None).unwrap()
}

/// Tree-sitter's point for a byte offset, computed the slow, obvious way.
fn point(text: &str, byte: usize) -> Point {
    let before = &text[..byte];
    let row = before.matches('\n').count();
    let column = byte - before.rfind('\n').map_or(0, |i| i + 1);
    Point::new(row, column)
}

fn byte_of(text: &str, char_offset: usize) -> usize {
    text.char_indices()
        .nth(char_offset)
        .map_or(text.len(), |(i, _)| i)
}

/// Applies edits to a `Syntax` and, independently, to a reference tree whose `InputEdit`s are
/// computed from strings; checks both agree node for node after every edit, and agree with a
/// fresh parse whenever the fresh parse has no errors (with errors, tree-sitter's recovery may
/// legitimately differ between incremental and fresh parses). Returns how many error-free states
/// were compared with a fresh parse.
struct Check {
    lang: Lang,
    rope: Rope,
    syntax: Syntax,
    reference: Tree,
    reference_parser: Parser,
    text: String,
    clean_states: usize,
}

impl Check {
    fn new(lang: Lang, source: &str) -> Check {
        let rope = Rope::from_str(source);
        Check {
            lang,
            syntax: Syntax::new(lang, &rope),
            rope,
            reference: fresh(lang, source),
            reference_parser: parser(lang),
            text: source.to_string(),
            clean_states: 0,
        }
    }

    /// Replaces chars `start..old_end` by `new_text`; returns the removed text.
    fn edit(&mut self, start: usize, old_end: usize, new_text: &str, what: &str) -> String {
        let before = self.rope.clone();
        let removed = before.slice(start..old_end).to_string();
        self.rope.remove(start..old_end);
        self.rope.insert(start, new_text);
        self.syntax
            .edit(&before, start, old_end, new_text, &self.rope);

        let (start_byte, old_end_byte) = (byte_of(&self.text, start), byte_of(&self.text, old_end));
        let mut new = self.text.clone();
        new.replace_range(start_byte..old_end_byte, new_text);
        let new_end_byte = start_byte + new_text.len();
        self.reference.edit(&InputEdit {
            start_byte,
            old_end_byte,
            new_end_byte,
            start_position: point(&self.text, start_byte),
            old_end_position: point(&self.text, old_end_byte),
            new_end_position: point(&new, new_end_byte),
        });
        self.reference = self
            .reference_parser
            .parse(&new, Some(&self.reference))
            .unwrap();
        self.text = new;
        assert_eq!(self.rope.to_string(), self.text);

        // Points as tree-sitter counts them (rows are `\n` only), whatever line breaks the text
        // holds: what the edit's `InputEdit` is built from.
        for (i, _) in self.text.char_indices().step_by(7) {
            assert_eq!(
                self.syntax.point(&self.rope, i),
                point(&self.text, i),
                "{what}: point of {i}"
            );
        }
        let got = dump_tree(self.syntax.tree());
        assert_eq!(
            got,
            dump_tree(&self.reference),
            "{:?} {what}: not the reference tree",
            self.lang
        );
        let fresh = fresh(self.lang, &self.text);
        if !fresh.root_node().has_error() {
            self.clean_states += 1;
            assert_eq!(
                self.syntax.tree().root_node().to_sexp(),
                fresh.root_node().to_sexp(),
                "{:?} {what}: not the fresh tree",
                self.lang
            );
            assert_eq!(
                got,
                dump_tree(&fresh),
                "{:?} {what}: positions differ",
                self.lang
            );
        }
        removed
    }
}

/// Edits that keep code valid most of the time: renamed words, new blank lines, comments.
fn benign_edit(rng: &mut Lcg, text: &str) -> (usize, usize, String) {
    let chars: Vec<char> = text.chars().collect();
    let at = rng.below(chars.len());
    match rng.below(3) {
        0 => {
            // Replace the word around `at`.
            let is_word = |c: char| c.is_alphanumeric() || c == '_';
            let (mut s, mut e) = (at, at);
            while s > 0 && is_word(chars[s - 1]) {
                s -= 1;
            }
            while e < chars.len() && is_word(chars[e]) {
                e += 1;
            }
            let words = ["alpha", "b2", "\u{e9}clair", "x", "tmp_value"];
            (s, e, words[rng.below(words.len())].to_string())
        }
        1 => {
            // A blank line after a line break.
            let nl = chars[at..]
                .iter()
                .position(|c| *c == '\n')
                .map_or(chars.len(), |i| at + i);
            let p = (nl + 1).min(chars.len());
            (p, p, "\n".to_string())
        }
        _ => {
            // Delete a blank line or insert a space before a line break.
            let nl = chars[at..]
                .iter()
                .position(|c| *c == '\n')
                .map_or(chars.len(), |i| at + i);
            (nl, nl, " ".to_string())
        }
    }
}

/// `mixed`: half the edits insert random pieces (mostly leaving errors behind); otherwise only
/// benign edits, so most states are error-free and comparable with a fresh parse.
fn run(lang: Lang, source: &str, seed: u64, edits: usize, mixed: bool) -> usize {
    let mut rng = Lcg(seed);
    let mut check = Check::new(lang, source);
    let mut history = Vec::new();
    for step in 0..edits {
        let len = check.rope.len_chars();
        let benign = !mixed || rng.below(2) == 0;
        let (start, old_end, new_text) = if benign {
            benign_edit(&mut rng, &check.text)
        } else {
            let start = rng.below(len + 1);
            let old_end = (start + rng.below(8)).min(len);
            let mut new_text = String::new();
            for _ in 0..rng.below(4) {
                new_text.push_str(PIECES[rng.below(PIECES.len())]);
            }
            (start, old_end, new_text)
        };
        let what = format!("seed {seed} step {step}: {start}..{old_end} -> {new_text:?}");
        let removed = check.edit(start, old_end, &new_text, &what);
        // Undo some edits at once (always a benign one that broke the code), so that the
        // sequence keeps visiting error-free states.
        let broke = fresh(lang, &check.text).root_node().has_error();
        if (benign && broke) || rng.below(3) == 0 {
            let what = format!("{what} (undone)");
            check.edit(start, start + new_text.chars().count(), &removed, &what);
        } else {
            history.push((start, new_text.chars().count(), removed));
        }
    }
    // Undo everything: back to the original text, whose fresh tree has no errors.
    while let Some((start, inserted, removed)) = history.pop() {
        let what = format!("seed {seed} undo {}", history.len());
        check.edit(start, start + inserted, &removed, &what);
    }
    assert_eq!(check.text, source);
    let original = fresh(lang, source);
    assert!(
        !original.root_node().has_error(),
        "{lang:?} fixture has errors"
    );
    assert_eq!(
        dump_tree(check.syntax.tree()),
        dump_tree(&original),
        "{lang:?} after undo"
    );
    check.clean_states
}

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/syntax/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path).unwrap().replace("$0", "")
}

#[test]
fn random_edits_match_fresh_parses() {
    let sources: Vec<(Lang, String)> = vec![
        (Lang::Rust, fixture("cache_body.rs")),
        (Lang::Python, fixture("tokenize.py")),
        (Lang::TypeScript, fixture("store.ts")),
        (Lang::Go, fixture("server.go")),
        (Lang::Java, fixture("broken.java")),
        (
            Lang::JavaScript,
            "const a = [1, 2];\nfunction f(x) {\n  return x.map((y) => y * 2);\n}\n".into(),
        ),
        (
            Lang::Tsx,
            "export function App({ n }: { n: number }) {\n  return <div>{n}</div>;\n}\n".into(),
        ),
        (
            Lang::C,
            "#include <stdio.h>\nint main(void) {\n  printf(\"%d\\n\", 1);\n  return 0;\n}\n"
                .into(),
        ),
        (
            Lang::Cpp,
            "namespace n {\nclass A {\n public:\n  int f() const { return 1; }\n};\n}\n".into(),
        ),
    ];
    for (i, (lang, source)) in sources.iter().enumerate() {
        let mut clean = 0;
        for round in 0..3u64 {
            clean += run(*lang, source, 1000 * i as u64 + round, 60, round > 0);
        }
        // Enough error-free states were compared with a fresh parse.
        assert!(clean >= 20, "{lang:?}: only {clean} error-free states");
    }
}

#[test]
fn set_text_and_empty_documents() {
    let rope = Rope::from_str("");
    let mut syntax = Syntax::new(Lang::Rust, &rope);
    assert_eq!(syntax.tree().root_node().to_sexp(), "(source_file)");
    let after = Rope::from_str("fn a() {}\n");
    syntax.edit(&rope, 0, 0, "fn a() {}\n", &after);
    assert_eq!(
        dump_tree(syntax.tree()),
        dump_tree(&fresh(Lang::Rust, "fn a() {}\n"))
    );
    let other = Rope::from_str("struct S;\n");
    syntax.set_text(&other);
    assert_eq!(
        dump_tree(syntax.tree()),
        dump_tree(&fresh(Lang::Rust, "struct S;\n"))
    );
    // Offsets past the end are clamped rather than panicking.
    let grown = Rope::from_str("struct S;\nx");
    syntax.edit(&other, 99, 120, "x", &grown);
    assert_eq!(syntax.tree().root_node().end_byte(), grown.len_bytes());
    // Ropes that do not match the edit: a fresh parse of the new text, no panic.
    let other_text = Rope::from_str("fn g() {}\n");
    syntax.edit(&grown, 0, 1, "", &other_text);
    assert_eq!(
        dump_tree(syntax.tree()),
        dump_tree(&fresh(Lang::Rust, "fn g() {}\n"))
    );
}
