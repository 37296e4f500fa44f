//! Micro-benchmarks of the hot paths that run on every keystroke, with criterion:
//! rope edits and UTF-16 position conversion, incremental reparse, prompt building, and the
//! syntax-driven shape/fit/context symbols. (Run: `cargo bench --bench micro`.)

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use inkling::document::{Document, Edit};
use inkling::position::{self, Encoding};
use inkling::prompt::{self, Budget, FileView};
use inkling::syntax::{self, Lang, Syntax};
use ropey::Rope;

/// A 2,000-line Rust file built from the crate's own source, so the numbers mean real code.
fn source() -> String {
    let one = include_str!("../src/lsp/suggest.rs");
    let mut s = String::new();
    while s.lines().count() < 2000 {
        s.push_str(one);
    }
    s
}

fn rope_and_positions(c: &mut Criterion) {
    let text = source();
    let rope = Rope::from_str(&text);
    let mid = rope.len_lines() / 2;
    c.bench_function("position: utf16 line/col -> char (mid-file)", |b| {
        b.iter(|| position::to_char(black_box(&rope), mid, 40, Encoding::Utf16))
    });
    c.bench_function("position: char -> utf16 line/col", |b| {
        let at = rope.line_to_char(mid) + 10;
        b.iter(|| position::from_char(black_box(&rope), at, Encoding::Utf16))
    });
    c.bench_function("document: one-char insert + delete", |b| {
        let mut doc = Document::new(&text, 1, "rust");
        let at = doc.rope.line_to_char(mid);
        b.iter(|| {
            doc.apply(&Edit {
                start: at,
                end: at,
                text: "x".into(),
            });
            doc.apply(&Edit {
                start: at,
                end: at + 1,
                text: String::new(),
            });
        })
    });
}

fn parsing(c: &mut Criterion) {
    let text = source();
    let rope = Rope::from_str(&text);
    c.bench_function("syntax: full parse, 2,000 lines", |b| {
        b.iter(|| Syntax::new(Lang::Rust, black_box(&rope)))
    });
    c.bench_function("syntax: incremental reparse after a keystroke", |b| {
        let mut syn = Syntax::new(Lang::Rust, &rope);
        let mut cur = rope.clone();
        let at = cur.line_to_char(cur.len_lines() / 2);
        b.iter(|| {
            let before = cur.clone();
            cur.insert(at, "x");
            syn.edit(&before, at, at, "x", &cur);
            let before = cur.clone();
            cur.remove(at..at + 1);
            syn.edit(&before, at, at + 1, "", &cur);
        })
    });
    let syn = Syntax::new(Lang::Rust, &rope);
    let cursor = rope.line_to_char(rope.len_lines() / 2) + 8;
    c.bench_function("syntax: shape at the cursor", |b| {
        b.iter(|| syntax::shape(Some(&syn), black_box(&rope), cursor))
    });
    c.bench_function("syntax: fit a 3-line suggestion", |b| {
        b.iter(|| {
            syntax::fit(
                Some(&syn),
                &rope,
                cursor,
                black_box("let a = 1;\n        let b = 2;\n    }"),
            )
        })
    });
    c.bench_function("syntax: context symbols (imports + references)", |b| {
        b.iter(|| syntax::context_symbols(&syn, black_box(&rope), cursor))
    });
}

fn prompts(c: &mut Criterion) {
    let text = source();
    let rope = Rope::from_str(&text);
    let cursor = rope.line_to_char(rope.len_lines() / 2) + 8;
    let view = FileView {
        rope: &rope,
        cursor,
        path: "src/lsp/server.rs",
        repo: "inkling",
    };
    c.bench_function("prompt: plan (fresh anchor)", |b| {
        b.iter(|| prompt::plan(black_box(&view), &Budget::default(), &[], None))
    });
    let first = prompt::plan(&view, &Budget::default(), &[], None);
    c.bench_function("prompt: plan (typing forward, anchor kept)", |b| {
        b.iter(|| {
            prompt::plan(
                black_box(&view),
                &Budget::default(),
                &[],
                Some(&first.anchor),
            )
        })
    });
}

criterion_group!(benches, rope_and_positions, parsing, prompts);
criterion_main!(benches);
