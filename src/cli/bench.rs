//! `inkling bench`: completion tasks, typing replays against a real server, and task sets made
//! from any repository. Each goes through the same code path as the editors.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;

use inkling::complete::Completer;
use inkling::engine::Engine;

use super::ModelArgs;

#[derive(Subcommand)]
pub enum BenchCommand {
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
        /// The user pauses this long before the first non-blank character of each later line
        #[arg(long, default_value_t = 1000)]
        pause_ms: u64,
        /// ... and after the word being typed once this many characters were typed since the
        /// last pause (0: only at line starts)
        #[arg(long, default_value_t = 0)]
        pause_every: usize,
        /// ... and this long after opening the file, before the first keystroke
        #[arg(long, default_value_t = 1000)]
        think_ms: u64,
        /// Measure typing in a warm file: before each session, one whole completion at its
        /// starting spot is asked and waited for (not measured)
        #[arg(long)]
        warm_start: bool,
        #[command(flatten)]
        model: ModelArgs,
    },
    /// A long editing session (typing, cancels, cursor jumps, saves, opens, closes) against a
    /// real `inkling lsp`: memory, unanswered requests and answer latency every 1,000 keystrokes.
    /// Fails when a request stays unanswered, memory keeps growing, or the server ends badly.
    Soak {
        #[arg(long, default_value_t = 10_000)]
        keystrokes: usize,
        /// Milliseconds between keystrokes
        #[arg(long, default_value_t = 20)]
        speed_ms: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Largest RSS growth allowed after warm-up (from the sample at a fifth of the run to
        /// the last), in MiB
        #[arg(long, default_value_t = 64.0)]
        max_growth_mib: f64,
        #[arg(long)]
        report: Option<PathBuf>,
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

fn write_jsonl<T: serde::Serialize>(path: &std::path::Path, items: &[T]) -> Result<()> {
    let mut out = String::new();
    for i in items {
        out += &serde_json::to_string(i)?;
        out.push('\n');
    }
    std::fs::write(path, out).with_context(|| format!("cannot write {}", path.display()))
}

pub fn run(command: BenchCommand) -> Result<()> {
    use inkling::bench::{make, replay, report, soak, tasks};
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
            pause_ms,
            pause_every,
            think_ms,
            warm_start,
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
                replay::Typing {
                    speed: std::time::Duration::from_millis(speed_ms),
                    pause: std::time::Duration::from_millis(pause_ms),
                    pause_every,
                    think: std::time::Duration::from_millis(think_ms),
                    warm_start,
                },
            ))?;
            print!("{}", replay::table(&r));
            if let Some(dir) = dir {
                report::update(&dir, |rep| rep.replay = Some(r))?;
                eprintln!("report: {}", dir.join("report.html").display());
            }
            Ok(())
        }
        BenchCommand::Soak {
            keystrokes,
            speed_ms,
            seed,
            max_growth_mib,
            report: dir,
            model,
        } => {
            let settings = model.settings();
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            let r = rt.block_on(soak::run(
                &settings,
                keystrokes,
                std::time::Duration::from_millis(speed_ms),
                seed,
            ))?;
            print!("{}", soak::table(&r));
            let verdict = soak::verdict(&r, max_growth_mib);
            if let Some(dir) = dir {
                report::update(&dir, |rep| rep.soak = Some(r))?;
            }
            verdict
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
