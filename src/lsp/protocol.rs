//! inkling's own protocol extensions (their wire types are their own, not the engine's) and the
//! conversions from LSP positions to inkling's char offsets (`from_proto`).
//!
//! Architecture Invariant: `src/lsp/` is the only code that knows LSP types and JSON.

use ls_types::{Position, Range};
use ropey::Rope;
use serde::{Deserialize, Serialize};
use tower_lsp_server::ls_types;

use crate::position::{self, Clamped, Encoding};

/// `inkling/status` (server → client): the model's state, for status bars.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StatusParams {
    pub state: String,
    pub message: Option<String>,
}

pub enum Status {}

impl ls_types::notification::Notification for Status {
    type Params = StatusParams;
    const METHOD: &'static str = "inkling/status";
}

/// `inkling/completionStats` (server → client), after each answered completion.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CompletionStatsParams {
    pub latency_ms: f64,
    pub source: Source,
    pub generated_tokens: usize,
    /// The model is still writing this suggestion (it was answered early).
    #[serde(default)]
    pub streaming: bool,
}

pub enum CompletionStats {}

impl ls_types::notification::Notification for CompletionStats {
    type Params = CompletionStatsParams;
    const METHOD: &'static str = "inkling/completionStats";
}

/// `inkling/suggestionGrown` (server → client): the suggestion answered at `position` of that
/// document version has grown (the model kept writing it) while the user was idle; asking again
/// there gets the longer text at once. Clients re-ask only while the document is still at that
/// version and the cursor at that position.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SuggestionGrownParams {
    pub text_document: ls_types::VersionedTextDocumentIdentifier,
    pub position: Position,
    /// Length of the suggestion now, in chars.
    pub chars: usize,
    /// The model has finished it.
    #[serde(rename = "final")]
    pub done: bool,
}

pub enum SuggestionGrown {}

impl ls_types::notification::Notification for SuggestionGrown {
    type Params = SuggestionGrownParams;
    const METHOD: &'static str = "inkling/suggestionGrown";
}

/// `inkling/suggestionDone` (server → client): a model job finished its suggestion (for status
/// bars and benchmarks; editors may ignore it).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SuggestionDoneParams {
    pub text_document: ls_types::TextDocumentIdentifier,
    /// From the request that started the job to its end.
    pub elapsed_ms: f64,
    /// From the request that started the job to the first piece that could be shown (the whole
    /// suggestion's time when it was not streamed).
    pub first_piece_ms: f64,
    pub chars: usize,
    pub generated_tokens: usize,
}

pub enum SuggestionDone {}

impl ls_types::notification::Notification for SuggestionDone {
    type Params = SuggestionDoneParams;
    const METHOD: &'static str = "inkling/suggestionDone";
}

/// `inkling/cursor` (client → server): where the cursor rests, so that the server can evaluate
/// that spot's prompt in idle time.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CursorParams {
    pub text_document: ls_types::TextDocumentIdentifier,
    pub position: Position,
}

/// `inkling/warmed` (server → client): the prompt at a cursor is evaluated (or was loaded from
/// disk); the first keystroke there costs its own tokens only.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WarmedParams {
    pub text_document: ls_types::TextDocumentIdentifier,
    pub position: Position,
    pub prompt_tokens: usize,
    pub evaluated_tokens: usize,
    pub loaded_tokens: usize,
    pub ms: f64,
}

pub enum Warmed {}

impl ls_types::notification::Notification for Warmed {
    type Params = WarmedParams;
    const METHOD: &'static str = "inkling/warmed";
}

/// Where a suggestion came from.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    Model,
    TypedThrough,
    Prefetch,
    None,
}

/// Result of `inkling/complete`: the inline completion plus where the time went.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompleteResult {
    pub items: Vec<ls_types::InlineCompletionItem>,
    pub source: Source,
    /// Milliseconds from receiving the request to answering it.
    pub latency_ms: f64,
    pub timings: Option<Timings>,
}

/// Where the time of a model answer went, as `inkling/complete` reports it (the engine's
/// timings, copied field by field so that the engine can change without changing the wire).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub prompt_tokens: usize,
    pub reused_tokens: usize,
    #[serde(default)]
    pub shifted_tokens: usize,
    #[serde(default)]
    pub loaded_tokens: usize,
    pub evaluated_tokens: usize,
    pub generated_tokens: usize,
    pub ttft_ms: f64,
    pub prompt_ms: f64,
    pub total_ms: f64,
    pub queue_ms: f64,
    pub tokens_per_second: f64,
    pub draft_proposed: usize,
    pub draft_accepted: usize,
}

impl From<&crate::engine::Timings> for Timings {
    fn from(t: &crate::engine::Timings) -> Self {
        Timings {
            prompt_tokens: t.prompt_tokens,
            reused_tokens: t.reused_tokens,
            shifted_tokens: t.shifted_tokens,
            loaded_tokens: t.loaded_tokens,
            evaluated_tokens: t.evaluated_tokens,
            generated_tokens: t.generated_tokens,
            ttft_ms: t.ttft_ms,
            prompt_ms: t.prompt_ms,
            total_ms: t.total_ms,
            queue_ms: t.queue_ms,
            tokens_per_second: t.tokens_per_second,
            draft_proposed: t.draft_proposed,
            draft_accepted: t.draft_accepted,
        }
    }
}

/// LSP position → char offset, clamped.
pub fn to_char(rope: &Rope, pos: Position, enc: Encoding) -> Clamped {
    position::to_char(rope, pos.line as usize, pos.character as usize, enc)
}

/// Char offset → LSP position.
pub fn to_position(rope: &Rope, char_idx: usize, enc: Encoding) -> Position {
    let (line, col) = position::from_char(rope, char_idx, enc);
    Position::new(
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(col).unwrap_or(u32::MAX),
    )
}

/// LSP range → char range, clamped; `None` when a bound had to be clamped.
pub fn to_char_range(rope: &Rope, range: Range, enc: Encoding) -> Option<(usize, usize)> {
    let s = to_char(rope, range.start, enc);
    let e = to_char(rope, range.end, enc);
    if s.clamped || e.clamped || e.char_idx < s.char_idx {
        return None;
    }
    Some((s.char_idx, e.char_idx))
}
