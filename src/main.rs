//! The `inkling` command line: `complete`, `lsp`, `bench`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use ropey::Rope;

use inkling::complete::Completer;
use inkling::config::Settings;
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
}

impl ModelArgs {
    fn settings(&self) -> Settings {
        Settings {
            model: self.model.clone(),
            threads: self.threads,
            context_size: self.ctx_size,
            max_tokens: self.max_tokens,
            gpu_layers: self.gpu_layers,
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
    },
    /// Run the language server on stdio.
    Lsp,
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
        } => complete(&file, line, column, &model, json, then_type.as_deref()),
        Command::Lsp => inkling_lsp(),
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
        "{label}: prompt {} tokens ({} reused, {} evaluated), generated {}, first token {:.0} ms, total {:.0} ms, {:.1} tokens/s, stop {:?}",
        t.prompt_tokens,
        t.reused_tokens,
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
) -> Result<()> {
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
    let completer = Completer::new(std::sync::Arc::new(engine), settings);
    let path = file.to_string_lossy().into_owned();
    let repo = repo_name(file);
    let mut cursor = at.char_idx;

    let run = |rope: &Rope, cursor: usize, anchor: Option<&Anchor>| {
        let view = FileView {
            rope,
            cursor,
            path: &path,
            repo: &repo,
        };
        completer.complete_blocking(&view, anchor, &[], CancelToken::new())
    };
    let (plan, first) = run(&rope, cursor, None)?;
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
            serde_json::json!({"completion": last.text, "runs": runs})
        );
    } else {
        println!("{}", last.text);
    }
    for (label, g) in &results {
        eprintln!("{}", summary(label, g));
    }
    Ok(())
}

/// The repo name shown to the model: the git root's directory name, else the file's parent's.
fn repo_name(file: &std::path::Path) -> String {
    let abs = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let mut dir = abs.parent();
    while let Some(d) = dir {
        if d.join(".git").exists() {
            return d
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
        }
        dir = d.parent();
    }
    abs.parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
