//! Oracle evaluation of `fit` on real code (ignored by default; no model involved).
//!
//! For function bodies and line tails masked out of real files, it feeds `fit` simulated model
//! outputs whose right answer is known: the exact truth (must come back unchanged), the truth
//! followed by the code after it (a model that runs on: must be cut back to the truth), and the
//! truth followed by the closers already after the cursor (must not repeat them). Run with
//!
//! ```sh
//! SYNTAX_EVAL="rust=$HOME/.cargo/registry/src python=/usr/lib/python3.11" \
//!   cargo test --release --test syntax_eval -- --ignored --nocapture
//! ```

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use inkling::syntax::{Lang, Shape, Syntax, fit, shape};
use ropey::Rope;
use tree_sitter::Node;

const MAX_FILES: usize = 300;
const MAX_BYTES: u64 = 200_000;
const BODIES_PER_FILE: usize = 3;
const LINES_PER_FILE: usize = 3;

struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n.max(1) as u64) as usize
    }
}

#[derive(Default)]
struct Tally {
    tasks: usize,
    ok: usize,
    dropped: usize,
    examples: Vec<String>,
}

impl Tally {
    fn add(&mut self, ok: bool, dropped: bool, example: impl FnOnce() -> String) {
        self.tasks += 1;
        self.ok += ok as usize;
        self.dropped += dropped as usize;
        if !ok && self.examples.len() < 3 {
            self.examples.push(example());
        }
    }

    fn line(&self, name: &str) -> String {
        format!(
            "  {name:<34} {:>5} tasks  {:>5.1}% right  {:>4.1}% dropped",
            self.tasks,
            100.0 * self.ok as f64 / self.tasks.max(1) as f64,
            100.0 * self.dropped as f64 / self.tasks.max(1) as f64
        )
    }
}

#[derive(Default)]
struct Report {
    body_exact: Tally,
    body_overshoot: Tally,
    body_shape: Tally,
    body_truncated: Tally,
    class_first: Tally,
    line_exact: Tally,
    line_closers: Tally,
    fit_time: Duration,
    fits: usize,
}

fn files(root: &Path, ext: &[&str], out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files(&path, ext, out);
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| ext.contains(&e))
            && path.metadata().is_ok_and(|m| m.len() < MAX_BYTES)
        {
            out.push(path);
        }
    }
}

/// Function kinds whose bodies are masked.
const FUNCTIONS: &[&str] = &[
    "function_item",
    "function_definition",
    "function_declaration",
    "method_declaration",
    "method_definition",
    "constructor_declaration",
    "func_literal",
];

/// Function bodies with at least two statements on separate lines. (Class and impl bodies are
/// left out: there the suggestion is cut after its first definition, by design.)
fn bodies<'t>(node: Node<'t>, out: &mut Vec<Node<'t>>) {
    if let Some(body) = node.child_by_field_name("body") {
        if FUNCTIONS.contains(&node.kind())
            && body.named_child_count() >= 2
            && body.start_position().row + 3 <= body.end_position().row
        {
            out.push(body);
        }
    }
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        bodies(child, out);
    }
}

const CLASSES: &[&str] = &[
    "impl_item",
    "trait_item",
    "class_definition",
    "class_declaration",
];

fn class_bodies<'t>(node: Node<'t>, out: &mut Vec<Node<'t>>) {
    if let Some(body) = node.child_by_field_name("body") {
        if CLASSES.contains(&node.kind()) && body.named_child_count() >= 2 {
            out.push(body);
        }
    }
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        class_bodies(child, out);
    }
}

fn is_definition(node: Node<'_>) -> bool {
    FUNCTIONS.contains(&node.kind())
        || matches!(
            node.kind(),
            "decorated_definition" | "function_signature_item" | "class_definition"
        )
}

fn leading(node: Node<'_>) -> bool {
    let kind = node.kind();
    kind.contains("comment") || kind.contains("attribute") || kind.contains("decorator")
}

fn run_fit(
    report: &mut Report,
    lang: Lang,
    doc: &str,
    cursor_byte: usize,
    s: &str,
) -> Option<String> {
    let rope = Rope::from_str(doc);
    let syntax = Syntax::new(lang, &rope);
    let cursor = rope.byte_to_char(cursor_byte);
    let start = Instant::now();
    let out = fit(Some(&syntax), &rope, cursor, s);
    report.fit_time += start.elapsed();
    report.fits += 1;
    out
}

fn eval_file(report: &mut Report, lang: Lang, text: &str, rng: &mut Lcg) {
    let rope = Rope::from_str(text);
    let syntax = Syntax::new(lang, &rope);
    if syntax.tree().root_node().has_error() {
        return;
    }
    let mut found = Vec::new();
    bodies(syntax.tree().root_node(), &mut found);
    for _ in 0..BODIES_PER_FILE.min(found.len()) {
        let body = found[rng.below(found.len())];
        let (Some(first), Some(last)) = (
            body.named_child(0),
            body.named_child(body.named_child_count() as u32 - 1),
        ) else {
            continue;
        };
        let (start, end) = (first.start_byte(), last.end_byte());
        let truth = &text[start..end];
        let doc = format!("{}{}", &text[..start], &text[end..]);
        let rope_doc = Rope::from_str(&doc);
        let sy = Syntax::new(lang, &rope_doc);
        let sh = shape(Some(&sy), &rope_doc, rope_doc.byte_to_char(start));
        report.body_shape.add(sh == Shape::Block, false, || {
            format!("{sh:?} at {:?}", &doc[start.saturating_sub(60)..start])
        });

        let out = run_fit(report, lang, &doc, start, truth);
        report
            .body_exact
            .add(out.as_deref() == Some(truth), out.is_none(), || {
                format!("truth {truth:?}\n      got {out:?}")
            });

        // The model runs on past the body: the closer and what follows.
        let tail_end = text[end..]
            .char_indices()
            .filter(|(_, c)| *c == '\n')
            .nth(6)
            .map_or(text.len(), |(i, _)| end + i);
        // The model was cut off somewhere in the body: whatever comes back must parse.
        let mut cut = start + 1 + rng.below(truth.len() - 1);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let partial = &text[start..cut];
        let out = run_fit(report, lang, &doc, start, partial);
        let parses = out.as_deref().is_none_or(|o| {
            let full = format!("{}{o}{}", &doc[..start], &doc[start..]);
            let rope = Rope::from_str(&full);
            !Syntax::new(lang, &rope).tree().root_node().has_error()
        });
        report.body_truncated.add(parses, out.is_none(), || {
            format!("partial {partial:?}\n      got {out:?}")
        });

        let overshoot = &text[start..tail_end];
        let out = run_fit(report, lang, &doc, start, overshoot);
        let ok = out.as_deref().map(str::trim_end) == Some(truth.trim_end());
        report.body_overshoot.add(ok, out.is_none(), || {
            format!("truth {truth:?}\n      sugg  {overshoot:?}\n      got   {out:?}")
        });
    }

    // Class, impl and module bodies: a suggestion holding all the members stops before the
    // second definition (and the attributes and comments leading into it).
    let mut containers = Vec::new();
    class_bodies(syntax.tree().root_node(), &mut containers);
    for _ in 0..BODIES_PER_FILE.min(containers.len()) {
        let body = containers[rng.below(containers.len())];
        let mut cursor = body.walk();
        let members: Vec<Node<'_>> = body.named_children(&mut cursor).collect();
        let defs: Vec<usize> = (0..members.len())
            .filter(|i| is_definition(members[*i]))
            .collect();
        if defs.len() < 2 || defs[0] != 0 && !leading(members[0]) {
            continue;
        }
        let mut keep = defs[1];
        while keep > defs[0] + 1 && leading(members[keep - 1]) {
            keep -= 1;
        }
        let (start, end) = (
            members[0].start_byte(),
            members[members.len() - 1].end_byte(),
        );
        let want = &text[start..members[keep - 1].end_byte()];
        let doc = format!("{}{}", &text[..start], &text[end..]);
        let suggestion = &text[start..end];
        let out = run_fit(report, lang, &doc, start, suggestion);
        let ok = out.as_deref().map(str::trim_end) == Some(want.trim_end());
        report.class_first.add(ok, out.is_none(), || {
            format!("want {want:?}\n      got  {out:?}")
        });
    }

    // Line tails: cut a line inside a body at a token boundary.
    let lines: Vec<usize> = (0..rope.len_lines())
        .filter(|l| {
            let t = rope.line(*l).to_string();
            t.starts_with([' ', '\t']) && t.trim().len() > 8
        })
        .collect();
    for _ in 0..LINES_PER_FILE.min(lines.len()) {
        let line = lines[rng.below(lines.len())];
        let line_start = rope.line_to_byte(line);
        let line_text = rope.line(line).to_string();
        let line_end = line_start + line_text.trim_end().len();
        let root = syntax.tree().root_node();
        // Token boundaries on the line, after its first token.
        let mut cuts = Vec::new();
        let mut cursor = root.walk();
        loop {
            let n = cursor.node();
            let indent = line_text.len() - line_text.trim_start().len();
            if n.child_count() == 0
                && n.start_byte() > line_start + indent
                && n.start_byte() < line_end
                && n.end_byte() <= line_end
            {
                cuts.push(n.start_byte());
            }
            if n.end_byte() > line_start && n.start_byte() < line_end && cursor.goto_first_child() {
                continue;
            }
            let mut done = false;
            while !cursor.goto_next_sibling() {
                if !cursor.goto_parent() {
                    done = true;
                    break;
                }
            }
            if done {
                break;
            }
        }
        if cuts.is_empty() {
            continue;
        }
        let cut = cuts[rng.below(cuts.len())];
        // Exact tail: the rest of the line.
        let truth = &text[cut..line_end];
        let doc = format!("{}{}", &text[..cut], &text[line_end..]);
        let out = run_fit(report, lang, &doc, cut, truth);
        report
            .line_exact
            .add(out.as_deref() == Some(truth), out.is_none(), || {
                format!(
                    "line {:?}\n      truth {truth:?} got {out:?}",
                    line_text.trim_end()
                )
            });
        // The tail without its closing characters, which stay after the cursor; the model
        // repeats them.
        let closers = truth.len()
            - truth
                .trim_end_matches([')', ']', '}', ';', ',', '"', '\''])
                .len();
        // (A quote right before the stripped ones is an opener, as in `"""`: not a closer task.)
        let opener_quote = truth[..truth.len() - closers].ends_with(['"', '\'']);
        if closers > 0 && closers < truth.len() && !opener_quote {
            let middle = &truth[..truth.len() - closers];
            let doc = format!("{}{}", &text[..cut], &text[cut + middle.len()..]);
            let out = run_fit(report, lang, &doc, cut, truth);
            report
                .line_closers
                .add(out.as_deref() == Some(middle), out.is_none(), || {
                    format!(
                        "line {:?}\n      want {middle:?} got {out:?}",
                        line_text.trim_end()
                    )
                });
        }
    }
}

#[test]
#[ignore = "reads real code from the machine; run by hand"]
fn oracle_fit_on_real_code() {
    let spec = std::env::var("SYNTAX_EVAL").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_default();
        format!("rust={home}/.cargo/registry/src python=/usr/lib/python3.11")
    });
    for item in spec.split_whitespace() {
        let (name, dir) = item.split_once('=').expect("lang=dir");
        let (lang, exts): (Lang, &[&str]) = match name {
            "rust" => (Lang::Rust, &["rs"]),
            "python" => (Lang::Python, &["py"]),
            "javascript" => (Lang::JavaScript, &["js"]),
            "typescript" => (Lang::TypeScript, &["ts"]),
            "go" => (Lang::Go, &["go"]),
            "c" => (Lang::C, &["c"]),
            "cpp" => (Lang::Cpp, &["cpp", "cc"]),
            "java" => (Lang::Java, &["java"]),
            other => panic!("unknown language {other}"),
        };
        let mut all = Vec::new();
        files(Path::new(dir), exts, &mut all);
        let mut rng = Lcg(7);
        let mut picked = Vec::new();
        while picked.len() < MAX_FILES.min(all.len()) {
            picked.push(all.swap_remove(rng.below(all.len())));
        }
        let mut report = Report::default();
        for path in &picked {
            if let Ok(text) = std::fs::read_to_string(path) {
                eval_file(&mut report, lang, &text, &mut rng);
            }
        }
        eprintln!("{name}: {} files from {dir}", picked.len());
        for (label, t) in [
            ("body: shape is Block", &report.body_shape),
            ("body: exact truth kept", &report.body_exact),
            ("body: overshoot cut to truth", &report.body_overshoot),
            ("class body: cut after 1st member", &report.class_first),
            ("body cut off: result parses", &report.body_truncated),
            ("line: exact tail kept", &report.line_exact),
            ("line: repeated closers dropped", &report.line_closers),
        ] {
            eprintln!("{}", t.line(label));
            for e in &t.examples {
                eprintln!("    e.g. {e}");
            }
        }
        eprintln!(
            "  fit: {:?} on average",
            report.fit_time / report.fits.max(1) as u32
        );
    }
}
