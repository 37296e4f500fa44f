//! Prompt-lookup drafting: if the last few tokens appeared before in the context (prompt, suffix,
//! repo context, or what was generated), propose what followed them there. Costs no model.

/// Proposes continuations by n-gram match against the context.
#[derive(Debug, Clone)]
pub struct PromptLookup {
    pub max_ngram: usize,
    pub min_ngram: usize,
}

impl Default for PromptLookup {
    fn default() -> Self {
        PromptLookup {
            max_ngram: 4,
            min_ngram: 2,
        }
    }
}

impl PromptLookup {
    /// Up to `max` tokens that followed the most recent earlier occurrence of the longest n-gram
    /// ending the context (longest n first, then the latest match).
    pub fn propose(&self, context: &[i32], max: usize) -> Vec<i32> {
        if max == 0 {
            return Vec::new();
        }
        for n in (self.min_ngram..=self.max_ngram).rev() {
            if context.len() <= n {
                continue;
            }
            let tail = &context[context.len() - n..];
            // Search backwards, skipping the tail itself.
            for start in (0..context.len() - n).rev() {
                if &context[start..start + n] == tail {
                    let from = start + n;
                    let to = (from + max).min(context.len());
                    if from < to {
                        return context[from..to].to_vec();
                    }
                }
            }
        }
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_continuation_of_a_repeated_ngram() {
        let p = PromptLookup::default();
        // ... 1 2 3 4 5 ... 1 2 3 -> propose 4 5
        let ctx = [9, 1, 2, 3, 4, 5, 8, 8, 1, 2, 3];
        assert_eq!(p.propose(&ctx, 2), vec![4, 5]);
        assert_eq!(p.propose(&ctx, 10), vec![4, 5, 8, 8, 1, 2, 3]);
    }

    #[test]
    fn prefers_longer_and_later_matches() {
        let p = PromptLookup::default();
        let ctx = [1, 2, 7, 0, 2, 6, 1, 2];
        // "1 2" occurs at 0 (followed by 7); "2" alone is below min_ngram.
        assert_eq!(p.propose(&ctx, 1), vec![7]);
        let ctx = [1, 2, 7, 1, 2, 8, 1, 2];
        assert_eq!(p.propose(&ctx, 1), vec![8]);
    }

    #[test]
    fn nothing_without_a_match() {
        let p = PromptLookup::default();
        assert!(p.propose(&[1, 2, 3, 4], 4).is_empty());
        assert!(p.propose(&[], 4).is_empty());
        assert!(p.propose(&[1, 1, 1], 0).is_empty());
    }
}
