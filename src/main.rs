//! The `inkling` command line: `complete`, `lsp`, `bench`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use ropey::Rope;

use inkling::complete::Completer;
use inkling::config::{Settings, Speculation};
use inkling::engine::{CancelToken, Engine, Generation};
use inkling::position::{self, Encoding};
use inkling::prompt::{Anchor, FileView};

#[derive(Parser)]
#[command(
    name = "inkling",
    version,
    about = "Offline code completion from a local model"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options shared by everything that loads a model.
#[derive(Args, Debug, Clone)]
struct ModelArgs {
    /// GGUF model with FIM tokens [default: the 1.5B in ~/.cache/inkling/models]
    #[arg(long)]
    model: Option<PathBuf>,
    /// CPU threads [default: the number of cores]
    #[arg(long)]
    threads: Option<usize>,
    /// Context size in tokens
    #[arg(long, default_value_t = 4096)]
    ctx_size: u32,
    /// Maximum tokens to generate
    #[arg(long, default_value_t = 64)]
    max_tokens: usize,
    /// Layers to offload to the GPU (builds with `--features cuda`)
    #[arg(long)]
    gpu_layers: Option<u32>,
    /// Speculative decoding; every mode returns the plain greedy text. `auto` speculates only where
    /// a start-up probe finds it pays (not on a 2-core CPU) [default: auto]
    #[arg(long, value_enum)]
    speculation: Option<Speculation>,
    /// Do not use the syntax tree to shape and trim suggestions (text rules only)
    #[arg(long)]
    no_syntax: bool,
    /// Draft model for speculation [default in auto/draft mode: the 0.5B in ~/.cache/inkling/models]
    #[arg(long)]
    draft_model: Option<PathBuf>,
    /// Token budget of the repo context (other files of the workspace); 0 turns it off
    #[arg(long, default_value_t = Settings::default().context_tokens)]
    context_tokens: usize,
    /// Directory of KV snapshots of repo-context prefixes [default: $INKLING_KV_DIR, else ~/.cache/inkling/kv]
    #[arg(long)]
    kv_dir: Option<PathBuf>,
    /// Neither load nor save KV snapshots
    #[arg(long)]
    no_kv_persist: bool,
    /// Tokens of the current file before the cursor shown to the model
    #[arg(long, default_value_t = Settings::default().prefix_tokens)]
    prefix_tokens: usize,
    /// Tokens of the current file after the cursor shown to the model
    #[arg(long, default_value_t = Settings::default().suffix_tokens)]
    suffix_tokens: usize,
    /// Once a suggestion spans lines, stop it after this many milliseconds of decoding
    #[arg(long, default_value_t = Settings::default().time_cap_ms)]
    time_cap_ms: u64,
    /// Plain decoding without flash attention, as speculation runs (for exactness comparisons)
    #[arg(long)]
    no_flash_attention: bool,
}

impl ModelArgs {
    fn settings(&self) -> Settings {
        Settings {
            model: self.model.clone(),
            threads: self.threads,
            context_size: self.ctx_size,
            max_tokens: self.max_tokens,
            gpu_layers: self.gpu_layers,
            speculation: self.speculation.unwrap_or_default(),
            draft_model: self.draft_model.clone(),
            syntax: !self.no_syntax,
            context_tokens: self.context_tokens,
            kv_dir: self.kv_dir.clone(),
            persist_kv: !self.no_kv_persist,
            prefix_tokens: self.prefix_tokens,
            suffix_tokens: self.suffix_tokens,
            time_cap_ms: self.time_cap_ms,
            flash_attention: !self.no_flash_attention,
            ..Settings::default()
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Complete FILE at a cursor and print the suggestion.
    Complete {
        file: PathBuf,
        /// 0-based line
        #[arg(long)]
        line: usize,
        /// 0-based column in UTF-16 code units, as in LSP
        #[arg(long)]
        column: usize,
        #[command(flatten)]
        model: ModelArgs,
        /// Print one JSON object instead of text
        #[arg(long)]
        json: bool,
        /// After the first completion, type this text at the cursor and complete again (warm)
        #[arg(long)]
        then_type: Option<String>,
        /// Workspace root for the repo context [default: the file's git root]
        #[arg(long)]
        repo: Option<PathBuf>,
    },
    /// Run the language server on stdio.
    Lsp,
    /// Headless benchmarks: completion tasks, typing replays, and building task sets.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Run completion tasks (JSONL) and report quality and latency.
    Tasks {
        #[arg(long)]
        tasks: PathBuf,
        /// Directory holding the repos that tasks name (their workspace for cross-file context)
        #[arg(long)]
        repos_root: Option<PathBuf>,
        /// Where to write one prediction per line
        #[arg(long)]
        out: PathBuf,
        /// Write report.json and report.html here
        #[arg(long)]
        report: Option<PathBuf>,
        #[arg(long)]
        limit: Option<usize>,
        /// An older report.json to show deltas against
        #[arg(long)]
        compare: Option<PathBuf>,
        /// Choose the repo context per task from the code around the cursor, instead of once
        /// per file (to measure what a stable prefix saves)
        #[arg(long)]
        context_follows_cursor: bool,
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Type recorded sessions into a real `inkling lsp` and measure what the user sees.
    Replay {
        #[arg(long)]
        sessions: PathBuf,
        #[arg(long)]
        repos_root: Option<PathBuf>,
        #[arg(long)]
        report: Option<PathBuf>,
        #[arg(long)]
        limit: Option<usize>,
        /// Milliseconds between keystrokes
        #[arg(long, default_value_t = 80)]
        speed_ms: u64,
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Build a task set and a session set from a repository.
    Make {
        #[arg(long)]
        repo: PathBuf,
        #[arg(long)]
        tasks_out: PathBuf,
        #[arg(long)]
        sessions_out: Option<PathBuf>,
        /// Tasks of each kind per file, at most
        #[arg(long, default_value_t = 1)]
        per_file: usize,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long, default_value_t = 10)]
        sessions: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Only holes whose answer uses a name defined in another file (for repo context)
        #[arg(long)]
        cross_file: bool,
    },
}

fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Complete {
            file,
            line,
            column,
            model,
            json,
            then_type,
            repo,
        } => complete(
            &file,
            line,
            column,
            &model,
            json,
            then_type.as_deref(),
            repo,
        ),
        Command::Lsp => inkling_lsp(),
        Command::Bench { command } => bench(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("inkling: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("INKLING_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error,inkling=info"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(filter)
        .with_target(false)
        .init();
}

fn inkling_lsp() -> Result<()> {
    inkling::lsp::run_stdio()
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

fn complete(
    file: &PathBuf,
    line: usize,
    column: usize,
    args: &ModelArgs,
    json: bool,
    then_type: Option<&str>,
    repo_root: Option<PathBuf>,
) -> Result<()> {
    let started = std::time::Instant::now();
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let text =
        inkling::document::text_from_bytes(bytes).with_context(|| format!("{}", file.display()))?;
    let mut rope = Rope::from_str(&text);
    let at = position::to_char(&rope, line, column, Encoding::Utf16);
    if at.clamped {
        let (l, c) = position::from_char(&rope, at.char_idx, Encoding::Utf16);
        eprintln!(
            "inkling: position {line}:{column} is outside {} ({} lines); using {l}:{c}",
            file.display(),
            position::line_count(&rope)
        );
    }
    let settings = args.settings();
    let engine = Engine::spawn(settings.engine_config())?;
    let load_ms = started.elapsed().as_secs_f64() * 1e3;
    let completer = Completer::new(std::sync::Arc::new(engine.clone()), settings.clone());
    let root = repo_root.or_else(|| git_root(file));
    let abs = std::fs::canonicalize(file).unwrap_or_else(|_| file.clone());
    let (path, repo) = match root.as_ref().and_then(|r| {
        let r = std::fs::canonicalize(r).ok()?;
        let rel = abs.strip_prefix(&r).ok()?.to_string_lossy().into_owned();
        Some((rel, r))
    }) {
        Some((rel, r)) => (rel, dir_name(&r)),
        None => (file.to_string_lossy().into_owned(), repo_name(file)),
    };
    // Repo context: the chunks for this file, and their KV (from disk when a snapshot exists).
    let mut context = Vec::new();
    let mut prefix_line = None;
    if let (Some(r), true) = (root.as_ref(), settings.context_tokens > 0) {
        let t = std::time::Instant::now();
        let index = inkling::context::WorkspaceIndex::build(r);
        let files = index.files.len();
        let ctx = inkling::context::RepoContext::new(index, settings.context_tokens);
        context = ctx.context_for(&path, &text);
        let index_ms = t.elapsed().as_secs_f64() * 1e3;
        let warm = engine.generate_blocking(
            inkling::engine::GenerateRequest {
                persist: true,
                ..inkling::engine::GenerateRequest::new(
                    inkling::prompt::repo_prefix(&repo, &context, &path),
                    Default::default(),
                    0,
                )
            },
            CancelToken::new(),
        )?;
        let w = &warm.timings;
        prefix_line = Some(format!(
            "repo context: {files} files indexed in {index_ms:.0} ms, {} chunks; prefix {} tokens ({} from disk, {} reused, {} evaluated) in {:.0} ms",
            context.len(),
            w.prompt_tokens,
            w.loaded_tokens,
            w.reused_tokens - w.loaded_tokens,
            w.evaluated_tokens,
            w.total_ms
        ));
    }
    let mut cursor = at.char_idx;

    let run = |rope: &Rope, cursor: usize, anchor: Option<&Anchor>| {
        let view = FileView {
            rope,
            cursor,
            path: &path,
            repo: &repo,
        };
        let syntax =
            inkling::syntax::Lang::from_path(&path).map(|l| inkling::syntax::Syntax::new(l, rope));
        completer.complete_with_syntax(syntax.as_ref(), &view, anchor, &context, CancelToken::new())
    };
    let (plan, first) = run(&rope, cursor, None)?;
    let first_ms = started.elapsed().as_secs_f64() * 1e3;
    let mut results = vec![("cold", first)];
    if let Some(typed) = then_type {
        rope.insert(cursor, typed);
        cursor += typed.chars().count();
        let (_, warm) = run(&rope, cursor, Some(&plan.anchor))?;
        results.push(("after typing", warm));
    }
    let last = &results.last().expect("one result").1;
    if json {
        let runs: Vec<_> = results
            .iter()
            .map(|(label, g)| serde_json::json!({"label": label, "completion": g.text, "raw": g.raw, "stop_reason": g.stop_reason, "timings": g.timings}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"completion": last.text, "runs": runs, "model_load_ms": load_ms, "first_completion_ms": first_ms, "context_files": context.iter().map(|c| &c.path).collect::<Vec<_>>()})
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

/// The nearest directory above `file` with a `.git`.
fn git_root(file: &std::path::Path) -> Option<PathBuf> {
    let abs = std::fs::canonicalize(file).ok()?;
    abs.ancestors()
        .skip(1)
        .find(|d| d.join(".git").exists())
        .map(std::path::Path::to_path_buf)
}

fn dir_name(dir: &std::path::Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "workspace".into())
}

/// The repo name shown to the model: the git root's directory name, else the file's parent's.
fn repo_name(file: &std::path::Path) -> String {
    if let Some(root) = git_root(file) {
        return root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
    }
    let abs = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    abs.parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn write_jsonl<T: serde::Serialize>(path: &std::path::Path, items: &[T]) -> Result<()> {
    let mut out = String::new();
    for i in items {
        out += &serde_json::to_string(i)?;
        out.push('\n');
    }
    std::fs::write(path, out).with_context(|| format!("cannot write {}", path.display()))
}

fn bench(command: BenchCommand) -> Result<()> {
    use inkling::bench::{make, replay, report, tasks};
    match command {
        BenchCommand::Tasks {
            tasks: file,
            repos_root,
            out,
            report: dir,
            limit,
            compare,
            context_follows_cursor,
            model,
        } => {
            let mut list: Vec<tasks::Task> = tasks::read_jsonl(&file)?;
            list.truncate(limit.unwrap_or(usize::MAX));
            let old: Option<tasks::TasksReport> = match compare {
                Some(p) => {
                    let bytes = std::fs::read(&p)
                        .with_context(|| format!("cannot read {}", p.display()))?;
                    let r: report::Report = serde_json::from_slice(&bytes)
                        .with_context(|| format!("{} is not a report.json", p.display()))?;
                    r.tasks
                }
                None => None,
            };
            let settings = model.settings();
            let engine = Engine::spawn(settings.engine_config())?;
            if let Some(s) = engine.info().speculation_summary() {
                eprintln!("{s}");
            }
            let completer = Completer::new(std::sync::Arc::new(engine), settings);
            let r = tasks::run(
                &completer,
                &list,
                repos_root.as_ref(),
                context_follows_cursor,
                &out,
            )?;
            print!("{}", tasks::table(&r, old.as_ref()));
            if let Some(dir) = dir {
                report::update(&dir, |rep| rep.tasks = Some(r))?;
                eprintln!("report: {}", dir.join("report.html").display());
            }
            Ok(())
        }
        BenchCommand::Replay {
            sessions,
            repos_root,
            report: dir,
            limit,
            speed_ms,
            model,
        } => {
            let mut list: Vec<replay::Session> = tasks::read_jsonl(&sessions)?;
            list.truncate(limit.unwrap_or(usize::MAX));
            let settings = model.settings();
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            let r = rt.block_on(replay::run(
                &list,
                &settings,
                repos_root.as_ref(),
                std::time::Duration::from_millis(speed_ms),
            ))?;
            print!("{}", replay::table(&r));
            if let Some(dir) = dir {
                report::update(&dir, |rep| rep.replay = Some(r))?;
                eprintln!("report: {}", dir.join("report.html").display());
            }
            Ok(())
        }
        BenchCommand::Make {
            repo,
            tasks_out,
            sessions_out,
            per_file,
            limit,
            sessions,
            seed,
            cross_file,
        } => {
            let t = make::make_tasks(&repo, per_file, limit, seed, cross_file)?;
            write_jsonl(&tasks_out, &t)?;
            eprintln!("{} tasks -> {}", t.len(), tasks_out.display());
            if let Some(p) = sessions_out {
                let s = make::make_sessions(&repo, sessions, seed)?;
                write_jsonl(&p, &s)?;
                eprintln!("{} sessions -> {}", s.len(), p.display());
            }
            Ok(())
        }
    }
}
