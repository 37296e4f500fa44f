//! Fill-in-the-middle special tokens, found in the model's own vocabulary.
//!
//! Pure: detection works on a token-text lookup so that it is testable with plain vocab lists.
//! Families: Qwen2.5-Coder (and CodeGemma's `<|fim_*|>` spelling), StarCoder/StarCoder2, CodeLlama,
//! DeepSeek-Coder.

use std::collections::HashMap;

/// Which spelling of FIM tokens the model uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FimFamily {
    Qwen,
    StarCoder,
    CodeLlama,
    DeepSeek,
}

/// Token ids a FIM prompt needs, plus the ids that end a suggestion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FimTokens {
    pub family: FimFamily,
    pub prefix: i32,
    pub suffix: i32,
    pub middle: i32,
    /// Repo-level tokens, when the model was trained with them.
    pub repo_name: Option<i32>,
    pub file_sep: Option<i32>,
    /// Special tokens that end a suggestion (besides the vocabulary's end-of-generation tokens).
    pub stop: Vec<i32>,
}

struct Spelling {
    family: FimFamily,
    prefix: &'static [&'static str],
    suffix: &'static [&'static str],
    middle: &'static [&'static str],
    repo_name: &'static [&'static str],
    file_sep: &'static [&'static str],
    stop: &'static [&'static str],
}

const SPELLINGS: &[Spelling] = &[
    Spelling {
        family: FimFamily::Qwen,
        prefix: &["<|fim_prefix|>"],
        suffix: &["<|fim_suffix|>"],
        middle: &["<|fim_middle|>"],
        repo_name: &["<|repo_name|>"],
        file_sep: &["<|file_sep|>", "<|file_separator|>"],
        stop: &[
            "<|endoftext|>",
            "<|im_end|>",
            "<|fim_pad|>",
            "<|fim_prefix|>",
            "<|fim_suffix|>",
        ],
    },
    Spelling {
        family: FimFamily::StarCoder,
        prefix: &["<fim_prefix>", "<fim-prefix>"],
        suffix: &["<fim_suffix>", "<fim-suffix>"],
        middle: &["<fim_middle>", "<fim-middle>"],
        repo_name: &["<reponame>"],
        file_sep: &["<file_sep>"],
        stop: &[
            "<|endoftext|>",
            "<fim_pad>",
            "<fim_prefix>",
            "<fim_suffix>",
            "<filename>",
        ],
    },
    Spelling {
        family: FimFamily::CodeLlama,
        prefix: &["▁<PRE>", "<PRE>"],
        suffix: &["▁<SUF>", "<SUF>"],
        middle: &["▁<MID>", "<MID>"],
        repo_name: &[],
        file_sep: &[],
        stop: &["▁<EOT>", "<EOT>"],
    },
    Spelling {
        family: FimFamily::DeepSeek,
        prefix: &["<｜fim▁begin｜>", "<|fim▁begin|>"],
        suffix: &["<｜fim▁hole｜>", "<|fim▁hole|>"],
        middle: &["<｜fim▁end｜>", "<|fim▁end|>"],
        repo_name: &[],
        file_sep: &[],
        stop: &["<|EOT|>", "<｜end▁of▁sentence｜>"],
    },
];

/// The model has no FIM tokens we know.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "model {model} has no fill-in-the-middle tokens (looked for the Qwen, StarCoder, CodeLlama and \
     DeepSeek-Coder spellings); inkling needs a FIM-trained code model"
)]
pub struct NoFimTokens {
    pub model: String,
}

/// Finds the FIM tokens in a vocabulary given as (id, text) pairs.
/// Only texts that look like special tokens matter, so callers may pre-filter.
pub fn detect<'a>(
    vocab: impl IntoIterator<Item = (i32, &'a str)>,
    model_name: &str,
) -> Result<FimTokens, NoFimTokens> {
    let map: HashMap<&str, i32> = vocab
        .into_iter()
        .filter(|(_, t)| t.contains('<'))
        .map(|(id, t)| (t, id))
        .collect();
    let find = |names: &[&str]| names.iter().find_map(|n| map.get(n).copied());
    for s in SPELLINGS {
        let (Some(prefix), Some(suffix), Some(middle)) =
            (find(s.prefix), find(s.suffix), find(s.middle))
        else {
            continue;
        };
        let repo_name = find(s.repo_name);
        let file_sep = find(s.file_sep);
        let mut stop: Vec<i32> = s.stop.iter().filter_map(|n| map.get(n).copied()).collect();
        // Repo-level markers also end a suggestion: the model is starting another file.
        stop.extend(repo_name);
        stop.extend(file_sep);
        stop.sort_unstable();
        stop.dedup();
        return Ok(FimTokens {
            family: s.family,
            prefix,
            suffix,
            middle,
            repo_name,
            file_sep,
            stop,
        });
    }
    Err(NoFimTokens {
        model: model_name.to_string(),
    })
}

/// True for token texts worth keeping in a detection lookup (cheap pre-filter).
pub fn looks_special(text: &str) -> bool {
    text.len() < 32 && text.contains('<') && text.contains('>')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab(list: &[&'static str]) -> Vec<(i32, &'static str)> {
        // Plain words around the specials, as in a real vocabulary.
        let mut v: Vec<(i32, &str)> = vec![(0, "def"), (1, "<"), (2, "return")];
        v.extend(list.iter().enumerate().map(|(i, t)| (100 + i as i32, *t)));
        v
    }

    #[test]
    fn qwen() {
        let v = vocab(&[
            "<|endoftext|>",
            "<|im_end|>",
            "<|fim_prefix|>",
            "<|fim_middle|>",
            "<|fim_suffix|>",
            "<|fim_pad|>",
            "<|repo_name|>",
            "<|file_sep|>",
        ]);
        let t = detect(v, "q").unwrap();
        assert_eq!(t.family, FimFamily::Qwen);
        assert_eq!((t.prefix, t.suffix, t.middle), (102, 104, 103));
        assert_eq!((t.repo_name, t.file_sep), (Some(106), Some(107)));
        assert!(t.stop.contains(&100) && t.stop.contains(&107) && !t.stop.contains(&103));
    }

    #[test]
    fn starcoder() {
        let v = vocab(&[
            "<|endoftext|>",
            "<fim_prefix>",
            "<fim_middle>",
            "<fim_suffix>",
            "<fim_pad>",
            "<file_sep>",
        ]);
        let t = detect(v, "sc").unwrap();
        assert_eq!(t.family, FimFamily::StarCoder);
        assert_eq!((t.prefix, t.middle, t.suffix), (101, 102, 103));
        assert_eq!(t.file_sep, Some(105));
    }

    #[test]
    fn codellama() {
        let v = vocab(&["▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>"]);
        let t = detect(v, "cl").unwrap();
        assert_eq!(t.family, FimFamily::CodeLlama);
        assert_eq!(t.stop, vec![103]);
        assert_eq!(t.repo_name, None);
    }

    #[test]
    fn deepseek() {
        let v = vocab(&[
            "<｜fim▁begin｜>",
            "<｜fim▁hole｜>",
            "<｜fim▁end｜>",
            "<|EOT|>",
        ]);
        let t = detect(v, "ds").unwrap();
        assert_eq!(t.family, FimFamily::DeepSeek);
        assert_eq!((t.prefix, t.suffix, t.middle), (100, 101, 102));
    }

    #[test]
    fn refuses_model_without_fim() {
        let v = vocab(&["<|endoftext|>", "<|im_start|>", "<|im_end|>"]);
        let err = detect(v, "chat-only.gguf").unwrap_err();
        assert!(err.to_string().contains("chat-only.gguf"));
        // An incomplete set is not enough either.
        let v = vocab(&["<|fim_prefix|>", "<|fim_suffix|>"]);
        assert!(detect(v, "half").is_err());
    }
}
