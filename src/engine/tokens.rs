//! Tokens: prompts ([`Piece`]s) to token ids in the model's FIM layout, and the per-token facts the
//! decode loop needs (bytes for token healing and output, which tokens end a suggestion), read
//! from the vocabulary once at load so that decoding itself never asks the model.

use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

use super::fim::FimTokens;
use crate::prompt::Piece;

/// What the decode loop knows about every token of the vocabulary.
#[derive(Debug, Clone, Default)]
pub(super) struct TokenTable {
    /// Each token's bytes (a few MB for a 150k vocabulary).
    pub pieces: Vec<Vec<u8>>,
    /// Tokens that end a suggestion: end-of-generation and the FIM/repo special tokens.
    pub stops: Vec<bool>,
}

impl TokenTable {
    pub fn of(model: &LlamaModel, fim: &FimTokens) -> Self {
        let vocab = model.vocab();
        let mut pieces = Vec::new();
        let mut stops = Vec::new();
        for t in vocab.tokens() {
            pieces.push(vocab.token_to_piece(t, false, None));
            stops.push(vocab.is_eog(t) || fim.stop.contains(&t.0));
        }
        TokenTable { pieces, stops }
    }

    pub fn is_stop(&self, t: LlamaToken) -> bool {
        usize::try_from(t.0)
            .ok()
            .and_then(|i| self.stops.get(i))
            .copied()
            .unwrap_or(false)
    }

    /// A token's bytes; empty for an id outside the vocabulary.
    pub fn piece(&self, t: LlamaToken) -> &[u8] {
        usize::try_from(t.0)
            .ok()
            .and_then(|i| self.pieces.get(i))
            .map_or(&[][..], Vec::as_slice)
    }
}

/// Tokens of the prompt, and how many of them the final piece produced.
pub(super) fn tokenize(
    model: &LlamaModel,
    fim: &FimTokens,
    pieces: &[Piece],
) -> (Vec<LlamaToken>, usize) {
    let vocab = model.vocab();
    let text = |s: &str| vocab.tokenize(s.as_bytes(), false, false);
    let mut out = Vec::new();
    if vocab.should_add_bos() {
        out.push(vocab.bos());
    }
    let repo_level = fim.repo_name.is_some() && fim.file_sep.is_some();
    let mut last_len = 0;
    for p in pieces {
        let before = out.len();
        match p {
            Piece::RepoName(name) if repo_level => {
                out.push(LlamaToken(fim.repo_name.unwrap_or_default()));
                out.extend(text(&format!("{name}\n")));
            }
            Piece::File { path, content } if repo_level => {
                out.push(LlamaToken(fim.file_sep.unwrap_or_default()));
                out.extend(text(&format!("{path}\n{content}\n")));
            }
            Piece::CurrentFile(path) if repo_level => {
                out.push(LlamaToken(fim.file_sep.unwrap_or_default()));
                out.extend(text(&format!("{path}\n")));
            }
            Piece::RepoName(_) | Piece::File { .. } | Piece::CurrentFile(_) => {}
            Piece::FimPrefix => out.push(LlamaToken(fim.prefix)),
            Piece::FimSuffix => out.push(LlamaToken(fim.suffix)),
            Piece::FimMiddle => out.push(LlamaToken(fim.middle)),
            Piece::Text(t) => out.extend(text(t)),
        }
        last_len = out.len() - before;
    }
    (out, last_len)
}

/// Text of the valid UTF-8 in `bytes`; an incomplete character at the end waits for more bytes,
/// invalid bytes become U+FFFD.
pub(crate) fn utf8_prefix(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                return out;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(good).unwrap_or_default());
                match e.error_len() {
                    Some(n) => {
                        out.push('\u{FFFD}');
                        rest = &bad[n..];
                    }
                    None => return out,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::utf8_prefix;

    #[test]
    fn utf8_waits_for_whole_characters() {
        let s = "é😀".as_bytes();
        assert_eq!(utf8_prefix(&s[..1]), "");
        assert_eq!(utf8_prefix(&s[..2]), "é");
        assert_eq!(utf8_prefix(&s[..5]), "é");
        assert_eq!(utf8_prefix(s), "é😀");
        assert_eq!(utf8_prefix(b"a\xffb"), "a\u{FFFD}b");
    }
}
