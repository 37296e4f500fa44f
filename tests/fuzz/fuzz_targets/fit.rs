//! `syntax::fit` and `syntax::shape` on arbitrary documents, cursors and suggestions, in every
//! language with a grammar: no panic, and a fitted suggestion is never longer than the original.
#![no_main]

use arbitrary::Arbitrary;
use inkling::syntax::{Lang, Syntax, fit, shape};
use libfuzzer_sys::fuzz_target;
use ropey::Rope;

#[derive(Debug, Arbitrary)]
struct Input {
    lang: u8,
    text: String,
    cursor: u16,
    suggestion: String,
}

const LANGS: &[&str] = &[
    "a.rs", "a.py", "a.js", "a.ts", "a.tsx", "a.go", "a.c", "a.cpp", "A.java",
];

fuzz_target!(|input: Input| {
    let path = LANGS[input.lang as usize % LANGS.len()];
    let Some(lang) = Lang::from_path(path) else {
        return;
    };
    let rope = Rope::from_str(&input.text);
    let cursor = input.cursor as usize % (rope.len_chars() + 1);
    let syntax = Syntax::new(lang, &rope);
    let _ = shape(Some(&syntax), &rope, cursor);
    let _ = shape(None, &rope, cursor);
    for tree in [Some(&syntax), None] {
        if let Some(out) = fit(tree, &rope, cursor, &input.suggestion) {
            assert!(out.len() <= input.suggestion.len() + 64, "{out:?}");
        }
    }
});
