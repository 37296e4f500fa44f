//! The decode loop: greedy tokens after the prompt, with token healing, stop rules, and
//! speculative proposals verified in one batch.
//!
//! It reaches the model only through [`Rows`] (evaluate tokens after the cache, read a row's
//! logits, roll back) and the draft model through [`Drafter`], so the interplay of healing,
//! acceptance and stopping is unit-tested below on a table-driven fake. [`super::kv::KvSeq`] is the
//! real implementation.

use std::time::Instant;

use llama_cpp_2::token::LlamaToken;

use super::kv::{KvSeq, as_ids};
use super::tokens::{TokenTable, utf8_prefix};
use super::{CancelToken, EngineError, GenerateRequest, StopReason, Timings};
use crate::speculative::{Choice, Policy, PromptLookup, Speculation};

/// On a backend whose batch rows are not bit-identical to one-token passes (the start-up probe
/// says which), a logit gap below this makes verification defer to a one-token pass: the noise
/// between batch sizes is far smaller. Best effort only; where the probe passes it is not used.
const TIE_MARGIN: f32 = 0.1;

/// A draft cache lagging the context by more than this would cost a prompt evaluation to catch
/// up: drafting is skipped (idle time warms it) unless it was asked for explicitly.
const MAX_DRAFT_LAG: usize = 64;

/// What the decode loop needs from the target model.
pub(super) trait Rows {
    /// Evaluates `tokens` after the cache, with logits where `logits(i)`.
    fn eval_rows(
        &mut self,
        tokens: &[LlamaToken],
        logits: &dyn Fn(usize) -> bool,
    ) -> Result<(), EngineError>;
    /// Logits of row `row` of the last evaluation.
    fn logits(&self, row: i32) -> &[f32];
    /// The last row of the last evaluation.
    fn last_row(&self) -> i32;
    /// Tokens in the cache.
    fn len(&self) -> usize;
    /// Drops the cache from position `n` on.
    fn truncate(&mut self, n: usize);
}

impl Rows for KvSeq<'_> {
    fn eval_rows(
        &mut self,
        tokens: &[LlamaToken],
        logits: &dyn Fn(usize) -> bool,
    ) -> Result<(), EngineError> {
        KvSeq::eval_rows(self, tokens, logits).map_err(EngineError::Decode)
    }
    fn logits(&self, row: i32) -> &[f32] {
        KvSeq::logits(self, row)
    }
    fn last_row(&self) -> i32 {
        KvSeq::last_row(self)
    }
    fn len(&self) -> usize {
        self.cached().len()
    }
    fn truncate(&mut self, n: usize) {
        KvSeq::truncate(self, n);
    }
}

/// A proposer that needs a model of its own (the draft model).
pub(super) trait Drafter {
    /// Context tokens it would have to evaluate before proposing.
    fn lag(&self, context: &[LlamaToken]) -> usize;
    /// Up to `k` greedy guesses for what follows `context`.
    fn propose(
        &mut self,
        context: &[LlamaToken],
        k: usize,
        cancel: &CancelToken,
    ) -> Result<Vec<LlamaToken>, EngineError>;
}

/// The speculative roles around the target: who proposes, and how much.
pub(super) struct Roles<'a> {
    pub policy: &'a mut Policy,
    pub lookup: &'a PromptLookup,
    pub drafter: Option<&'a mut dyn Drafter>,
    /// Verification rows are bit-identical to one-token passes (the start-up probe).
    pub exact_batches: bool,
    /// True when nobody waits for the answer any more: stops like a cancel.
    pub abandoned: &'a dyn Fn() -> bool,
}

/// The suggestion as it streams in.
#[derive(Debug, Default)]
pub(super) struct Decoded {
    pub bytes: Vec<u8>,
    pub text: String,
    pub generated: usize,
}

/// How decoding ended: the text, why it stopped, and where to cut it.
#[derive(Debug)]
pub(super) struct Decoding {
    pub out: Decoded,
    pub stop: StopReason,
    /// Byte length of the text to keep, when the stop cut it.
    pub keep: Option<usize>,
}

/// Greedy choice in `logits`; with `heal`, only among tokens that agree with those bytes (start
/// with them, or are a non-empty prefix of them). Ties go to the lowest id.
pub(super) fn argmax(logits: &[f32], table: &TokenTable, heal: Option<&[u8]>) -> LlamaToken {
    let mut best: Option<usize> = None;
    for (i, v) in logits.iter().enumerate() {
        if best.is_some_and(|b| *v <= logits[b]) {
            continue;
        }
        if heal.is_some_and(|h| {
            !table
                .pieces
                .get(i)
                .is_some_and(|p| p.starts_with(h) || (!p.is_empty() && h.starts_with(p)))
        }) {
            continue;
        }
        best = Some(i);
    }
    LlamaToken(best.unwrap_or(0) as i32)
}

/// Greedy choice in `logits` and its lead over the runner-up.
fn argmax_margin(logits: &[f32]) -> (i32, f32) {
    let (mut best, mut top, mut second) = (0usize, f32::NEG_INFINITY, f32::NEG_INFINITY);
    for (i, v) in logits.iter().enumerate() {
        if *v > top {
            second = top;
            top = *v;
            best = i;
        } else if *v > second {
            second = *v;
        }
    }
    (best as i32, top - second)
}

/// Where decoding starts: the prompt, evaluated.
#[derive(Debug)]
pub(super) struct Start {
    /// The prompt's tokens; the last row's logits are current in the target.
    pub context: Vec<LlamaToken>,
    /// The bytes of the prompt's dropped last token, which the first token(s) must agree with.
    pub heal: Option<Vec<u8>>,
    /// The job's start, for the time to the first token.
    pub t0: Instant,
}

/// Decodes greedily after the prompt until a stop token, a stop rule or a limit.
pub(super) fn decode(
    target: &mut dyn Rows,
    table: &TokenTable,
    roles: &mut Roles<'_>,
    req: &GenerateRequest,
    cancel: &CancelToken,
    start: Start,
    timings: &mut Timings,
) -> Result<Decoding, EngineError> {
    let Start {
        mut context,
        mut heal,
        t0,
    } = start;
    let mut out = Decoded::default();
    let decode_start = Instant::now();
    // Speculation needs the plain argmax of the first token(s) while healing constrains them.
    let mut next = argmax(target.logits(target.last_row()), table, heal.as_deref());
    timings.ttft_ms = t0.elapsed().as_secs_f64() * 1e3;
    loop {
        // `next` is the greedy token at the end of `context`; it is not in the KV cache yet.
        if let Some((stop, keep)) =
            accept_token(table, next, &mut heal, &mut out, req, decode_start)
        {
            return Ok(Decoding { out, stop, keep });
        }
        context.push(next);
        if cancel.is_cancelled() || (roles.abandoned)() {
            return Err(EngineError::Cancelled);
        }
        let lookup = if heal.is_none() {
            roles.lookup.propose(&as_ids(&context), 8)
        } else {
            Vec::new()
        };
        let choice = if heal.is_some() {
            Choice::Plain
        } else {
            roles.policy.choose(lookup.len())
        };
        let draft: Vec<LlamaToken> = match choice {
            Choice::Plain => Vec::new(),
            Choice::Lookup(k) => lookup.iter().take(k).map(|t| LlamaToken(*t)).collect(),
            Choice::Draft(k) => draft_propose(roles, &context, k, cancel)?,
        };
        let base = target.len();
        let mut batch = vec![next];
        batch.extend_from_slice(&draft);
        let t = Instant::now();
        target.eval_rows(&batch, &|_| true)?;
        roles
            .policy
            .record_batch(batch.len(), t.elapsed().as_secs_f64() * 1e3);
        if draft.is_empty() {
            next = argmax(target.logits(0), table, heal.as_deref());
            continue;
        }
        let rows: Vec<(i32, f32)> = (0..batch.len())
            .map(|i| argmax_margin(target.logits(i as i32)))
            .collect();
        let targets: Vec<i32> = rows.iter().map(|r| r.0).collect();
        let (verified, after) = crate::speculative::verify(&as_ids(&draft), &targets);
        // Where the probe found batch rows bit-identical to one-token passes they decide as
        // plain decoding would. Elsewhere they differ in the last bits, and where the top two
        // are that close only a one-token pass decides (best effort).
        let sure = if roles.exact_batches {
            rows.len()
        } else {
            rows.iter()
                .position(|r| r.1 < TIE_MARGIN)
                .unwrap_or(rows.len())
        };
        let accepted = verified.min(sure);
        roles.policy.record_accept(choice, draft.len(), accepted);
        timings.draft_proposed += draft.len();
        timings.draft_accepted += accepted;
        // Roll back the rejected tail; the accepted tokens stay in the cache.
        target.truncate(base + 1 + accepted);
        for (j, d) in draft[..accepted].iter().enumerate() {
            if let Some((stop, keep)) =
                accept_token(table, *d, &mut heal, &mut out, req, decode_start)
            {
                // Plain decoding never evaluates the token it stops at.
                target.truncate(base + 1 + j);
                return Ok(Decoding { out, stop, keep });
            }
            context.push(*d);
        }
        next = if accepted < sure {
            LlamaToken(after)
        } else {
            // Re-read the last accepted token alone for the next token's logits.
            let last = batch[accepted];
            target.truncate(base + accepted);
            target.eval_rows(&[last], &|_| true)?;
            argmax(target.logits(0), table, None)
        };
    }
}

/// Proposals from the draft model, unless its cache is cold (then none, except in `draft` mode).
fn draft_propose(
    roles: &mut Roles<'_>,
    context: &[LlamaToken],
    k: usize,
    cancel: &CancelToken,
) -> Result<Vec<LlamaToken>, EngineError> {
    let Some(d) = roles.drafter.as_deref_mut() else {
        return Ok(Vec::new());
    };
    if d.lag(context) > MAX_DRAFT_LAG && roles.policy.mode != Speculation::Draft {
        return Ok(Vec::new());
    }
    let t = Instant::now();
    let proposals = d.propose(context, k, cancel)?;
    if !proposals.is_empty() {
        roles
            .policy
            .record_draft_token(t.elapsed().as_secs_f64() * 1e3 / proposals.len() as f64);
    }
    Ok(proposals)
}

/// Takes one greedy token into the suggestion; `Some` when decoding must stop here.
fn accept_token(
    table: &TokenTable,
    token: LlamaToken,
    heal: &mut Option<Vec<u8>>,
    out: &mut Decoded,
    req: &GenerateRequest,
    decode_start: Instant,
) -> Option<(StopReason, Option<usize>)> {
    if table.is_stop(token) {
        return Some((StopReason::EndOfText, None));
    }
    out.generated += 1;
    let piece = table.piece(token);
    let skip = match heal.take() {
        // A shorter token covered part of the healed text: constrain the next one too.
        Some(h) if h.len() > piece.len() => {
            *heal = Some(h[piece.len()..].to_vec());
            piece.len()
        }
        Some(h) => h.len(),
        None => 0,
    };
    out.bytes.extend_from_slice(&piece[skip.min(piece.len())..]);
    out.text = utf8_prefix(&out.bytes);
    if let Some(p) = &req.partial {
        p.send_replace(out.text.clone());
    }
    if let Some(cut) = req.stop.check(&out.text) {
        return Some((StopReason::StopRule, Some(cut)));
    }
    if out.generated >= req.max_tokens {
        return Some((StopReason::MaxTokens, None));
    }
    if let Some(cap) = req.time_cap_after_newline {
        if out.text.contains('\n') && decode_start.elapsed() >= cap {
            // Keep whole lines only.
            return Some((StopReason::TimeCap, out.text.rfind('\n')));
        }
    }
    None
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
