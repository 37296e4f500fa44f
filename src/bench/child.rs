//! A real `inkling lsp` child process driven as an editor drives it, for the benchmarks that
//! measure what users see (`replay`, `soak`): started with the editor's settings, initialized,
//! and waited on until its model is ready.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::json;
use tokio::process::{Child, ChildStdin};

use crate::config::Settings;
use crate::lsp::client::{self, Incoming, Writer};

/// A server child with its typed writer and its reader task's channel.
pub struct Server {
    pub child: Child,
    pub lsp: Writer<ChildStdin>,
    pub rx: Incoming,
    /// The model name the server reported when ready.
    pub model: String,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("model", &self.model)
            .finish()
    }
}

impl Server {
    /// Starts `inkling lsp` on the workspace `root` and waits until the model is ready.
    pub async fn start(settings: &Settings, root: &Path) -> Result<Server> {
        let exe = std::env::current_exe().context("cannot find the inkling binary")?;
        let mut child = tokio::process::Command::new(exe)
            .arg("lsp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start inkling lsp")?;
        // Requests are numbered from 0: `initialize` is 0, the benchmark's requests follow.
        let mut lsp = Writer::new(child.stdin.take().context("no stdin")?, 0);
        // A reader task: reading a frame is not cancel-safe, so it must not sit inside a timeout.
        let mut rx = client::spawn_reader(child.stdout.take().context("no stdout")?);
        // The editor's settings as they are (debounce included): the benchmarks measure what
        // users get.
        let opts = serde_json::to_value(settings)?;
        let root_uri = format!("file://{}", root.display());
        let init = lsp.start_initialize(&root_uri, opts, json!({})).await?;
        // The spec wants the initialize result before anything else is sent.
        loop {
            let (_, m) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
                .await
                .context("no answer to initialize in 30 s")?
                .context("the server exited")?;
            if m["id"] == init {
                break;
            }
        }
        lsp.initialized().await?;
        let model = loop {
            let (_, m) = tokio::time::timeout(Duration::from_secs(300), rx.recv())
                .await
                .context("the server did not get ready in 300 s")?
                .context("the server exited")?;
            if m["method"] == "inkling/status" {
                match m["params"]["state"].as_str() {
                    Some("ready") => {
                        break m["params"]["message"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string();
                    }
                    Some("error") => bail!("model failed to load: {}", m["params"]["message"]),
                    _ => {}
                }
            }
        };
        Ok(Server {
            child,
            lsp,
            rx,
            model,
        })
    }

    /// `shutdown` and `exit`, then waits (up to 30 s) for the process; its exit status, if it
    /// ended.
    pub async fn stop(mut self) -> Option<std::process::ExitStatus> {
        // Not waiting for the shutdown answer: the child is reaped below with a timeout.
        let _ = self.lsp.start_shutdown().await;
        let _ = self.lsp.exit().await;
        let t = std::time::Instant::now();
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .ok()
            .and_then(Result::ok);
        tracing::debug!(
            ms = t.elapsed().as_millis() as u64,
            ?status,
            "server exited"
        );
        if status.is_none() {
            eprintln!("inkling: the server did not exit within 30 s of `exit`");
        }
        status
    }

    /// The child's resident memory in KiB (Linux `/proc`), when it can be read.
    pub fn rss_kib(&self) -> Option<u64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }
}
