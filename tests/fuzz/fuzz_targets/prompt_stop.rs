//! The prompt builder and the stop rules on arbitrary text: no panic, the prompt's in-file parts
//! come from the document, typing forward only appends to the prompt, and a stop cut falls on a
//! character boundary inside the text.
#![no_main]

use arbitrary::Arbitrary;
use inkling::prompt::{Budget, FileView, plan};
use inkling::stop::StopRules;
use libfuzzer_sys::fuzz_target;
use ropey::Rope;

#[derive(Debug, Arbitrary)]
struct Input {
    text: String,
    cursor: u16,
    typed: String,
    prefix_tokens: u8,
    suffix_tokens: u8,
    suggestion: String,
}

fuzz_target!(|input: Input| {
    let rope = Rope::from_str(&input.text);
    let cursor = input.cursor as usize % (rope.len_chars() + 1);
    let budget = Budget {
        prefix_tokens: input.prefix_tokens as usize,
        suffix_tokens: input.suffix_tokens as usize,
        ..Budget::default()
    };
    let view = FileView {
        rope: &rope,
        cursor,
        path: "src/a.py",
        repo: "fuzz",
    };
    let first = plan(&view, &budget, &[], None);
    // Type forward at the cursor (no line breaks other than `\n`, like an editor inserting).
    let typed: String = input
        .typed
        .chars()
        .filter(|c| *c != '\r')
        .take(40)
        .collect();
    let mut after = rope.clone();
    after.insert(cursor, &typed);
    let view = FileView {
        rope: &after,
        cursor: cursor + typed.chars().count(),
        ..view
    };
    let second = plan(&view, &budget, &[], Some(&first.anchor));
    if second.anchor_reused {
        let (a, b) = (first.prompt.render_qwen(), second.prompt.render_qwen());
        assert!(
            b.starts_with(&a),
            "typing forward changed the prompt before the cursor"
        );
    }
    for rules in [&first.stop, &second.stop, &StopRules::default()] {
        if let Some(cut) = rules.check(&input.suggestion) {
            assert!(cut <= input.suggestion.len());
            assert!(input.suggestion.is_char_boundary(cut));
        }
        let _ = rules.finish(&input.suggestion);
    }
});
