//! The `inkling` command line: argument parsing and dispatch; each subcommand lives in `cli/`.

mod cli;

use std::process::ExitCode;

use clap::Parser;

use cli::Command;

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
        } => cli::complete::run(
            &cli::complete::Request {
                file: &file,
                line,
                column,
                json,
                then_type: then_type.as_deref(),
                repo,
            },
            &model,
        ),
        Command::Lsp => inkling::lsp::run_stdio(),
        Command::Bench { command } => cli::bench::run(command),
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
