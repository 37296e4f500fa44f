//! `inkling bench replay`: types recorded text into a real `inkling lsp` process one character at a
//! time, driving it the way the VS Code extension does: an inline completion request after each
//! keystroke (cancelling the previous one), `inkling/cursor` once the cursor has rested 200 ms,
//! and a new request when the server says the suggestion on screen grew
//! (`inkling/suggestionGrown`). It measures what the user would have seen: suggestions visible
//! and consistent with what is typed next, characters saved, the time to a suggestion after a
//! pause, and the time of fresh model requests to their first piece and to the whole.
//!
//! The user pauses (`pause`) before the first non-blank character of each line after the first
//! (where people stop to think), after a word every `pause_every` characters, and after opening
//! the file (`think`).

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::child::Server;
use crate::config::Settings;
use crate::lsp::client::{Incoming, Trigger, Writer, completion_params};
use crate::position::{self, Encoding};
use tokio::process::ChildStdin;

mod summary;

use summary::summarize;
pub use summary::{ReplaySummary, chars_saved, consistent, table};

/// One recorded typing session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub repo: Option<String>,
    pub path: String,
    pub language: String,
    pub text_before: String,
    /// Cursor as a char offset into `text_before` (informational; `line`/`character` are used).
    pub offset: usize,
    pub line: u32,
    /// UTF-16 column.
    pub character: u32,
    pub typed: String,
}

/// What happened after one keystroke.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Keystroke {
    /// Milliseconds from the keystroke to the first answer; None when it was cancelled or never
    /// answered.
    pub latency_ms: Option<f64>,
    /// The last suggestion shown before the next keystroke.
    pub suggestion: Option<String>,
    pub source: Option<String>,
    /// Answered before the next keystroke, so the editor would have shown it.
    pub visible: bool,
    /// A continuation consistent with what the user typed next.
    pub consistent: bool,
    /// Milliseconds from the keystroke to the first consistent suggestion on screen (a grown one
    /// included), when there was one before the next keystroke.
    #[serde(default)]
    pub first_consistent_ms: Option<f64>,
    /// The first answer was the part of a suggestion the model was still writing.
    #[serde(default)]
    pub streamed: bool,
    /// Requests sent again because the server said the suggestion grew.
    #[serde(default)]
    pub reasks: usize,
    /// The user paused this long after this keystroke (0: typing on).
    #[serde(default)]
    pub pause_ms: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SessionResult {
    pub id: String,
    pub keystrokes: Vec<Keystroke>,
    pub chars_typed: usize,
    pub chars_saved: usize,
    /// Milliseconds from a request to its job's whole suggestion (`inkling/suggestionDone`).
    #[serde(default)]
    pub whole_ms: Vec<f64>,
    /// ... and to its first piece that could be shown.
    #[serde(default)]
    pub first_piece_ms: Vec<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReplayReport {
    pub model: String,
    pub speed_ms: u64,
    #[serde(default)]
    pub pause_ms: u64,
    pub summary: ReplaySummary,
    pub sessions: Vec<SessionResult>,
}

fn language_id(lang: &str) -> &str {
    match lang {
        "ts" => "typescript",
        "js" => "javascript",
        other => other,
    }
}

/// How the replayed user types.
#[derive(Debug, Clone, Copy)]
pub struct Typing {
    /// Between keystrokes.
    pub speed: Duration,
    /// Before the first non-blank character of each later line, and every `pause_every`
    /// characters (after the word being typed ends) when that is not 0.
    pub pause: Duration,
    pub pause_every: usize,
    /// After opening the file, before the first keystroke.
    pub think: Duration,
    /// The user has worked in the file before: one whole completion at the starting spot is
    /// asked and waited for before the session (not measured), so that the session measures
    /// typing in a warm file rather than the cold open.
    pub warm_start: bool,
}

/// An editor's cursor notification comes once the cursor has rested this long (the VS Code
/// extension and the Neovim plugin debounce it so).
const CURSOR_REST: Duration = Duration::from_millis(200);

/// Where an answer belongs: the keystroke it was asked after, and when that keystroke was.
#[derive(Debug, Clone, Copy)]
struct Asked {
    key: usize,
    at: Instant,
}

/// One session's state while it is typed.
struct Typist {
    uri: String,
    keys: Vec<Keystroke>,
    /// The text still to type after each keystroke.
    remaining: Vec<String>,
    pending: HashMap<i64, Asked>,
    /// `inkling/completionStats` comes once per answered request, but not necessarily before
    /// the answer: answers (the keystroke whose first answer it was, if any) and stats (source,
    /// streaming) are paired in order.
    unsourced: VecDeque<Option<usize>>,
    sources: VecDeque<(String, bool)>,
    whole_ms: Vec<f64>,
    first_piece_ms: Vec<f64>,
    /// The current keystroke, the document version and the cursor (line, UTF-16 column).
    key: Option<usize>,
    version: i32,
    line: u32,
    col: u32,
    /// When the current keystroke was typed.
    typed_at: Instant,
}

impl Typist {
    fn pair_sources(&mut self) {
        while !self.unsourced.is_empty() && !self.sources.is_empty() {
            let (key, source) = (self.unsourced.pop_front(), self.sources.pop_front());
            if let (Some(Some(k)), Some((source, streaming))) = (key, source) {
                self.keys[k].source = Some(source);
                self.keys[k].streamed = streaming;
            }
        }
    }

    /// Takes one message from the server; returns true when it asks to re-ask (grown).
    fn handle(&mut self, at: Instant, m: &Value) -> bool {
        match m["method"].as_str() {
            Some("inkling/completionStats") => {
                let p = &m["params"];
                let source = p["source"].as_str().unwrap_or("none").to_string();
                let streaming = p["streaming"].as_bool().unwrap_or(false);
                self.sources.push_back((source, streaming));
                self.pair_sources();
                return false;
            }
            Some("inkling/suggestionDone") => {
                let p = &m["params"];
                if p["textDocument"]["uri"] == self.uri.as_str() {
                    if let (Some(first), Some(whole)) =
                        (p["firstPieceMs"].as_f64(), p["elapsedMs"].as_f64())
                    {
                        self.first_piece_ms.push(first);
                        self.whole_ms.push(whole);
                    }
                }
                return false;
            }
            Some("inkling/suggestionGrown") => {
                let p = &m["params"];
                return p["textDocument"]["uri"] == self.uri.as_str()
                    && p["textDocument"]["version"].as_i64() == Some(i64::from(self.version))
                    && p["position"]["line"].as_u64() == Some(u64::from(self.line))
                    && p["position"]["character"].as_u64() == Some(u64::from(self.col))
                    && self.pending.is_empty();
            }
            Some(_) => return false,
            None => {}
        }
        let Some(id) = m.get("id").and_then(Value::as_i64) else {
            return false;
        };
        let text = m["result"]
            .as_array()
            .and_then(|a| a.first())
            .or_else(|| m["result"]["items"].as_array().and_then(|a| a.first()))
            .and_then(|i| i["insertText"].as_str())
            .map(str::to_string);
        let asked = self.pending.remove(&id);
        // An answer for an older keystroke (or session) arrives after the editor moved on: never
        // shown, but its stats still come.
        let current = asked.is_some_and(|a| Some(a.key) == self.key);
        if text.is_some() {
            let first = asked
                .filter(|a| current && self.keys[a.key].latency_ms.is_none())
                .map(|a| a.key);
            self.unsourced.push_back(first);
            self.pair_sources();
        }
        let Some(asked) = asked.filter(|_| current) else {
            return false;
        };
        if m.get("error").is_some() {
            return false; // Cancelled.
        }
        let ms = at.duration_since(asked.at).as_secs_f64() * 1e3;
        let ks = &mut self.keys[asked.key];
        if ks.latency_ms.is_none() {
            ks.latency_ms = Some(ms);
        }
        if let Some(t) = text {
            if ks.first_consistent_ms.is_none() && consistent(&t, &self.remaining[asked.key]) {
                ks.first_consistent_ms = Some(ms);
            }
            ks.suggestion = Some(t);
        }
        false
    }
}

/// Replays every session against a fresh `inkling lsp` child process.
pub async fn run(
    sessions: &[Session],
    settings: &Settings,
    repos_root: Option<&PathBuf>,
    typing: Typing,
) -> Result<ReplayReport> {
    let root = repos_root
        .cloned()
        .unwrap_or_else(|| PathBuf::from("/bench"));
    let server = Server::start(settings, &root).await?;
    let model = server.model.clone();
    let Server {
        mut child,
        mut lsp,
        mut rx,
        ..
    } = server;

    let mut results = Vec::new();
    for (si, s) in sessions.iter().enumerate() {
        let path = Path::new(s.repo.as_deref().unwrap_or("")).join(&s.path);
        let uri = format!("file://{}/{}?session={si}", root.display(), path.display());
        lsp.open(&uri, language_id(&s.language), &s.text_before)
            .await?;
        let chars: Vec<char> = s.typed.chars().collect();
        let mut t = Typist {
            uri: uri.clone(),
            keys: vec![Keystroke::default(); chars.len()],
            remaining: (0..chars.len())
                .map(|k| chars[k + 1..].iter().collect())
                .collect(),
            pending: HashMap::new(),
            unsourced: VecDeque::new(),
            sources: VecDeque::new(),
            whole_ms: Vec::new(),
            first_piece_ms: Vec::new(),
            key: None,
            version: 1,
            line: s.line,
            col: s.character,
            typed_at: Instant::now(),
        };
        if typing.warm_start {
            let params = completion_params(&uri, t.line, t.col, Trigger::Invoked);
            let id = lsp.start_request("inkling/complete", params).await?;
            let give_up = Instant::now() + Duration::from_secs(300);
            while let Ok(Some((_, m))) = tokio::time::timeout_at(give_up.into(), rx.recv()).await {
                if m.get("method").is_none() && m["id"].as_i64() == Some(id) {
                    break;
                }
            }
        }
        // The user arrives at the spot: the cursor rests there while they think.
        let until = Instant::now() + typing.think;
        wait_typing(&mut lsp, &mut rx, &mut t, until, true).await?;
        let mut since_pause = 0usize;
        for (k, c) in chars.iter().enumerate() {
            t.version = k as i32 + 2;
            let text = c.to_string();
            lsp.insert(&uri, t.version, t.line, t.col, &text).await?;
            if *c == '\n' {
                t.line += 1;
                t.col = 0;
            } else {
                t.col += position::width(&text, Encoding::Utf16) as u32;
            }
            // VS Code cancels the request of the previous keystroke.
            for id in t.pending.keys() {
                lsp.cancel_request(*id).await?;
            }
            t.pending.clear();
            // The clock starts before the request is written, as an editor's would.
            t.typed_at = Instant::now();
            t.key = Some(k);
            let id = lsp
                .start_inline(&uri, t.line, t.col, Trigger::Automatic)
                .await?;
            t.pending.insert(
                id,
                Asked {
                    key: k,
                    at: t.typed_at,
                },
            );
            let last = k + 1 == chars.len();
            let next = chars.get(k + 1).copied();
            let line_start_next = next.is_some_and(|n| !n.is_whitespace())
                && chars[..=k]
                    .iter()
                    .rev()
                    .take_while(|c| **c != '\n')
                    .all(|c| c.is_whitespace())
                && chars[..=k].contains(&'\n');
            // A thinking pause within a line: at the first word end after every `pause_every`
            // characters since the last pause.
            let word_end = next.is_some_and(char::is_whitespace) && !c.is_whitespace();
            let mid_line = typing.pause_every > 0
                && word_end
                && k + 1 - since_pause.min(k + 1) >= typing.pause_every;
            let gap = if last {
                Duration::from_secs(60)
            } else if line_start_next || mid_line {
                since_pause = k + 1;
                t.keys[k].pause_ms = typing.pause.as_millis() as u64;
                typing.pause.max(typing.speed)
            } else {
                typing.speed
            };
            let until = t.typed_at + gap;
            wait_typing(&mut lsp, &mut rx, &mut t, until, last).await?;
            let ks = &mut t.keys[k];
            ks.visible = ks.suggestion.is_some();
            ks.consistent = ks
                .suggestion
                .as_deref()
                .is_some_and(|sug| consistent(sug, &t.remaining[k]));
        }
        lsp.close(&uri).await?;
        let saved = chars_saved(&s.typed, &t.keys);
        let summary_line = {
            let shown = t.keys.iter().filter(|k| k.visible && k.consistent).count();
            format!(
                "{shown}/{} keystrokes with a consistent suggestion, {saved} of {} chars saved",
                t.keys.len(),
                chars.len()
            )
        };
        eprintln!("[{}/{}] {}: {summary_line}", si + 1, sessions.len(), s.id);
        results.push(SessionResult {
            id: s.id.clone(),
            keystrokes: t.keys,
            chars_typed: chars.len(),
            chars_saved: saved,
            whole_ms: t.whole_ms,
            first_piece_ms: t.first_piece_ms,
        });
    }
    // Not waiting for the shutdown answer: the child is reaped below with a timeout either way.
    let _ = lsp.start_shutdown().await;
    let _ = lsp.exit().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    Ok(ReplayReport {
        model,
        speed_ms: typing.speed.as_millis() as u64,
        pause_ms: typing.pause.as_millis() as u64,
        summary: summarize(&results),
        sessions: results,
    })
}

/// Waits until `until` as the editor would: answers are taken in, the cursor notification goes
/// out once the cursor has rested, and a grown suggestion is asked for again. With `settle`, it
/// returns early once nothing is pending any more (the session's last keystroke).
async fn wait_typing(
    lsp: &mut Writer<ChildStdin>,
    rx: &mut Incoming,
    t: &mut Typist,
    until: Instant,
    settle: bool,
) -> Result<()> {
    let rest_at = t.typed_at.max(Instant::now() - Duration::from_millis(1)) + CURSOR_REST;
    let mut cursor_sent = false;
    loop {
        let now = Instant::now();
        if now >= until {
            return Ok(());
        }
        if !cursor_sent && now >= rest_at && rest_at < until {
            cursor_sent = true;
            let params = serde_json::json!({
                "textDocument": {"uri": t.uri},
                "position": {"line": t.line, "character": t.col},
            });
            lsp.notify("inkling/cursor", params).await?;
        }
        let wake = if cursor_sent {
            until
        } else {
            rest_at.min(until)
        };
        match tokio::time::timeout_at(wake.into(), rx.recv()).await {
            Ok(Some((at, m))) => {
                if t.handle(at, &m) {
                    if let Some(k) = t.key {
                        // VS Code's `editor.action.inlineSuggest.trigger`: an invoked request.
                        let id = lsp
                            .start_inline(&t.uri, t.line, t.col, Trigger::Invoked)
                            .await?;
                        t.keys[k].reasks += 1;
                        t.pending.insert(
                            id,
                            Asked {
                                key: k,
                                at: t.typed_at,
                            },
                        );
                    }
                }
                if settle && t.pending.is_empty() && t.key.is_some() {
                    return Ok(());
                }
            }
            Ok(None) => return Ok(()),
            Err(_) => {}
        }
    }
}
