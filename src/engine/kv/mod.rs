//! The KV cache, as the engine sees it: a [`KvSeq`] is one llama.cpp context together with the
//! tokens whose keys and values it holds. The target model and the draft model each have one;
//! everything that changes the cache (evaluating, truncating, aligning to a new prompt, moving a
//! run of chunks, loading and saving snapshots) is a method here, so `cached` can never drift
//! from what llama.cpp holds.
//!
//! `shift.rs`: reuse of a changed prompt (common prefix, plus one run of later chunks moved to new
//! positions). `snapshot.rs`: prefixes saved to and loaded from the [`store`] on disk.

mod shift;
mod snapshot;
pub mod store;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::token::LlamaToken;

pub(super) use snapshot::Store;

/// Prompt tokens per decode call: small enough to notice a cancel quickly, large enough to stay
/// within a few percent of full-batch speed on CPU.
pub(super) const PROMPT_CHUNK: usize = 64;

/// One context's KV cache and the tokens in it (sequence 0, positions `0..cached.len()`).
pub(super) struct KvSeq<'m> {
    pub ctx: LlamaContext<'m>,
    batch: LlamaBatch<'static>,
    cached: Vec<LlamaToken>,
}

impl<'m> KvSeq<'m> {
    pub fn new(ctx: LlamaContext<'m>) -> Self {
        KvSeq {
            ctx,
            batch: LlamaBatch::new(512, 1),
            cached: Vec::new(),
        }
    }

    /// The tokens in the cache, in position order.
    pub fn cached(&self) -> &[LlamaToken] {
        &self.cached
    }

    /// Forgets the KV cache (after a failure its state is unknown).
    pub fn reset(&mut self) {
        self.ctx.clear_kv_cache();
        self.cached.clear();
    }

    /// Decodes `tokens` at the positions after the cache (logits where `logits(i)`), then records
    /// them as cached. A failed decode leaves the cache in an unknown state, so it is cleared.
    pub fn eval_rows(
        &mut self,
        tokens: &[LlamaToken],
        logits: impl Fn(usize) -> bool,
    ) -> Result<(), String> {
        self.batch.clear();
        let start = self.cached.len();
        for (i, t) in tokens.iter().enumerate() {
            self.batch
                .add(*t, (start + i) as i32, &[0], logits(i))
                .map_err(|e| e.to_string())?;
        }
        if let Err(e) = self.ctx.decode(&mut self.batch) {
            self.reset();
            return Err(e.to_string());
        }
        self.cached.extend_from_slice(tokens);
        Ok(())
    }

    /// Logits of row `row` of the last batch (its flag must have been on).
    pub fn logits(&self, row: i32) -> &[f32] {
        self.ctx.get_logits_ith(row)
    }

    /// The last row of the last batch.
    pub fn last_row(&self) -> i32 {
        self.batch.n_tokens() - 1
    }

    /// Drops KV entries from position `n` on.
    pub fn truncate(&mut self, n: usize) {
        if n < self.cached.len() {
            if self.ctx.kv_cache_seq_rm(0, Some(n as u32), None).is_err() {
                self.reset();
                return;
            }
            self.cached.truncate(n);
        }
    }

    /// Keeps the common prefix with `context`, at most `keep` tokens of it.
    pub fn align(&mut self, context: &[LlamaToken], keep: usize) {
        self.truncate(common_prefix(&self.cached, context).min(keep));
    }

    /// Tokens of `context` this cache would have to evaluate to hold all of it.
    pub fn lag(&self, context: &[LlamaToken]) -> usize {
        context.len() - common_prefix(&self.cached, context)
    }
}

/// Length of the longest common prefix of two token lists.
pub(super) fn common_prefix(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

pub(super) fn as_ids(tokens: &[LlamaToken]) -> Vec<i32> {
    tokens.iter().map(|t| t.0).collect()
}
