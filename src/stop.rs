//! Stop rules: where a suggestion ends, decided from text alone.
//!
//! Pure and model-free. The engine calls [`StopRules::check`] after every decoded token so that a
//! suggestion stops as soon as it has said enough, and [`StopRules::finish`] once at the end to trim
//! what the editor would not want (trailing blank lines, lines that repeat the code after the cursor,
//! closing characters that already follow the cursor).
//!
//! Architecture Invariant: no knowledge of tokens, models or LSP; input is the text around the cursor.

/// Characters that open a block when they end a line.
const OPENERS: &[char] = &['{', '(', '[', ':'];
/// Characters that close a block when they start a line.
const CLOSERS: &[char] = &['}', ')', ']'];

/// What the cursor's surroundings say about how a suggestion should end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StopRules {
    /// Later lines of a suggestion must be indented at least this much (columns); a line indented
    /// less ends the suggestion, before that line.
    pub min_indent: usize,
    /// The cursor is inside a block it just opened: one closing line at this indentation ends the
    /// block and is kept.
    pub closer_indent: Option<usize>,
    /// Stop at the first newline.
    pub single_line: bool,
    /// Text after the cursor on the cursor line.
    pub line_rest: String,
    /// The first non-blank lines after the cursor line.
    pub next_lines: Vec<String>,
    pub tab_width: usize,
}

/// Width of the leading whitespace of `line`, tabs counted as `tab` columns.
pub fn indent_width(line: &str, tab: usize) -> usize {
    line.chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .map(|c| if c == '\t' { tab } else { 1 })
        .sum()
}

impl StopRules {
    /// Builds the rules from the cursor line split at the cursor, and the lines before and after it.
    pub fn from_context<'a>(
        line_before: &str,
        line_after: &str,
        previous_lines: impl Iterator<Item = &'a str>,
        following_lines: impl Iterator<Item = &'a str>,
    ) -> Self {
        let tab_width = 4;
        let before = line_before.trim_end();
        let (min_indent, closer_indent) = if !before.trim().is_empty() {
            let own = indent_width(line_before, tab_width);
            if before.ends_with(OPENERS) {
                // Right after a block opener: the body is deeper than this line.
                (own + 1, Some(own))
            } else {
                (own, None)
            }
        } else {
            // A blank cursor line: the cursor's column is the body's indentation, and the previous
            // non-blank line says whether a block was just opened.
            let col = indent_width(line_before, tab_width);
            match previous_lines
                .map(str::trim_end)
                .find(|l| !l.trim().is_empty())
            {
                Some(prev) if prev.ends_with(OPENERS) => {
                    let p = indent_width(prev, tab_width);
                    (col.max(p + 1), Some(p))
                }
                _ => (col, None),
            }
        };
        let line_rest = line_after.trim_end_matches(['\r', '\n']).to_string();
        let single_line = (!before.trim().is_empty() && !before.ends_with(OPENERS))
            || line_rest
                .trim()
                .chars()
                .any(|c| !CLOSERS.contains(&c) && c != ';' && c != ',');
        let next_lines = following_lines
            .map(|l| l.trim_end().to_string())
            .filter(|l| !l.trim().is_empty())
            .take(3)
            .collect();
        StopRules {
            min_indent,
            closer_indent,
            single_line,
            line_rest,
            next_lines,
            tab_width,
        }
    }

    /// Called as text streams in: `Some(n)` means keep the first `n` bytes and stop.
    pub fn check(&self, text: &str) -> Option<usize> {
        // Small models sometimes emit nothing but spaces; no code line starts that way.
        let current = text.rsplit('\n').next().unwrap_or(text);
        if current.len() > 32 && current.trim().is_empty() {
            return Some(text.len() - current.len());
        }
        if self.single_line {
            return text.find('\n');
        }
        let mut line_start = text.find('\n')? + 1;
        loop {
            let nl_before = line_start - 1;
            let rest = &text[line_start..];
            let (line, complete) = match rest.find('\n') {
                Some(i) => (&rest[..i], true),
                None => (rest, false),
            };
            let trimmed = line.trim_start();
            if !trimmed.is_empty() {
                if trimmed.starts_with("```") {
                    return Some(nl_before);
                }
                let indent = indent_width(line, self.tab_width);
                if indent < self.min_indent {
                    if self.closer_indent == Some(indent) && trimmed.starts_with(CLOSERS) {
                        // The block's own closing line: keep it, then stop.
                        return complete.then_some(line_start + line.len());
                    }
                    return Some(nl_before);
                }
                if complete
                    && self
                        .next_lines
                        .first()
                        .is_some_and(|n| n == line.trim_end())
                {
                    // The model is writing the code that already follows the cursor.
                    return Some(nl_before);
                }
            }
            if !complete {
                return None;
            }
            line_start += line.len() + 1;
        }
    }

    /// Final trim of a finished suggestion. May return an empty string: show nothing.
    pub fn finish(&self, text: &str) -> String {
        let mut out = text.trim_end().to_string();
        if out.trim().is_empty() {
            return String::new();
        }
        // Drop trailing lines that repeat the lines after the cursor.
        let lines: Vec<&str> = out.split('\n').collect();
        if !self.next_lines.is_empty() {
            for k in 1..lines.len() {
                let tail: Vec<&str> = lines[k..]
                    .iter()
                    .map(|l| l.trim_end())
                    .filter(|l| !l.trim().is_empty())
                    .collect();
                if !tail.is_empty()
                    && tail.len() <= self.next_lines.len()
                    && tail.iter().zip(&self.next_lines).all(|(a, b)| a == b)
                {
                    out = lines[..k].join("\n").trim_end().to_string();
                    break;
                }
            }
        }
        // Never repeat the closing characters that already follow the cursor on this line.
        let rest = self.line_rest.trim();
        if !out.contains('\n') && !rest.is_empty() {
            if let Some(stripped) = out.trim_end().strip_suffix(rest) {
                out = stripped.to_string();
            }
        }
        if out.trim().is_empty() {
            return String::new();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(before: &str, after: &str, prev: &[&str], next: &[&str]) -> StopRules {
        StopRules::from_context(
            before,
            after,
            prev.iter().rev().copied(),
            next.iter().copied(),
        )
    }

    fn run(r: &StopRules, text: &str) -> String {
        let cut = r.check(text).unwrap_or(text.len());
        r.finish(&text[..cut])
    }

    #[test]
    fn python_body_stops_at_dedent() {
        let r = rules("    ", "", &["def add(a, b):"], &[]);
        assert_eq!((r.min_indent, r.closer_indent), (4, Some(0)));
        let out = run(&r, "return a + b\n\nprint(add(1, 2))\n");
        assert_eq!(out, "return a + b");
    }

    #[test]
    fn markdown_fence_stops() {
        let r = rules("    ", "", &["def f():"], &[]);
        assert_eq!(run(&r, "return 1\n```\n\nIn this code"), "return 1");
    }

    #[test]
    fn brace_block_keeps_its_closer() {
        let r = rules("fn main() {", "", &[], &[]);
        let out = run(&r, "\n    println!(\"hi\");\n}\n\nfn other() {}\n");
        assert_eq!(out, "\n    println!(\"hi\");\n}");
    }

    #[test]
    fn single_line_after_code() {
        let r = rules("    let x = ", "", &[], &[]);
        assert!(r.single_line);
        assert_eq!(run(&r, "compute(1);\nlet y = 2;"), "compute(1);");
    }

    #[test]
    fn drops_repeated_following_lines() {
        let r = rules(
            "    ",
            "",
            &["    a = 1"],
            &["    return a", "", "def g():"],
        );
        assert_eq!(run(&r, "a += 1\n    return a\n"), "a += 1");
    }

    #[test]
    fn strips_duplicated_closers() {
        let r = rules("    print(", ")", &[], &[]);
        assert_eq!(run(&r, "\"hello\")"), "\"hello\"");
    }

    #[test]
    fn body_lines_keep_the_cursor_indentation() {
        let r = rules("        ", "", &["    for x in xs {"], &[]);
        let out = run(&r, "let a = 1;\n      let b = 2;\n");
        assert_eq!(out, "let a = 1;");
        let out = run(&r, "let a = 1;\n        let b = 2;\n    }\n    next();");
        assert_eq!(out, "let a = 1;\n        let b = 2;\n    }");
    }

    #[test]
    fn runaway_whitespace_stops() {
        let r = rules("    ", "", &["def f():"], &[]);
        assert_eq!(r.check(&" ".repeat(40)), Some(0));
        assert_eq!(r.check(&format!("x = 1\n{}", " ".repeat(40))), Some(6));
    }

    #[test]
    fn whitespace_only_is_empty() {
        let r = rules("", "", &[], &[]);
        assert_eq!(run(&r, "\n\n   \n"), "");
    }

    #[test]
    fn keeps_streaming_on_incomplete_lines() {
        let r = rules("fn main() {", "", &[], &[]);
        assert_eq!(r.check("\n    let"), None);
        assert_eq!(r.check("\n    let x = 1;\n}"), None);
    }
}
