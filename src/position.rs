//! Conversions between line/column positions and rope offsets.
//!
//! This is the one place that knows about UTF-16 code units. Editors speak LSP positions (line plus a
//! column in UTF-16 units by default, or UTF-8 bytes when negotiated); the rest of inkling works in
//! `char` offsets into a `ropey::Rope`.
//!
//! Architecture Invariant: positions out of range are clamped, never a panic, and the caller learns
//! that clamping happened through [`Clamped`].

use ropey::Rope;

/// How a column counts characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// UTF-16 code units (the LSP default).
    #[default]
    Utf16,
    /// UTF-8 bytes.
    Utf8,
}

/// A char offset and whether the requested position had to be moved to fit the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clamped {
    pub char_idx: usize,
    pub clamped: bool,
}

/// Number of lines as editors count them (a trailing newline starts an empty last line).
pub fn line_count(rope: &Rope) -> usize {
    rope.len_lines()
}

/// The chars of `line` without its line terminator.
fn line_content_len(rope: &Rope, line: usize) -> usize {
    let slice = rope.line(line);
    let mut len = slice.len_chars();
    // Strip "\n", "\r\n" or a lone "\r".
    if len > 0 && slice.char(len - 1) == '\n' {
        len -= 1;
    }
    if len > 0 && slice.char(len - 1) == '\r' {
        len -= 1;
    }
    len
}

/// Converts (line, column) to a char offset, clamping past-the-end lines and columns.
/// A column that lands inside a UTF-16 surrogate pair (or inside a UTF-8 sequence) is moved
/// back to the start of that character.
pub fn to_char(rope: &Rope, line: usize, column: usize, enc: Encoding) -> Clamped {
    let lines = rope.len_lines();
    if line >= lines {
        return Clamped {
            char_idx: rope.len_chars(),
            clamped: !(line == lines && column == 0),
        };
    }
    let start = rope.line_to_char(line);
    let end = start + line_content_len(rope, line);
    // Offsets in code units through ropey's indexes, O(log n): scanning the line from its start
    // made every position on a long line cost its length (one message of 20,000 edits on one
    // line took seconds).
    let units = |c: usize| match enc {
        Encoding::Utf16 => rope.char_to_utf16_cu(c),
        Encoding::Utf8 => rope.char_to_byte(c),
    };
    let (line_units, end_units) = (units(start), units(end));
    let target = line_units.saturating_add(column);
    if target >= end_units {
        return Clamped {
            char_idx: end,
            clamped: target != end_units,
        };
    }
    // The char that holds the target unit; inside a multi-unit character that is its start.
    let char_idx = match enc {
        Encoding::Utf16 => rope.utf16_cu_to_char(target),
        Encoding::Utf8 => rope.byte_to_char(target),
    };
    Clamped {
        char_idx,
        clamped: units(char_idx) != target,
    }
}

/// Converts a char offset to (line, column) in the given encoding. Offsets past the end clamp.
pub fn from_char(rope: &Rope, char_idx: usize, enc: Encoding) -> (usize, usize) {
    let char_idx = char_idx.min(rope.len_chars());
    let line = rope.char_to_line(char_idx);
    let start = rope.line_to_char(line);
    let col = match enc {
        Encoding::Utf16 => rope.char_to_utf16_cu(char_idx) - rope.char_to_utf16_cu(start),
        Encoding::Utf8 => rope.char_to_byte(char_idx) - rope.char_to_byte(start),
    };
    (line, col)
}

/// UTF-16 code units in `s`: the width of a column count in the LSP default encoding.
pub fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// The width of `s` in columns of the given encoding.
pub fn width(s: &str, enc: Encoding) -> usize {
    match enc {
        Encoding::Utf16 => utf16_len(s),
        Encoding::Utf8 => s.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_round_trip() {
        let r = Rope::from_str("ab\ncd\n");
        assert_eq!(to_char(&r, 1, 1, Encoding::Utf16).char_idx, 4);
        assert_eq!(from_char(&r, 4, Encoding::Utf16), (1, 1));
    }

    #[test]
    fn surrogate_pairs() {
        // U+1F600 is two UTF-16 units and four UTF-8 bytes.
        let r = Rope::from_str("a😀b");
        assert_eq!(to_char(&r, 0, 3, Encoding::Utf16).char_idx, 2);
        let inside = to_char(&r, 0, 2, Encoding::Utf16);
        assert_eq!(
            inside,
            Clamped {
                char_idx: 1,
                clamped: true
            }
        );
        assert_eq!(to_char(&r, 0, 5, Encoding::Utf8).char_idx, 2);
        assert_eq!(from_char(&r, 2, Encoding::Utf16), (0, 3));
        assert_eq!(from_char(&r, 2, Encoding::Utf8), (0, 5));
    }

    #[test]
    fn clamps_past_end() {
        let r = Rope::from_str("ab\r\ncd");
        let c = to_char(&r, 0, 10, Encoding::Utf16);
        assert_eq!(
            c,
            Clamped {
                char_idx: 2,
                clamped: true
            }
        );
        let c = to_char(&r, 7, 0, Encoding::Utf16);
        assert_eq!(
            c,
            Clamped {
                char_idx: 6,
                clamped: true
            }
        );
        assert_eq!(from_char(&r, 99, Encoding::Utf16), (1, 2));
    }

    #[test]
    fn widths() {
        // U+1F600: two UTF-16 units, four UTF-8 bytes; "é": one unit, two bytes.
        assert_eq!(utf16_len("a😀é"), 4);
        assert_eq!(width("a😀é", Encoding::Utf16), 4);
        assert_eq!(width("a😀é", Encoding::Utf8), 7);
        assert_eq!(utf16_len(""), 0);
    }
}
