//! Incremental edits against a plain `String` that follows LSP's rules: positions in UTF-16 or
//! UTF-8 units, lines broken at `\n`, `\r\n` and `\r` only (form feed, NEL, U+2028 and U+2029 are
//! ordinary characters). The document's text must equal the reference after every change, and
//! its syntax tree must match a fresh parse.
#![no_main]

use std::str::FromStr;

use arbitrary::Arbitrary;
use inkling::lsp::documents::{Documents, Place};
use inkling::position::Encoding;
use libfuzzer_sys::fuzz_target;
use tower_lsp_server::ls_types::{Position, Range, TextDocumentContentChangeEvent, Uri};

#[derive(Debug, Arbitrary)]
struct Op {
    line: u8,
    col: u8,
    len: u8,
    text: Vec<u8>,
    full: bool,
}

#[derive(Debug, Arbitrary)]
struct Input {
    utf8: bool,
    start: Vec<u8>,
    ops: Vec<Vec<Op>>,
}

/// Characters the fuzzer composes text from: every kind of line break and wide characters.
const ALPHABET: &[&str] = &[
    "a", " ", "\n", "\r", "\r\n", "\u{c}", "\u{b}", "\u{85}", "\u{2028}", "\u{2029}", "é", "😀",
    "(", ")", ":", "\t", "def ", "x = 1",
];

fn text_of(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()])
        .collect()
}

/// Byte offsets of line starts, LSP style.
fn line_starts(s: &str) -> Vec<usize> {
    let b = s.as_bytes();
    let mut v = vec![0];
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\r' if b.get(i + 1) == Some(&b'\n') => {
                v.push(i + 2);
                i += 2;
                continue;
            }
            b'\r' | b'\n' => v.push(i + 1),
            _ => {}
        }
        i += 1;
    }
    v
}

/// The content of line `l` without its break.
fn line(s: &str, starts: &[usize], l: usize) -> (usize, String) {
    let start = starts[l];
    let end = starts.get(l + 1).copied().unwrap_or(s.len());
    let content = s[start..end].trim_end_matches(['\n', '\r']).to_string();
    (start, content)
}

fn units(c: char, utf8: bool) -> usize {
    if utf8 { c.len_utf8() } else { c.len_utf16() }
}

/// A position inside the text (picked from the op), as (LSP position, byte offset).
fn pick(s: &str, l: u8, col: u8, utf8: bool) -> (Position, usize) {
    let starts = line_starts(s);
    let l = l as usize % starts.len();
    let (start, content) = line(s, &starts, l);
    let chars: Vec<char> = content.chars().collect();
    let k = col as usize % (chars.len() + 1);
    let column: usize = chars[..k].iter().map(|c| units(*c, utf8)).sum();
    let byte: usize = chars[..k].iter().map(|c| c.len_utf8()).sum();
    (Position::new(l as u32, column as u32), start + byte)
}

fuzz_target!(|input: Input| {
    let enc = if input.utf8 {
        Encoding::Utf8
    } else {
        Encoding::Utf16
    };
    let uri = Uri::from_str("file:///fuzz/a.py").unwrap();
    let place = || Place {
        path: "a.py".into(),
        repo: "fuzz".into(),
        secret: false,
    };
    let mut reference = text_of(&input.start);
    let docs = Documents::default();
    docs.open(uri.clone(), &reference, 1, "python", place());
    for (v, message) in input.ops.iter().take(16).enumerate() {
        let mut changes = Vec::new();
        for op in message.iter().take(16) {
            let text = text_of(&op.text);
            if op.full {
                reference = text.clone();
                changes.push(TextDocumentContentChangeEvent {
                    range: None,
                    range_length: None,
                    text,
                });
                continue;
            }
            let (start, sb) = pick(&reference, op.line, op.col, input.utf8);
            // The end: `len` characters further, within the same document.
            let rest: Vec<char> = reference[sb..].chars().collect();
            let n = op.len as usize % (rest.len() + 1);
            let removed: String = rest[..n].iter().collect();
            let eb = sb + removed.len();
            let (end, _) = {
                let starts = line_starts(&reference);
                let l = starts.iter().rposition(|s| *s <= eb).unwrap_or(0);
                // A position inside a \r\n pair is not one; skip such an op.
                if eb > 0
                    && reference.as_bytes().get(eb - 1) == Some(&b'\r')
                    && reference.as_bytes().get(eb) == Some(&b'\n')
                {
                    continue;
                }
                let (ls, content) = line(&reference, &starts, l);
                let within = &reference[ls..eb];
                if within.len() > content.len() {
                    continue;
                }
                let col: usize = within.chars().map(|c| units(c, input.utf8)).sum();
                (Position::new(l as u32, col as u32), ())
            };
            reference.replace_range(sb..eb, &text);
            changes.push(TextDocumentContentChangeEvent {
                range: Some(Range::new(start, end)),
                range_length: None,
                text,
            });
        }
        docs.change(&uri, v as i32 + 2, &changes, enc, place);
        let d = docs.get(&uri).unwrap();
        assert!(!d.out_of_sync, "an edit in range was refused");
        assert_eq!(d.doc.rope.to_string(), reference);
        // Error recovery may legitimately differ between an incremental and a fresh parse;
        // where the text parses cleanly, the trees must agree.
        if let Some(syn) = d.syntax.as_ref() {
            let fresh = inkling::syntax::Syntax::new(syn.lang(), &d.doc.rope);
            if !fresh.tree().root_node().has_error() {
                assert_eq!(
                    syn.tree().root_node().to_sexp(),
                    fresh.tree().root_node().to_sexp()
                );
            }
        }
    }
});
