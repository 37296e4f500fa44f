//! Shared helpers for the integration tests: the real 0.5B model, loaded once per test binary.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use inkling::engine::{Engine, EngineConfig};

pub fn test_model() -> PathBuf {
    let p = std::env::var_os("INKLING_TEST_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(inkling::config::default_draft_model);
    assert!(
        p.exists(),
        "test model {} is missing: run scripts/setup.sh (or set INKLING_TEST_MODEL)",
        p.display()
    );
    p
}

/// The built `inkling lsp` as a child process, with a client on its stdio (logs go to stderr).
pub fn spawn_lsp() -> (
    tokio::process::Child,
    inkling::lsp::client::Client<tokio::process::ChildStdout, tokio::process::ChildStdin>,
) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_inkling"))
        .arg("lsp")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn inkling lsp");
    let c = inkling::lsp::client::Client::new(
        child.stdout.take().expect("stdout"),
        child.stdin.take().expect("stdin"),
    );
    (child, c)
}

pub fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| Engine::spawn(EngineConfig::new(test_model())).expect("test model loads"))
}
