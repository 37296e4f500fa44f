//! inkling's own protocol extensions and the conversions between LSP shapes and inkling's.
//!
//! Architecture Invariant: together with `server.rs`, the only code that knows LSP types and JSON.

use ls_types::{Position, Range};
use ropey::Rope;
use serde::{Deserialize, Serialize};
use tower_lsp_server::ls_types;

use crate::engine::Timings;
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
}

pub enum CompletionStats {}

impl ls_types::notification::Notification for CompletionStats {
    type Params = CompletionStatsParams;
    const METHOD: &'static str = "inkling/completionStats";
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
