//! The command line's subcommands, one file each; `main.rs` parses arguments and dispatches.

pub mod bench;
pub mod complete;

use std::path::PathBuf;

use clap::{Args, Subcommand};

use inkling::config::{Settings, Speculation};

/// Options shared by everything that loads a model.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// GGUF model with FIM tokens [default: the 1.5B in ~/.cache/inkling/models]
    #[arg(long)]
    model: Option<PathBuf>,
    /// CPU threads [default: the number of physical cores]
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
    /// Answer only with whole suggestions (the language server; no early, growing answers)
    #[arg(long)]
    no_streaming: bool,
    /// With streaming: answer at most this long after a keystroke with what the model has
    #[arg(long, default_value_t = Settings::default().answer_deadline_ms)]
    answer_deadline_ms: u64,
    /// Do not evaluate the prompt at the cursor in idle time (the language server)
    #[arg(long)]
    no_warm_cursor: bool,
}

impl ModelArgs {
    /// The settings these flags ask for, with absurd values brought into range (and said so).
    pub fn settings(&self) -> Settings {
        let (settings, notes) = self.requested().clamped();
        for n in notes {
            eprintln!("inkling: {n}");
        }
        settings
    }

    fn requested(&self) -> Settings {
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
            streaming: !self.no_streaming,
            answer_deadline_ms: self.answer_deadline_ms,
            warm_cursor: !self.no_warm_cursor,
            ..Settings::default()
        }
    }
}

#[derive(Subcommand)]
pub enum Command {
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
        command: bench::BenchCommand,
    },
}
