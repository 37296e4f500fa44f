//! Documents as ropes, and the checks that keep bad input out.
//!
//! Architecture Invariant: edits arrive as char ranges; this module never sees LSP types or JSON.

use ropey::Rope;

/// Files above this size are refused by the command line (the server keeps them but does not
/// complete in them: see [`completable`]).
pub const MAX_FILE_BYTES: usize = 64 << 20;
/// Documents above this size get no completions.
pub const MAX_COMPLETION_BYTES: usize = 16 << 20;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TextError {
    #[error("not valid UTF-8 (first bad byte at offset {0})")]
    InvalidUtf8(usize),
    #[error("looks binary (NUL byte at offset {0})")]
    Binary(usize),
    #[error("too large ({0} bytes; the limit is {MAX_FILE_BYTES})")]
    TooLarge(usize),
}

/// Validates file bytes as completable text.
pub fn text_from_bytes(bytes: Vec<u8>) -> Result<String, TextError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(TextError::TooLarge(bytes.len()));
    }
    if let Some(i) = bytes.iter().position(|b| *b == 0) {
        return Err(TextError::Binary(i));
    }
    String::from_utf8(bytes).map_err(|e| TextError::InvalidUtf8(e.utf8_error().valid_up_to()))
}

/// Whether a document is worth completing in (not huge, not binary-looking).
pub fn completable(rope: &Rope) -> Result<(), TextError> {
    if rope.len_bytes() > MAX_COMPLETION_BYTES {
        return Err(TextError::TooLarge(rope.len_bytes()));
    }
    // A NUL in the first chunk is enough to call it binary; scanning 50 MB per keystroke is not.
    let head = rope.slice(..rope.len_chars().min(8192));
    if let Some(i) = head.chars().position(|c| c == '\0') {
        return Err(TextError::Binary(i));
    }
    Ok(())
}

/// An open buffer: text plus the editor's version.
#[derive(Debug, Clone)]
pub struct Document {
    pub rope: Rope,
    pub version: i32,
    pub language: String,
}

/// One text edit in char offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub start: usize,
    pub end: usize,
    pub text: String,
}

impl Document {
    pub fn new(text: &str, version: i32, language: &str) -> Self {
        Document {
            rope: Rope::from_str(text),
            version,
            language: language.to_string(),
        }
    }

    /// Applies one edit; the range must be valid (callers clamp with `position`).
    pub fn apply(&mut self, edit: &Edit) {
        let len = self.rope.len_chars();
        let start = edit.start.min(len);
        let end = edit.end.clamp(start, len);
        self.rope.remove(start..end);
        self.rope.insert(start, &edit.text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_bytes() {
        assert_eq!(text_from_bytes(b"ok\n".to_vec()), Ok("ok\n".into()));
        assert_eq!(
            text_from_bytes(b"a\xff".to_vec()),
            Err(TextError::InvalidUtf8(1))
        );
        assert_eq!(text_from_bytes(b"ab\0".to_vec()), Err(TextError::Binary(2)));
    }

    #[test]
    fn edits_apply_in_chars() {
        let mut d = Document::new("héllo", 1, "text");
        d.apply(&Edit {
            start: 1,
            end: 2,
            text: "e".into(),
        });
        assert_eq!(d.rope.to_string(), "hello");
        d.apply(&Edit {
            start: 99,
            end: 120,
            text: "!".into(),
        });
        assert_eq!(d.rope.to_string(), "hello!");
    }
}
