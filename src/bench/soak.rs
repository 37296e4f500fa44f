//! `inkling bench soak`: a long, unkind editing session against a real `inkling lsp` with a real
//! model. Thousands of keystrokes with a completion request after each (the previous one
//! cancelled, as VS Code does), backspaces, cursor jumps, saves, and files opened and closed,
//! all from a seeded generator. Every 1,000 keystrokes (ten samples at least) it records the
//! server's resident memory,
//! the requests still unanswered and the latency of the last answer; at the end every request
//! must have been answered and a fresh completion must come back in its usual time.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::child::Server;
use super::make::Rng;
use crate::config::Settings;
use crate::lsp::client::Trigger;
use crate::position::{self, Encoding};

/// One sample, every `every` keystrokes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Sample {
    pub keystrokes: usize,
    pub rss_mib: f64,
    /// Requests sent and not answered yet.
    pub unanswered: usize,
    /// Milliseconds the newest answered request took.
    pub last_latency_ms: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SoakReport {
    pub model: String,
    pub keystrokes: usize,
    pub requests: usize,
    pub answered: usize,
    pub samples: Vec<Sample>,
    /// Requests still unanswered 60 s after the last keystroke.
    pub unanswered_at_end: usize,
    /// RSS growth from the sample at a fifth of the run (after warm-up) to the last, in MiB.
    pub rss_growth_mib: f64,
    /// A fresh invoked completion after the session, and one on a fresh server for comparison.
    pub final_latency_ms: Option<f64>,
    pub clean_exit: bool,
}

/// The files the session edits: a few small sources in a temporary workspace.
fn workspace(dir: &Path) -> Result<Vec<(PathBuf, &'static str, String)>> {
    let files = [
        (
            "calc.py",
            "python",
            "def add(a, b):\n    return a + b\n\n\ndef scale(xs, k):\n    return [x * k for x in xs]\n\n",
        ),
        (
            "src/lib.rs",
            "rust",
            "pub fn area(w: u32, h: u32) -> u32 {\n    w * h\n}\n\npub fn perimeter(w: u32, h: u32) -> u32 {\n    2 * (w + h)\n}\n",
        ),
        (
            "util.js",
            "javascript",
            "export function clamp(x, lo, hi) {\n  return Math.min(hi, Math.max(lo, x));\n}\n",
        ),
    ];
    let mut out = Vec::new();
    for (rel, lang, text) in files {
        let path = dir.join(rel);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p)?;
        }
        std::fs::write(&path, text)?;
        out.push((path, lang, text.to_string()));
    }
    Ok(out)
}

/// What the user types: code-ish characters, newlines now and then.
const TYPED: &[&str] = &[
    "x", "y", " ", "=", "(", ")", "1", "+", "a", "b", ".", "_", "i", "f", "r", "e", "t", "u", "n",
    "\n", " ", ":", ",",
];

/// One open document as the client sees it.
struct Doc {
    uri: String,
    text: String,
    /// Cursor as a char offset.
    cursor: usize,
    version: i32,
}

impl Doc {
    /// (line, UTF-16 column) of char offset `at`.
    fn position(&self, at: usize) -> (u32, u32) {
        let before: String = self.text.chars().take(at).collect();
        let line = before.matches('\n').count();
        let col = before.rsplit('\n').next().unwrap_or("");
        (line as u32, position::width(col, Encoding::Utf16) as u32)
    }
}

/// Types `keystrokes` keystrokes at `speed` apart into a fresh server.
pub async fn run(
    settings: &Settings,
    keystrokes: usize,
    speed: Duration,
    seed: u64,
) -> Result<SoakReport> {
    let dir = std::env::temp_dir().join(format!("inkling-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let files = workspace(&dir)?;
    let mut server = Server::start(settings, &dir).await?;
    let mut tally = Tally {
        pending: HashMap::new(),
        report: SoakReport {
            model: server.model.clone(),
            keystrokes,
            ..SoakReport::default()
        },
        last_latency: None,
    };
    let mut rng = Rng::new(seed);
    let mut docs: Vec<Option<Doc>> = files.iter().map(|_| None).collect();
    let mut current = 0usize;
    // Every 1,000 keystrokes; ten samples at least in shorter runs.
    let every = (keystrokes / 10).clamp(1, 1000);
    for k in 0..keystrokes {
        // Open the current file when it is not open.
        if docs[current].is_none() {
            let (path, lang, _) = &files[current];
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let uri = format!("file://{}", path.display());
            server.lsp.open(&uri, lang, &text).await?;
            let cursor = text.chars().count();
            docs[current] = Some(Doc {
                uri,
                text,
                cursor,
                version: 1,
            });
        }
        let doc = docs[current].as_mut().context("open")?;
        let roll = rng.below(100);
        match roll {
            // Cursor jump.
            0..=3 => doc.cursor = rng.below(doc.text.chars().count() + 1),
            // Backspace.
            4..=11 if doc.cursor > 0 => {
                let (l1, c1) = doc.position(doc.cursor - 1);
                let (l2, c2) = doc.position(doc.cursor);
                doc.version += 1;
                let change = json!([{"range": {"start": {"line": l1, "character": c1}, "end": {"line": l2, "character": c2}}, "text": ""}]);
                server.lsp.change(&doc.uri, doc.version, change).await?;
                let byte = doc
                    .text
                    .char_indices()
                    .nth(doc.cursor - 1)
                    .map_or(0, |(b, _)| b);
                doc.text.remove(byte);
                doc.cursor -= 1;
            }
            // Save (written to disk, so the index sees it).
            12 => {
                let (path, ..) = &files[current];
                std::fs::write(path, &doc.text)?;
                server
                    .lsp
                    .notify(
                        "textDocument/didSave",
                        json!({"textDocument": {"uri": doc.uri}}),
                    )
                    .await?;
            }
            // Close this file and switch to another.
            13 => {
                server.lsp.close(&doc.uri).await?;
                docs[current] = None;
                current = (current + 1) % files.len();
                continue;
            }
            // Switch files without closing.
            14..=15 => {
                current = rng.below(files.len());
                continue;
            }
            _ => {
                let c = TYPED[rng.below(TYPED.len())];
                let (line, col) = doc.position(doc.cursor);
                doc.version += 1;
                server
                    .lsp
                    .insert(&doc.uri, doc.version, line, col, c)
                    .await?;
                let byte = doc
                    .text
                    .char_indices()
                    .nth(doc.cursor)
                    .map_or(doc.text.len(), |(b, _)| b);
                doc.text.insert_str(byte, c);
                doc.cursor += c.chars().count();
            }
        }
        // As VS Code does: cancel the previous request, ask again.
        for id in tally.pending.keys() {
            server.lsp.cancel_request(*id).await?;
        }
        let (line, col) = doc.position(doc.cursor);
        let id = server
            .lsp
            .start_inline(&doc.uri, line, col, Trigger::Automatic)
            .await?;
        tally.report.requests += 1;
        tally.pending.insert(id, Instant::now());
        let until = Instant::now() + speed;
        tally.read_until(&mut server, until, false).await?;
        if (k + 1) % every == 0 {
            let s = Sample {
                keystrokes: k + 1,
                rss_mib: server.rss_kib().unwrap_or(0) as f64 / 1024.0,
                unanswered: tally.pending.len(),
                last_latency_ms: tally.last_latency,
            };
            eprintln!(
                "soak: {} keystrokes, RSS {:.0} MiB, {} unanswered, last answer {:?} ms",
                s.keystrokes, s.rss_mib, s.unanswered, s.last_latency_ms
            );
            tally.report.samples.push(s);
        }
    }
    // Every request must be answered (a cancelled one with an error or null).
    let deadline = Instant::now() + Duration::from_secs(60);
    tally.read_until(&mut server, deadline, true).await?;
    let Tally {
        pending,
        mut report,
        ..
    } = tally;
    report.unanswered_at_end = pending.len();
    // A fresh, invoked completion at the end of the current file.
    if let Some(doc) = docs[current].as_ref() {
        let (line, col) = doc.position(doc.cursor);
        let id = server
            .lsp
            .start_inline(&doc.uri, line, col, Trigger::Invoked)
            .await?;
        let sent = Instant::now();
        let deadline = sent + Duration::from_secs(120);
        while let Ok(Some((at, m))) =
            tokio::time::timeout_at(deadline.into(), server.rx.recv()).await
        {
            if m.get("method").is_none() && m["id"] == id {
                report.final_latency_ms = Some(at.duration_since(sent).as_secs_f64() * 1e3);
                break;
            }
        }
    }
    // Growth after warm-up: the first samples still page in the model's weights.
    let n = report.samples.len();
    report.rss_growth_mib = match (report.samples.get(n / 5), report.samples.last()) {
        (Some(a), Some(b)) => b.rss_mib - a.rss_mib,
        _ => 0.0,
    };
    let t = Instant::now();
    let status = server.stop().await;
    eprintln!(
        "soak: the server exited {:?} after {:.0} ms",
        status,
        t.elapsed().as_secs_f64() * 1e3
    );
    report.clean_exit = status.is_some_and(|s| s.success());
    let _ = std::fs::remove_dir_all(&dir);
    Ok(report)
}

/// Requests in flight and what came back.
struct Tally {
    pending: HashMap<i64, Instant>,
    report: SoakReport,
    /// Milliseconds the newest answered request took.
    last_latency: Option<f64>,
}

impl Tally {
    /// Handles the server's messages until `until`; with `all`, stops once nothing is pending.
    async fn read_until(&mut self, server: &mut Server, until: Instant, all: bool) -> Result<()> {
        while !(all && self.pending.is_empty()) {
            match tokio::time::timeout_at(until.into(), server.rx.recv()).await {
                Ok(Some((at, m))) => self.handle(&m, at, server).await?,
                _ => break,
            }
        }
        Ok(())
    }

    /// Answers the server's requests, records answers to ours.
    async fn handle(&mut self, m: &Value, at: Instant, server: &mut Server) -> Result<()> {
        if m.get("method").is_some() {
            if let Some(id) = m.get("id") {
                // A request from the server (progress, registration): accept it.
                server.lsp.accept(id).await?;
            }
            return Ok(());
        }
        let id = m.get("id").and_then(Value::as_i64);
        if let Some(sent) = id.and_then(|id| self.pending.remove(&id)) {
            self.report.answered += 1;
            self.last_latency = Some(at.duration_since(sent).as_secs_f64() * 1e3);
        }
        Ok(())
    }
}

/// The results table.
pub fn table(r: &SoakReport) -> String {
    let mut s = format!(
        "model: {}\nkeystrokes {}  requests {}  answered {}  unanswered at the end {}\n{:>10} {:>9} {:>11} {:>14}\n",
        r.model,
        r.keystrokes,
        r.requests,
        r.answered,
        r.unanswered_at_end,
        "keystrokes",
        "RSS MiB",
        "unanswered",
        "last answer ms"
    );
    for x in &r.samples {
        s += &format!(
            "{:>10} {:>9.0} {:>11} {:>14}\n",
            x.keystrokes,
            x.rss_mib,
            x.unanswered,
            x.last_latency_ms.map_or("-".into(), |l| format!("{l:.0}"))
        );
    }
    s + &format!(
        "RSS growth {:+.1} MiB; fresh completion at the end {} ms; clean exit {}\n",
        r.rss_growth_mib,
        r.final_latency_ms.map_or("-".into(), |l| format!("{l:.0}")),
        r.clean_exit
    )
}

/// Why a soak failed, if it did: a request left unanswered, memory that kept growing, no
/// answer at the end, or an unclean exit.
pub fn verdict(r: &SoakReport, max_growth_mib: f64) -> Result<()> {
    anyhow::ensure!(
        r.unanswered_at_end == 0,
        "{} requests were never answered",
        r.unanswered_at_end
    );
    anyhow::ensure!(
        r.rss_growth_mib <= max_growth_mib,
        "RSS grew by {:.1} MiB (more than {max_growth_mib} MiB)",
        r.rss_growth_mib
    );
    anyhow::ensure!(
        r.final_latency_ms.is_some(),
        "no answer to a fresh completion at the end"
    );
    anyhow::ensure!(r.clean_exit, "the server did not exit cleanly");
    Ok(())
}
