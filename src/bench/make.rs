//! Builds task and session sets from any repository: masks lines, spans and blocks, and records
//! typing sessions. Deterministic for a given seed.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::replay::Session;
use super::tasks::Task;
use crate::position;
use crate::workspace::Workspace;

/// A small deterministic generator (64-bit LCG); good enough to pick lines.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
}

/// Language name by file extension, for the extensions the task builder takes.
pub fn language_of(path: &Path) -> Option<&'static str> {
    Some(match path.extension()?.to_str()? {
        "rs" => "rust",
        "py" => "python",
        "js" | "mjs" => "javascript",
        "ts" => "typescript",
        "tsx" => "typescriptreact",
        "go" => "go",
        "c" | "h" => "c",
        "cc" | "cpp" | "hpp" => "cpp",
        "java" => "java",
        _ => return None,
    })
}

/// Source files under `dir`, respecting .gitignore and skipping hidden files, sorted.
pub fn source_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ignore::WalkBuilder::new(dir)
        .build()
        .filter_map(std::result::Result::ok)
        .filter(|e| e.file_type().is_some_and(|t| t.is_file()))
        .map(|e| e.into_path())
        .filter(|p| language_of(p).is_some())
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() < 200_000))
        .collect();
    files.sort();
    files
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn is_comment(t: &str) -> bool {
    t.starts_with("//")
        || t.starts_with('#')
        || t.starts_with("/*")
        || t.starts_with('*')
        || t.starts_with("\"\"\"")
}

/// Byte offset of the start of each line (and the end of the text).
fn line_starts(text: &str) -> Vec<usize> {
    let mut v = vec![0];
    v.extend(text.match_indices('\n').map(|(i, _)| i + 1));
    v
}

/// A file that holes are punched into.
struct Source<'a> {
    repo: &'a str,
    path: &'a str,
    lang: &'a str,
    text: &'a str,
}

impl Source<'_> {
    /// The task whose answer is `text[start..end]`, on 0-based line `line`.
    fn hole(&self, start: usize, end: usize, kind: &str, line: usize) -> Task {
        let (repo, path, text) = (self.repo, self.path, self.text);
        Task {
            id: format!("{repo}/{path}:{}:{kind}", line + 1),
            language: self.lang.to_string(),
            repo: Some(repo.to_string()),
            path: path.to_string(),
            prefix: text[..start].to_string(),
            suffix: text[end..].to_string(),
            expected: text[start..end].to_string(),
            kind: kind.to_string(),
            extra: Default::default(),
        }
    }
}

/// Blocks: a line ending in `{` or `:` followed by 2–10 deeper-indented lines; the hole is the body.
fn block_at(lines: &[&str], i: usize) -> Option<(usize, usize)> {
    let opener = lines[i].trim_end();
    if !(opener.ends_with('{') || opener.ends_with(':')) || is_comment(opener.trim_start()) {
        return None;
    }
    let base = indent(lines[i]);
    let mut j = i + 1;
    while j < lines.len() && (lines[j].trim().is_empty() || indent(lines[j]) > base) {
        j += 1;
    }
    // Trailing blank lines belong to what follows.
    while j > i + 1 && lines[j - 1].trim().is_empty() {
        j -= 1;
    }
    let n = j - (i + 1);
    (2..=10).contains(&n).then_some((i + 1, j))
}

/// Masks lines, spans and blocks in each file, `per_file` of each kind at most.
/// Names that many files define (trait methods and the like); using one says little about which
/// other file the answer depends on.
const COMMON_NAMES: &[&str] = &[
    "new",
    "default",
    "from",
    "into",
    "len",
    "clone",
    "fmt",
    "next",
    "drop",
    "deref",
    "eq",
    "cmp",
    "hash",
    "main",
    "init",
    "get",
    "set",
    "is_empty",
    "iter",
    "as_ref",
    "partial_cmp",
    "__init__",
    "__str__",
    "__repr__",
    "toString",
    "equals",
    "hashCode",
];

/// The identifiers in `text`.
fn identifiers(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| {
            w.chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
        })
}

/// For cross-file tasks: per file, the names defined in other files of the workspace and not in
/// this one (uncommon ones only).
fn foreign_names(
    dir: &Path,
) -> std::collections::HashMap<String, std::collections::HashSet<String>> {
    use std::collections::{HashMap, HashSet};
    let index = crate::context::WorkspaceIndex::build(dir);
    let mut defined_in: HashMap<&str, usize> = HashMap::new();
    for f in index.files.values() {
        for d in &f.definitions {
            *defined_in.entry(d.as_str()).or_default() += 1;
        }
    }
    index
        .files
        .values()
        .map(|f| {
            let own: HashSet<&str> = f.definitions.iter().map(String::as_str).collect();
            let foreign: HashSet<String> = defined_in
                .keys()
                .filter(|n| !own.contains(*n) && n.len() >= 4 && !COMMON_NAMES.contains(n))
                .map(|n| n.to_string())
                .collect();
            (f.path.clone(), foreign)
        })
        .collect()
}

/// Masks lines, spans and blocks in each file, `per_file` of each kind at most. With
/// `cross_file`, only holes whose answer uses a name defined in another file of the workspace.
pub fn make_tasks(
    dir: &Path,
    per_file: usize,
    limit: usize,
    seed: u64,
    cross_file: bool,
) -> Result<Vec<Task>> {
    let repo = Workspace::at(dir).name().to_string();
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    let foreign = if cross_file {
        foreign_names(dir)
    } else {
        Default::default()
    };
    let empty = std::collections::HashSet::new();
    for file in source_files(dir) {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let lang = language_of(&file).unwrap_or("text");
        let rel = file
            .strip_prefix(dir)
            .unwrap_or(&file)
            .to_string_lossy()
            .into_owned();
        let lines: Vec<&str> = text.split('\n').collect();
        if lines.len() < 20 {
            continue;
        }
        let starts = line_starts(&text);
        let source = Source {
            repo: &repo,
            path: &rel,
            lang,
            text: &text,
        };
        let names = foreign.get(&rel.replace('\\', "/")).unwrap_or(&empty);
        let uses_foreign = |t: &str| !cross_file || identifiers(t).any(|w| names.contains(w));
        let candidates: Vec<usize> = (5..lines.len() - 1)
            .filter(|&i| {
                let t = lines[i].trim();
                t.len() >= 12 && t.len() <= 100 && !is_comment(t) && uses_foreign(t)
            })
            .collect();
        for _ in 0..per_file {
            if candidates.is_empty() {
                break;
            }
            // Line: the rest of a line after its indentation.
            let i = candidates[rng.below(candidates.len())];
            let s = starts[i] + indent(lines[i]);
            let e = starts[i] + lines[i].trim_end().len();
            out.push(source.hole(s, e, "line", i));
            // Span: from a word boundary inside a line to the end of the line.
            let i = candidates[rng.below(candidates.len())];
            let content = lines[i].trim_end();
            let bounds: Vec<usize> = content
                .char_indices()
                .filter(|(b, c)| *b > indent(content) + 2 && !c.is_alphanumeric() && *c != '_')
                .map(|(b, _)| b)
                .filter(|b| content.len() - b >= 4 && uses_foreign(&content[*b..]))
                .collect();
            if !bounds.is_empty() {
                let b = bounds[rng.below(bounds.len())];
                out.push(source.hole(starts[i] + b, starts[i] + content.len(), "span", i));
            }
        }
        let blocks: Vec<(usize, usize)> = (3..lines.len())
            .filter_map(|i| block_at(&lines, i))
            .filter(|&(a, b)| uses_foreign(&lines[a..b].join("\n")))
            .collect();
        for _ in 0..per_file {
            if blocks.is_empty() {
                break;
            }
            let (a, b) = blocks[rng.below(blocks.len())];
            let s = starts[a] + indent(lines[a]);
            let e = starts[b - 1] + lines[b - 1].trim_end().len();
            out.push(source.hole(s, e, "block", a));
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out.dedup_by(|a, b| a.id == b.id);
    // Spread the limit over files instead of taking the first ones.
    if out.len() > limit {
        let step = out.len() as f64 / limit as f64;
        out = (0..limit)
            .map(|k| out[(k as f64 * step) as usize].clone())
            .collect();
    }
    Ok(out)
}

/// Typing sessions: one or two lines of a body, removed and then typed back.
pub fn make_sessions(dir: &Path, count: usize, seed: u64) -> Result<Vec<Session>> {
    let repo = Workspace::at(dir).name().to_string();
    let mut rng = Rng::new(seed ^ 0x5eed);
    let files = source_files(dir);
    let mut out = Vec::new();
    let mut tries = 0;
    while out.len() < count && tries < count * 50 && !files.is_empty() {
        tries += 1;
        let file = &files[rng.below(files.len())];
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        let lines: Vec<&str> = text.split('\n').collect();
        if lines.len() < 30 {
            continue;
        }
        let i = 10 + rng.below(lines.len() - 20);
        let take = 1 + rng.below(2);
        let chunk = &lines[i..i + take];
        if chunk.iter().any(|l| {
            let t = l.trim();
            t.len() < 8 || t.len() > 90 || is_comment(t)
        }) || indent(lines[i]) == 0
        {
            continue;
        }
        let starts = line_starts(&text);
        let s = starts[i] + indent(lines[i]);
        let e = starts[i + take - 1] + lines[i + take - 1].trim_end().len();
        let rel = file
            .strip_prefix(dir)
            .unwrap_or(file)
            .to_string_lossy()
            .into_owned();
        let text_before = format!("{}{}", &text[..s], &text[e..]);
        let character = position::utf16_len(&lines[i][..indent(lines[i])]) as u32;
        out.push(Session {
            id: format!("{repo}/{rel}:{}", i + 1),
            repo: Some(repo.clone()),
            path: rel,
            language: language_of(file).unwrap_or("text").to_string(),
            offset: text[..s].chars().count(),
            line: i as u32,
            character,
            typed: text[s..e].to_string(),
            text_before,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_reassemble_the_file() {
        let dir = std::env::temp_dir().join(format!("inkling-make-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src: String = (0..40)
            .map(|i| {
                if i % 8 == 0 {
                    format!("def f{i}(a, b):\n")
                } else {
                    format!("    value_{i} = compute(a, b) + {i}\n")
                }
            })
            .collect();
        std::fs::write(dir.join("m.py"), &src).unwrap();
        let tasks = make_tasks(&dir, 2, 100, 7, false).unwrap();
        assert!(tasks.iter().any(|t| t.kind == "line"));
        assert!(tasks.iter().any(|t| t.kind == "block"));
        for t in &tasks {
            assert_eq!(
                format!("{}{}{}", t.prefix, t.expected, t.suffix),
                src,
                "{}",
                t.id
            );
            assert!(!t.expected.trim().is_empty());
        }
        let sessions = make_sessions(&dir, 3, 7).unwrap();
        for s in &sessions {
            let mut t = s.text_before.clone();
            let byte = t.char_indices().nth(s.offset).map_or(t.len(), |(b, _)| b);
            t.insert_str(byte, &s.typed);
            assert_eq!(t, src);
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
