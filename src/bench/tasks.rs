//! `inkling bench tasks`: completion tasks through the same completer the editors use.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ropey::Rope;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::metrics::{COLUMNS, Summary};
use crate::complete::{Completer, Input, Outcome};
use crate::engine::{CancelToken, Generation};
use crate::workspace::Workspace;

/// One task, exactly as in the task file; extra fields are carried through.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    pub language: String,
    pub repo: Option<String>,
    pub path: String,
    pub prefix: String,
    pub suffix: String,
    pub expected: String,
    pub kind: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One prediction line.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Prediction {
    pub id: String,
    pub completion: String,
    pub latency_ms: f64,
    pub ttft_ms: f64,
    pub prompt_tokens: usize,
    pub reused_tokens: usize,
    #[serde(default)]
    pub shifted_tokens: usize,
    #[serde(default)]
    pub evaluated_tokens: usize,
    pub generated_tokens: usize,
    pub draft_accepted: usize,
    pub draft_proposed: usize,
    /// Paths of the repo-context chunks in the prompt.
    #[serde(default)]
    pub context_files: Vec<String>,
}

/// What `bench tasks` writes to report.json.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TasksReport {
    pub model: String,
    pub overall: Summary,
    pub per_kind: BTreeMap<String, Summary>,
    /// Latencies of every task, for the plots.
    pub latencies_ms: Vec<f64>,
    /// Of the tasks in a language with a grammar whose file parses without errors as given:
    /// the share whose file still parses with the suggestion inserted.
    #[serde(default)]
    pub parseable_share: Option<f64>,
}

/// Whether `text` parses without errors in the language of `syn`.
fn parses(syn: &crate::syntax::Syntax, text: &str) -> bool {
    let rope = Rope::from_str(text);
    !crate::syntax::Syntax::new(syn.lang(), &rope)
        .tree()
        .root_node()
        .has_error()
}

pub fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(
            serde_json::from_str(&line)
                .with_context(|| format!("{}:{}: not a valid line", path.display(), i + 1))?,
        );
    }
    Ok(out)
}

/// The workspace of a task: `<repos_root>/<repo>`, or `repos_root` itself when it is that repo.
fn workspace_of(repos_root: &Path, repo: Option<&str>) -> Option<PathBuf> {
    let named = repo.map(|r| repos_root.join(r)).filter(|p| p.is_dir());
    named.or_else(|| {
        let same = repos_root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        (repo.is_none() || same.as_deref() == repo).then(|| repos_root.to_path_buf())
    })
}

/// Runs every task (the task's own file is never read from disk: the document is prefix + suffix).
/// With `repos_root`, each task's prompt gets the repo context of its workspace, chosen from the
/// other files only (the task's own file, which holds the answer, is left out of the selection).
///
/// As in the editor, a file's context is chosen once (when it is first seen) and kept; with
/// `follow_cursor` it is chosen again for every task from the code around its cursor instead,
/// which is the unstable layout the comparison in the docs measures against.
pub fn run(
    completer: &Completer,
    tasks: &[Task],
    repos_root: Option<&PathBuf>,
    follow_cursor: bool,
    out: &Path,
) -> Result<TasksReport> {
    let mut workspaces: BTreeMap<PathBuf, crate::context::RepoContext> = BTreeMap::new();
    let mut per_file: BTreeMap<(PathBuf, String), Vec<crate::prompt::ContextFile>> =
        BTreeMap::new();
    let mut w = std::io::BufWriter::new(
        std::fs::File::create(out).with_context(|| format!("cannot write {}", out.display()))?,
    );
    let mut rows: Vec<(String, String, String, f64)> = Vec::new();
    let (mut checked, mut parseable_count) = (0usize, 0usize);
    for (i, task) in tasks.iter().enumerate() {
        let text = format!("{}{}", task.prefix, task.suffix);
        let rope = Rope::from_str(&text);
        let cursor = task.prefix.chars().count();
        let syntax = crate::syntax::Lang::from_language_id(&task.language)
            .or_else(|| crate::syntax::Lang::from_path(&task.path))
            .map(|l| crate::syntax::Syntax::new(l, &rope));
        let root = repos_root.and_then(|r| workspace_of(r, task.repo.as_deref()));
        let workspace = match &root {
            Some(ws) => Workspace::at(ws),
            None => Workspace::named(task.repo.as_deref().unwrap_or("bench")),
        };
        let context = match root {
            Some(ws) if completer.settings.context_tokens > 0 => {
                let ctx = workspaces.entry(ws.clone()).or_insert_with(|| {
                    let index = crate::context::WorkspaceIndex::build(&ws);
                    eprintln!("indexed {} files of {}", index.files.len(), ws.display());
                    crate::context::RepoContext::new(index, completer.settings.context_tokens)
                });
                match (&syntax, follow_cursor) {
                    (Some(syn), true) => {
                        let symbols = crate::syntax::context_symbols(syn, &rope, cursor);
                        ctx.index
                            .select(&task.path, &symbols, &[], ctx.budget_chars)
                    }
                    _ => per_file
                        .entry((ws, task.path.clone()))
                        .or_insert_with(|| ctx.context_for(&task.path, &text))
                        .clone(),
                }
            }
            _ => Vec::new(),
        };
        let input = Input {
            syntax: syntax.clone(),
            language: task.language.clone(),
            context: std::sync::Arc::new(context),
            ..Input::new(rope, cursor, &task.path, workspace.name())
        };
        let g = match completer.complete(&input, CancelToken::new())? {
            Outcome::Suggested(s) => s.generation,
            Outcome::Skipped(_) => Generation::skipped(),
        };
        let context = &input.context;
        let parseable = syntax.as_ref().and_then(|syn| {
            // Only files that parse with the expected text can tell.
            parses(
                syn,
                &format!("{}{}{}", task.prefix, task.expected, task.suffix),
            )
            .then(|| parses(syn, &format!("{}{}{}", task.prefix, g.text, task.suffix)))
        });
        let t = &g.timings;
        let p = Prediction {
            id: task.id.clone(),
            completion: g.text.clone(),
            latency_ms: t.total_ms,
            ttft_ms: t.ttft_ms,
            prompt_tokens: t.prompt_tokens,
            reused_tokens: t.reused_tokens,
            shifted_tokens: t.shifted_tokens,
            evaluated_tokens: t.evaluated_tokens,
            generated_tokens: t.generated_tokens,
            draft_accepted: t.draft_accepted,
            draft_proposed: t.draft_proposed,
            context_files: context.iter().map(|c| c.path.clone()).collect(),
        };
        serde_json::to_writer(&mut w, &p)?;
        writeln!(w)?;
        eprintln!(
            "[{}/{}] {} ({}): {:.0} ms, {}",
            i + 1,
            tasks.len(),
            task.id,
            task.kind,
            t.total_ms,
            if super::metrics::exact_match(&g.text, &task.expected) {
                "exact"
            } else {
                "miss"
            }
        );
        rows.push((task.kind.clone(), g.text, task.expected.clone(), t.total_ms));
        if let Some(p) = parseable {
            checked += 1;
            parseable_count += usize::from(p);
        }
    }
    w.flush()?;
    let mut per_kind = BTreeMap::new();
    let kinds: std::collections::BTreeSet<&String> = rows.iter().map(|r| &r.0).collect();
    for k in kinds {
        per_kind.insert(
            k.clone(),
            Summary::of(
                rows.iter()
                    .filter(|r| &r.0 == k)
                    .map(|r| (r.1.as_str(), r.2.as_str(), r.3)),
            ),
        );
    }
    Ok(TasksReport {
        model: completer.engine.name(),
        overall: Summary::of(rows.iter().map(|r| (r.1.as_str(), r.2.as_str(), r.3))),
        per_kind,
        latencies_ms: rows.iter().map(|r| r.3).collect(),
        parseable_share: (checked > 0).then(|| parseable_count as f64 / checked as f64),
    })
}

/// The table's number columns (see [`COLUMNS`]); `signed` for deltas.
fn cells(values: impl IntoIterator<Item = f64>, signed: bool) -> String {
    values
        .into_iter()
        .zip(COLUMNS)
        .map(|(x, (w, p))| {
            if signed {
                format!(" {x:>+w$.p$}")
            } else {
                format!(" {x:>w$.p$}")
            }
        })
        .collect()
}

/// The results table, optionally with deltas against an older report.
pub fn table(r: &TasksReport, old: Option<&TasksReport>) -> String {
    let mut s = format!(
        "model: {}\n{:<8} {:>4} {:>7} {:>7} {:>9} {:>8} {:>8} {:>8}\n",
        r.model, "kind", "n", "EM", "ES", "1st-line", "p50 ms", "p90 ms", "p99 ms"
    );
    let mut rows: Vec<(&str, &Summary, Option<&Summary>)> = r
        .per_kind
        .iter()
        .map(|(k, v)| (k.as_str(), v, old.and_then(|o| o.per_kind.get(k))))
        .collect();
    rows.push(("all", &r.overall, old.map(|o| &o.overall)));
    let parse_line = match r.parseable_share {
        Some(p) => format!(
            "suggestions leaving the file parseable: {:.1}%\n",
            p * 100.0
        ),
        None => String::new(),
    };
    for (k, v, o) in rows {
        s += &format!("{k:<8} {:>4}{}\n", v.n, cells(v.values(), false));
        if let Some(o) = o {
            let delta: Vec<f64> = v
                .values()
                .iter()
                .zip(o.values())
                .map(|(a, b)| a - b)
                .collect();
            s += &format!("{:<8} {:>4}{}\n", "  Δ", "", cells(delta, true));
        }
    }
    s + &parse_line
}
