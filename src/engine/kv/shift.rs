//! Reusing the cache for a new prompt: the longest common token prefix stays in place, and when a
//! repo-context chunk before the cursor changed, the run of unchanged chunks after it is moved to
//! its new positions (a RoPE shift) instead of being evaluated again.

use llama_cpp_2::token::LlamaToken;

use super::{KvSeq, PROMPT_CHUNK, common_prefix};
use crate::engine::{CancelToken, EngineError, KvReuse};

/// A run of cached chunks shorter than this is re-evaluated rather than moved.
const MIN_SHIFT_RUN: usize = 32;

/// Cached tokens `from..from + len` reappear in the new prompt at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Run {
    pub at: usize,
    pub from: usize,
    pub len: usize,
}

impl KvSeq<'_> {
    /// Makes the cache hold a prefix of `tokens` (all but the last, so that the last is always
    /// evaluated for fresh logits): the common prefix in place, and, when a chunk changed, one
    /// later run of chunks (starting at a `sep` token) moved to its new positions; the tokens
    /// between are evaluated here. Returns (reused in place, shifted).
    pub fn reuse(
        &mut self,
        tokens: &[LlamaToken],
        mode: KvReuse,
        sep: Option<LlamaToken>,
        cancel: &CancelToken,
    ) -> Result<(usize, usize), EngineError> {
        let limit = tokens.len() - 1;
        if mode == KvReuse::None {
            self.truncate(0);
            return Ok((0, 0));
        }
        let p = common_prefix(&self.cached, tokens).min(limit);
        let run = match (mode, sep) {
            (KvReuse::Shift, Some(sep)) => find_run(&self.cached, tokens, p, limit, sep),
            _ => None,
        };
        let Some(Run { at, from, len }) = run else {
            self.truncate(p);
            return Ok((self.cached.len(), 0));
        };
        // Park the run in sequence 1, drop everything after the prefix from sequence 0, evaluate
        // the new tokens before the run, then move the run to its new positions and take it back.
        // llama.cpp requires each sequence's positions to grow by one, hence the detour.
        let parked = self
            .ctx
            .kv_cache_seq_cp(0, 1, Some(from as u32), Some((from + len) as u32))
            .is_ok();
        self.truncate(p);
        if !parked || self.cached.len() != p {
            self.drop_parked();
            return Ok((self.cached.len(), 0));
        }
        for chunk in tokens[p..at].chunks(PROMPT_CHUNK) {
            if cancel.is_cancelled() {
                self.drop_parked();
                return Err(EngineError::Cancelled);
            }
            if let Err(e) = self.eval_rows(chunk, |_| false) {
                self.drop_parked();
                return Err(EngineError::Decode(e));
            }
        }
        let delta = at as i32 - from as i32;
        let moved = self
            .ctx
            .kv_cache_seq_add(1, Some(from as u32), Some((from + len) as u32), delta)
            .and_then(|()| {
                self.ctx
                    .kv_cache_seq_cp(1, 0, Some(at as u32), Some((at + len) as u32))
            })
            .is_ok();
        self.drop_parked();
        if !moved {
            self.truncate(p);
            return Ok((p, 0));
        }
        self.cached.extend_from_slice(&tokens[at..at + len]);
        Ok((p, len))
    }

    /// Empties the parking sequence.
    pub fn drop_parked(&mut self) {
        if self.ctx.kv_cache_seq_rm(1, None, None).is_err() {
            self.reset();
        }
    }
}

/// The longest run of cached chunks (starting at a `sep` token, after the common prefix `p`)
/// that the new prompt repeats before `limit`, if it is worth moving.
pub(super) fn find_run(
    cached: &[LlamaToken],
    tokens: &[LlamaToken],
    p: usize,
    limit: usize,
    sep: LlamaToken,
) -> Option<Run> {
    let starts = |ts: &[LlamaToken], end: usize| -> Vec<usize> {
        (p..end.min(ts.len())).filter(|&i| ts[i] == sep).collect()
    };
    let (old, new) = (starts(cached, cached.len()), starts(tokens, limit));
    let mut best: Option<Run> = None;
    for &at in &new {
        for &from in &old {
            let len = common_prefix(&cached[from..], &tokens[at..limit]);
            if len >= MIN_SHIFT_RUN && best.is_none_or(|b| len > b.len) {
                best = Some(Run { at, from, len });
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::{LlamaToken, Run, common_prefix, find_run};

    #[test]
    fn finds_the_chunks_after_a_changed_one() {
        let t = |v: &[i32]| v.iter().map(|&i| LlamaToken(i)).collect::<Vec<_>>();
        let sep = LlamaToken(-1);
        // repo, chunk A, chunk B (changed), chunk C, FIM part.
        let a: Vec<i32> = (100..140).collect();
        let c: Vec<i32> = (300..340).collect();
        let build = |b: &[i32]| {
            let mut v = vec![1, -1];
            v.extend(&a);
            v.push(-1);
            v.extend(b);
            v.push(-1);
            v.extend(&c);
            v.extend([7, 8, 9]);
            t(&v)
        };
        let old = build(&[200, 201, 202]);
        let new = build(&[200, 250, 251, 252, 253]);
        let p = common_prefix(&old, &new);
        assert_eq!(p, 2 + 40 + 2);
        let run = find_run(&old, &new, p, new.len() - 1, sep).unwrap();
        assert_eq!(
            run,
            Run {
                at: 2 + 40 + 1 + 5,
                from: 2 + 40 + 1 + 3,
                len: 1 + 40 + 2
            }
        );
        // A run too short to be worth moving.
        assert_eq!(find_run(&old, &new, p, new.len() - 30, sep), None);
    }
}
