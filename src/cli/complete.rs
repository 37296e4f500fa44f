//! `inkling complete FILE --line L --column C`: one completion (and, with `--then-type`, a warm
//! second one after typing), printed to stdout with a timing line per run on stderr.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use ropey::Rope;

use inkling::complete::{Completer, Input, Outcome};
use inkling::engine::{CancelToken, Engine, EngineError, Generation};
use inkling::position::{self, Encoding};
use inkling::prompt::Anchor;
use inkling::workspace::Workspace;

use super::ModelArgs;

/// Where the cursor is and what to do after the first completion.
#[derive(Debug)]
pub struct Request<'a> {
    pub file: &'a Path,
    pub line: usize,
    pub column: usize,
    pub json: bool,
    pub then_type: Option<&'a str>,
    /// Workspace root for the repo context [default: the file's git root].
    pub repo: Option<PathBuf>,
}

fn summary(label: &str, g: &Generation) -> String {
    let t = &g.timings;
    format!(
        "{label}: prompt {} tokens ({} reused, {} shifted, {} evaluated), generated {}, first token {:.0} ms, total {:.0} ms, {:.1} tokens/s, stop {:?}",
        t.prompt_tokens,
        t.reused_tokens,
        t.shifted_tokens,
        t.evaluated_tokens,
        t.generated_tokens,
        t.ttft_ms,
        t.total_ms,
        t.tokens_per_second,
        g.stop_reason
    )
}

pub fn run(req: &Request, args: &ModelArgs) -> Result<()> {
    let started = std::time::Instant::now();
    let file = req.file;
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let text =
        inkling::document::text_from_bytes(bytes).with_context(|| format!("{}", file.display()))?;
    let rope = Rope::from_str(&text);
    let at = position::to_char(&rope, req.line, req.column, Encoding::Utf16);
    if at.clamped {
        let (l, c) = position::from_char(&rope, at.char_idx, Encoding::Utf16);
        eprintln!(
            "inkling: position {}:{} is outside {} ({} lines); using {l}:{c}",
            req.line,
            req.column,
            file.display(),
            position::line_count(&rope)
        );
    }
    let settings = args.settings();
    let engine = Engine::spawn(settings.engine_config())?;
    let load_ms = started.elapsed().as_secs_f64() * 1e3;
    let completer = Completer::new(Arc::new(engine.clone()), settings.clone());
    let workspace = match &req.repo {
        Some(r) => Workspace::at(r),
        None => Workspace::containing(file),
    };
    let (workspace, path) = workspace.locate(file);
    let mut input = Input {
        syntax: inkling::syntax::Lang::from_path(&path)
            .map(|l| inkling::syntax::Syntax::new(l, &rope)),
        ..Input::new(rope, at.char_idx, &path, workspace.name())
    };
    // Repo context: the chunks for this file, and their KV (from disk when a snapshot exists).
    let mut prefix_line = None;
    if let (Some(root), true) = (workspace.root(), settings.context_tokens > 0) {
        let t = std::time::Instant::now();
        let index = inkling::context::WorkspaceIndex::build(root);
        let files = index.files.len();
        let ctx = inkling::context::RepoContext::new(index, settings.context_tokens);
        input.context = Arc::new(ctx.context_for(&path, &text));
        let index_ms = t.elapsed().as_secs_f64() * 1e3;
        let warm = completer
            .warm_up(&input, CancelToken::new())
            .blocking_recv()
            .unwrap_or(Err(EngineError::Gone))?;
        let w = &warm.timings;
        prefix_line = Some(format!(
            "repo context: {files} files indexed in {index_ms:.0} ms, {} chunks; prefix {} tokens ({} from disk, {} reused, {} evaluated) in {:.0} ms",
            input.context.len(),
            w.prompt_tokens,
            w.loaded_tokens,
            w.reused_tokens - w.loaded_tokens,
            w.evaluated_tokens,
            w.total_ms
        ));
    }

    let run = |input: &Input| -> Result<(Option<Anchor>, Generation)> {
        Ok(match completer.complete(input, CancelToken::new())? {
            Outcome::Suggested(s) => (Some(s.plan.anchor), s.generation),
            Outcome::Skipped(skip) => {
                eprintln!("inkling: no completion: {skip}");
                (None, Generation::skipped())
            }
        })
    };
    let (anchor, first) = run(&input)?;
    let first_ms = started.elapsed().as_secs_f64() * 1e3;
    let mut results = vec![("cold", first)];
    if let Some(typed) = req.then_type {
        input.rope.insert(input.cursor, typed);
        input.cursor += typed.chars().count();
        input.anchor = anchor;
        input.syntax = inkling::syntax::Lang::from_path(&path)
            .map(|l| inkling::syntax::Syntax::new(l, &input.rope));
        let (_, warm) = run(&input)?;
        results.push(("after typing", warm));
    }
    let last = &results.last().expect("one result").1;
    if req.json {
        let runs: Vec<_> = results
            .iter()
            .map(|(label, g)| serde_json::json!({"label": label, "completion": g.text, "raw": g.raw, "stop_reason": g.stop_reason, "timings": g.timings}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"completion": last.text, "runs": runs, "model_load_ms": load_ms, "first_completion_ms": first_ms, "context_files": input.context.iter().map(|c| &c.path).collect::<Vec<_>>()})
        );
    } else {
        println!("{}", last.text);
    }
    eprintln!("model loaded in {load_ms:.0} ms");
    if let Some(s) = engine.info().speculation_summary() {
        eprintln!("{s}");
    }
    if let Some(l) = prefix_line {
        eprintln!("{l}");
    }
    for (label, g) in &results {
        eprintln!("{}", summary(label, g));
    }
    eprintln!("process start to first completion: {first_ms:.0} ms");
    Ok(())
}
