//! The draft model's role: a smaller model with the same vocabulary that guesses the next tokens
//! for the target to verify. It keeps its own [`KvSeq`] over the same tokens as the target's, and
//! in idle time catches up with the target's cache one chunk at a time.

use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::token::LlamaToken;

use super::decode::Drafter;
use super::kv::{KvSeq, PROMPT_CHUNK};
use super::load::{backend, check_model_file};
use super::{CancelToken, EngineError, ModelInfo};

/// The draft model's context and cache.
pub(super) struct Draft<'m> {
    pub seq: KvSeq<'m>,
}

impl Draft<'_> {
    /// Greedy choice at the last row (ties go to the highest id).
    fn argmax(&self) -> LlamaToken {
        let logits = self.seq.logits(self.seq.last_row());
        let best = logits
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i);
        LlamaToken(best as i32)
    }

    fn eval(&mut self, tokens: &[LlamaToken]) -> Result<(), EngineError> {
        self.seq
            .eval_rows(tokens, |i| i + 1 == tokens.len())
            .map_err(|e| EngineError::Decode(format!("draft: {e}")))
    }

    /// Brings the draft's KV cache to `context` (all but its last token stay; the last is
    /// evaluated for fresh logits).
    fn sync(&mut self, context: &[LlamaToken], cancel: &CancelToken) -> Result<(), EngineError> {
        self.seq.align(context, context.len().saturating_sub(1));
        for chunk in context[self.seq.cached().len()..].chunks(PROMPT_CHUNK) {
            if cancel.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            self.eval(chunk)?;
        }
        Ok(())
    }

    /// Evaluates one chunk of `target` (the target's cached tokens) that the draft lacks; false
    /// when nothing was done.
    pub fn warm_chunk(&mut self, target: &[LlamaToken]) -> bool {
        self.seq.align(target, usize::MAX);
        let from = self.seq.cached().len();
        let end = (from + PROMPT_CHUNK).min(target.len());
        if end <= from {
            return false;
        }
        self.eval(&target[from..end]).is_ok()
    }
}

impl Drafter for Draft<'_> {
    fn lag(&self, context: &[LlamaToken]) -> usize {
        self.seq.lag(context)
    }

    fn propose(
        &mut self,
        context: &[LlamaToken],
        k: usize,
        cancel: &CancelToken,
    ) -> Result<Vec<LlamaToken>, EngineError> {
        if context.is_empty() || k == 0 {
            return Ok(Vec::new());
        }
        self.sync(context, cancel)?;
        let mut out = Vec::with_capacity(k);
        for i in 0..k {
            let t = self.argmax();
            out.push(t);
            if i + 1 < k {
                self.eval(&[t])?;
            }
        }
        Ok(out)
    }
}

/// Loads the draft model and checks that it reads tokens the same way as the target.
pub(super) fn load_draft(
    path: &std::path::Path,
    target: &LlamaModel,
    info: &ModelInfo,
) -> Result<LlamaModel, EngineError> {
    check_model_file(path)?;
    let params = LlamaModelParams::default();
    let draft = LlamaModel::load_from_file(backend()?, path, &params).map_err(|e| {
        EngineError::Load(format!("cannot load draft model {}: {e}", path.display()))
    })?;
    let (tv, dv) = (target.vocab(), draft.vocab());
    let same_size = target.n_vocab() == draft.n_vocab();
    let probe = (0..target.n_vocab().min(draft.n_vocab()))
        .step_by(97)
        .map(LlamaToken)
        .chain([
            LlamaToken(info.fim.prefix),
            LlamaToken(info.fim.suffix),
            LlamaToken(info.fim.middle),
        ]);
    let same_text = probe
        .into_iter()
        .all(|t| tv.token_to_piece(t, true, None) == dv.token_to_piece(t, true, None));
    if !(same_size && same_text) {
        return Err(EngineError::Load(format!(
            "draft model {} does not share the vocabulary of {} ({} vs {} tokens); speculation needs the same tokenizer",
            path.display(),
            info.name,
            draft.n_vocab(),
            target.n_vocab()
        )));
    }
    Ok(draft)
}
