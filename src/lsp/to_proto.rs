//! inkling's answers in LSP shapes: inline completion items, a completion-menu item, and the
//! `inkling/complete` result.

use ropey::Rope;
use tower_lsp_server::ls_types::*;

use super::protocol::{self, CompleteResult, Source};
use super::suggest::Answer;
use crate::position::{self, Encoding};

pub(super) fn inline_item(a: &Answer) -> InlineCompletionItem {
    InlineCompletionItem {
        insert_text: a.text.clone(),
        filter_text: None,
        range: Some(Range::new(a.start, a.end)),
        command: None,
        insert_text_format: None,
    }
}

pub(super) fn complete_result(a: Option<Answer>, latency_ms: f64) -> CompleteResult {
    match a {
        Some(a) => CompleteResult {
            items: vec![inline_item(&a)],
            source: a.source,
            latency_ms: a.latency_ms,
            timings: a.timings,
        },
        None => CompleteResult {
            items: vec![],
            source: Source::None,
            latency_ms,
            timings: None,
        },
    }
}

/// The word before `at` on its line (letters, digits, `_`).
fn word_before(rope: &Rope, at: Position, enc: Encoding) -> String {
    let c = protocol::to_char(rope, at, enc).char_idx;
    let line_start = rope.line_to_char(rope.char_to_line(c));
    let before: String = rope.slice(line_start..c).to_string();
    let mut word: Vec<char> = before
        .chars()
        .rev()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    word.reverse();
    word.into_iter().collect()
}

/// A completion-menu item for a suggestion. Menus filter by the word before the cursor, so the
/// item replaces that word (and starts with it) rather than being hidden.
pub(super) fn completion_item(a: &Answer, rope: Option<&Rope>, enc: Encoding) -> CompletionItem {
    let word = rope
        .map(|r| word_before(r, a.start, enc))
        .unwrap_or_default();
    let width = u32::try_from(position::width(&word, enc)).unwrap_or(u32::MAX);
    let start = Position::new(a.start.line, a.start.character.saturating_sub(width));
    let full = format!("{word}{}", a.text);
    let label = full
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(&full)
        .trim()
        .to_string();
    CompletionItem {
        label,
        kind: Some(CompletionItemKind::SNIPPET),
        detail: Some(format!("inkling ({:.0} ms)", a.latency_ms)),
        documentation: Some(Documentation::MarkupContent(MarkupContent {
            kind: MarkupKind::Markdown,
            value: format!("```\n{full}\n```"),
        })),
        preselect: Some(true),
        sort_text: Some("0000".into()),
        filter_text: Some(full.clone()),
        insert_text_format: Some(InsertTextFormat::PLAIN_TEXT),
        text_edit: Some(CompletionTextEdit::Edit(TextEdit {
            range: Range::new(start, a.end),
            new_text: full,
        })),
        ..Default::default()
    }
}
