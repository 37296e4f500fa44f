//! Fill-in-the-middle prompts in Qwen2.5-Coder's repo-level layout.
//!
//! ```text
//! <|repo_name|>{repo}\n
//! <|file_sep|>{path}\n{content}\n          (context files, most stable first)
//! <|file_sep|>{path}\n<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>{typed}
//! ```
//!
//! The text between the *anchor* (the start of the line where the user began typing) and the cursor
//! goes after `<|fim_middle|>`, as if the model had written it. While the user types forward, prefix
//! and suffix stay byte-identical, so each keystroke only appends tokens and the engine reuses the
//! whole KV cache before them. The in-file prefix starts at a line that moves in steps of
//! [`PREFIX_QUANTUM`] lines rather than sliding with the cursor, for the same reason.
//!
//! Architecture Invariant: pure text in, [`Prompt`] out. No tokens, no model, no LSP.

use std::hash::{Hash, Hasher};

use ropey::Rope;

use crate::stop::StopRules;

/// A rough ratio for budgeting without a tokenizer; code averages about 3 to 4 chars per token.
pub const CHARS_PER_TOKEN: usize = 3;
/// The in-file prefix starts on a multiple of this many lines.
pub const PREFIX_QUANTUM: usize = 16;

/// One part of a prompt. The engine maps the structural parts onto the model's special tokens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Piece {
    /// Repo header (`<|repo_name|>name\n`); dropped for models without repo-level tokens.
    RepoName(String),
    /// A context file (`<|file_sep|>path\ncontent\n`); dropped for models without repo-level tokens.
    File {
        path: String,
        content: String,
    },
    /// The current file's header (`<|file_sep|>path\n`).
    CurrentFile(String),
    FimPrefix,
    FimSuffix,
    FimMiddle,
    /// Plain text, tokenized as text: special-token spellings inside it stay plain text.
    Text(String),
}

/// A prompt as a list of pieces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prompt {
    pub pieces: Vec<Piece>,
}

impl Prompt {
    /// The prompt as Qwen2.5-Coder reads it (for tests, logs and debugging).
    pub fn render_qwen(&self) -> String {
        let mut s = String::new();
        for p in &self.pieces {
            match p {
                Piece::RepoName(n) => s += &format!("<|repo_name|>{n}\n"),
                Piece::File { path, content } => s += &format!("<|file_sep|>{path}\n{content}\n"),
                Piece::CurrentFile(path) => s += &format!("<|file_sep|>{path}\n"),
                Piece::FimPrefix => s += "<|fim_prefix|>",
                Piece::FimSuffix => s += "<|fim_suffix|>",
                Piece::FimMiddle => s += "<|fim_middle|>",
                Piece::Text(t) => s += t,
            }
        }
        s
    }
}

/// Size limits of the in-file parts of the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub prefix_tokens: usize,
    pub suffix_tokens: usize,
    /// How many lines the user may type past the anchor before it moves.
    pub middle_lines: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            prefix_tokens: 512,
            suffix_tokens: 96,
            middle_lines: 12,
        }
    }
}

/// A cross-file context chunk (from the repo-context selection).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContextFile {
    pub path: String,
    pub content: String,
}

/// Where the last prompt for a document split prefix and typed text; kept between requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    pub line: usize,
    pub start_line: usize,
    key: u64,
}

/// The file being completed.
#[derive(Debug, Clone, Copy)]
pub struct FileView<'a> {
    pub rope: &'a Rope,
    /// Cursor as a char offset.
    pub cursor: usize,
    pub path: &'a str,
    pub repo: &'a str,
}

/// A prompt plus what the completer keeps and needs with it.
#[derive(Debug, Clone)]
pub struct Plan {
    pub prompt: Prompt,
    pub anchor: Anchor,
    pub stop: StopRules,
    /// True when the previous anchor was kept (typing forward).
    pub anchor_reused: bool,
}

fn key_of(parts: &[&str], context: &[ContextFile]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    parts.hash(&mut h);
    context.hash(&mut h);
    h.finish()
}

/// Last `max` chars of `s` (at a char boundary).
fn tail_chars(s: String, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        s
    } else {
        s.chars().skip(n - max).collect()
    }
}

/// First line of the prefix window for an anchor on `line`: as early as the budget allows,
/// rounded up to a multiple of [`PREFIX_QUANTUM`] so it stays put while the cursor moves.
fn prefix_start(rope: &Rope, line: usize, budget_chars: usize) -> usize {
    let mut used = 0usize;
    let mut start = line;
    while start > 0 {
        let len = rope.line(start - 1).len_chars();
        if used + len > budget_chars {
            break;
        }
        used += len;
        start -= 1;
    }
    if start == 0 {
        return 0;
    }
    start
        .div_ceil(PREFIX_QUANTUM)
        .saturating_mul(PREFIX_QUANTUM)
        .min(line)
}

/// Builds the prompt for the cursor in `view`, keeping `prev`'s anchor when the user typed forward.
pub fn plan(
    view: &FileView,
    budget: &Budget,
    context: &[ContextFile],
    prev: Option<&Anchor>,
) -> Plan {
    let rope = view.rope;
    let cursor = view.cursor.min(rope.len_chars());
    let line = rope.char_to_line(cursor);
    let line_start = rope.line_to_char(line);
    let prefix_chars = budget.prefix_tokens * CHARS_PER_TOKEN;
    let suffix_chars = budget.suffix_tokens * CHARS_PER_TOKEN;

    // Suffix: rest of the cursor line, then whole lines while they fit.
    let line_end = line_start + rope.line(line).len_chars();
    let mut suffix_end = line_end;
    let mut l = line + 1;
    while l < rope.len_lines() {
        let len = rope.line(l).len_chars();
        if suffix_end - cursor + len > suffix_chars {
            break;
        }
        suffix_end += len;
        l += 1;
    }
    let mut suffix = rope.slice(cursor..suffix_end).to_string();
    if suffix.chars().count() > suffix_chars {
        suffix = suffix.chars().take(suffix_chars).collect();
    }

    let make = |anchor_line: usize, start_line: usize| {
        let anchor_char = rope.line_to_char(anchor_line);
        let prefix = tail_chars(
            rope.slice(rope.line_to_char(start_line)..anchor_char)
                .to_string(),
            prefix_chars,
        );
        let middle = rope.slice(anchor_char..cursor).to_string();
        let key = key_of(&[view.path, view.repo, &prefix, &suffix], context);
        (prefix, middle, key)
    };

    let mut reused = None;
    if let Some(a) = prev {
        if a.line <= line && line - a.line <= budget.middle_lines && a.start_line <= a.line {
            let (prefix, middle, key) = make(a.line, a.start_line);
            if key == a.key && middle.chars().count() <= prefix_chars {
                reused = Some((*a, prefix, middle));
            }
        }
    }
    let anchor_reused = reused.is_some();
    let (anchor, prefix, middle) = reused.unwrap_or_else(|| {
        let start_line = prefix_start(rope, line, prefix_chars);
        let (prefix, middle, key) = make(line, start_line);
        (
            Anchor {
                line,
                start_line,
                key,
            },
            prefix,
            middle,
        )
    });

    let mut pieces = repo_prefix(view.repo, context, view.path).pieces;
    pieces.extend([
        Piece::FimPrefix,
        Piece::Text(prefix),
        Piece::FimSuffix,
        Piece::Text(suffix),
        Piece::FimMiddle,
        Piece::Text(middle),
    ]);

    let cursor_line = rope.line(line).to_string();
    let split = cursor - line_start;
    let before: String = cursor_line.chars().take(split).collect();
    let after: String = cursor_line.chars().skip(split).collect();
    let prev_lines: Vec<String> = (line.saturating_sub(50)..line)
        .rev()
        .map(|i| rope.line(i).to_string())
        .collect();
    let next_lines: Vec<String> = (line + 1..rope.len_lines().min(line + 12))
        .map(|i| rope.line(i).to_string())
        .collect();
    let stop = StopRules::from_context(
        &before,
        &after,
        prev_lines.iter().map(String::as_str),
        next_lines.iter().map(String::as_str),
    );
    Plan {
        prompt: Prompt { pieces },
        anchor,
        stop,
        anchor_reused,
    }
}

/// The repo-context part every prompt for `path` starts with (repo name, context chunks, the
/// current file's header): what the engine evaluates ahead of time and snapshots.
pub fn repo_prefix(repo: &str, context: &[ContextFile], path: &str) -> Prompt {
    let mut pieces = vec![Piece::RepoName(repo.to_string())];
    pieces.extend(context.iter().map(|c| Piece::File {
        path: c.path.clone(),
        content: c.content.clone(),
    }));
    pieces.push(Piece::CurrentFile(path.to_string()));
    Prompt { pieces }
}

/// Splits fixture text at its `$0` marker: (text without the marker, char offset of the cursor).
pub fn split_cursor(fixture: &str) -> (String, usize) {
    let byte = fixture.find("$0").expect("fixture has a $0 cursor");
    let text = format!("{}{}", &fixture[..byte], &fixture[byte + 2..]);
    (text, fixture[..byte].chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_fixture(fixture: &str, budget: Budget, prev: Option<&Anchor>) -> Plan {
        let (text, cursor) = split_cursor(fixture);
        let rope = Rope::from_str(&text);
        let view = FileView {
            rope: &rope,
            cursor,
            path: "src/lib.py",
            repo: "demo",
        };
        plan(&view, &budget, &[], prev)
    }

    #[test]
    fn qwen_layout_with_typed_text_after_middle() {
        let p = plan_fixture(
            "def add(a, b):\n    ret$0\n\nprint(add(1, 2))\n",
            Budget::default(),
            None,
        );
        assert_eq!(
            p.prompt.render_qwen(),
            "<|repo_name|>demo\n<|file_sep|>src/lib.py\n<|fim_prefix|>def add(a, b):\n\
             <|fim_suffix|>\n\nprint(add(1, 2))\n<|fim_middle|>    ret"
        );
        assert!(p.stop.single_line);
    }

    #[test]
    fn typing_forward_only_appends() {
        let budget = Budget::default();
        let first = plan_fixture("x = 1\ndef f():\n    $0\ny = 2\n", budget, None);
        let second = plan_fixture(
            "x = 1\ndef f():\n    re$0\ny = 2\n",
            budget,
            Some(&first.anchor),
        );
        let third = plan_fixture(
            "x = 1\ndef f():\n    return 1\n    $0\ny = 2\n",
            budget,
            Some(&second.anchor),
        );
        assert!(second.anchor_reused && third.anchor_reused);
        let (a, b, c) = (
            first.prompt.render_qwen(),
            second.prompt.render_qwen(),
            third.prompt.render_qwen(),
        );
        assert!(b.starts_with(&a), "{a:?} / {b:?}");
        assert!(c.starts_with(&b), "{b:?} / {c:?}");
        assert!(c.ends_with("<|fim_middle|>    return 1\n    "));
    }

    #[test]
    fn editing_elsewhere_moves_the_anchor() {
        let budget = Budget::default();
        let first = plan_fixture("a = 1\nb = $0\n", budget, None);
        // The user went back and changed the first line.
        let second = plan_fixture("a = 10\nb = $0\n", budget, Some(&first.anchor));
        assert!(!second.anchor_reused);
        // Moving up re-anchors too.
        let third = plan_fixture("a = 1$0\nb = \n", budget, Some(&first.anchor));
        assert!(!third.anchor_reused);
    }

    #[test]
    fn prefix_window_is_quantized() {
        let text: String = (0..200).map(|i| format!("line_{i:03} = {i}\n")).collect();
        let budget = Budget {
            prefix_tokens: 100,
            suffix_tokens: 10,
            middle_lines: 4,
        };
        let starts: Vec<usize> = (120..126)
            .map(|l| {
                let rope = Rope::from_str(&text);
                let cursor = rope.line_to_char(l);
                let view = FileView {
                    rope: &rope,
                    cursor,
                    path: "a.py",
                    repo: "r",
                };
                plan(&view, &budget, &[], None).anchor.start_line
            })
            .collect();
        assert!(starts.iter().all(|s| s % PREFIX_QUANTUM == 0), "{starts:?}");
        assert!(
            starts.windows(2).filter(|w| w[0] != w[1]).count() <= 1,
            "{starts:?}"
        );
    }

    #[test]
    fn huge_file_fits_budget() {
        let text = "x".repeat(100_000) + "\n$0\n" + &"y".repeat(100_000);
        let p = plan_fixture(&text, Budget::default(), None);
        let len = p.prompt.render_qwen().len();
        assert!(len < (512 + 96) * CHARS_PER_TOKEN + 200, "{len}");
    }

    #[test]
    fn empty_file() {
        let p = plan_fixture("$0", Budget::default(), None);
        assert!(
            p.prompt
                .render_qwen()
                .ends_with("<|fim_prefix|><|fim_suffix|><|fim_middle|>")
        );
    }
}
