//! `inkling bench replay`: types recorded text into a real `inkling lsp` process one character at a
//! time, asking for an inline completion after each keystroke the way VS Code does (cancelling the
//! previous request), and measures what the user would have seen.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::child::Server;
use super::metrics::percentile;
use crate::config::Settings;
use crate::lsp::client::Trigger;
use crate::position::{self, Encoding};

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
    /// Milliseconds from the request to its answer; None when it was cancelled or never answered.
    pub latency_ms: Option<f64>,
    pub suggestion: Option<String>,
    pub source: Option<String>,
    /// Answered before the next keystroke, so the editor would have shown it.
    pub visible: bool,
    /// A continuation consistent with what the user typed next.
    pub consistent: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SessionResult {
    pub id: String,
    pub keystrokes: Vec<Keystroke>,
    pub chars_typed: usize,
    pub chars_saved: usize,
}

/// Summary over all sessions.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReplaySummary {
    pub sessions: usize,
    pub keystrokes: usize,
    pub answered: usize,
    pub latency_p50_ms: f64,
    pub latency_p90_ms: f64,
    pub latency_p99_ms: f64,
    pub model_latency_p50_ms: f64,
    pub model_latency_p90_ms: f64,
    pub cached_latency_p50_ms: f64,
    /// Share of keystrokes (all but each session's last) with a consistent suggestion shown.
    pub consistent_share: f64,
    /// Share with a consistent suggestion visible within 100 ms.
    pub correct_within_100ms_share: f64,
    pub chars_typed: usize,
    pub chars_saved: usize,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReplayReport {
    pub model: String,
    pub speed_ms: u64,
    pub summary: ReplaySummary,
    pub sessions: Vec<SessionResult>,
}

/// The suggestion agrees with the text still to be typed.
pub fn consistent(suggestion: &str, remaining: &str) -> bool {
    !suggestion.is_empty()
        && !remaining.is_empty()
        && (remaining.starts_with(suggestion) || suggestion.starts_with(remaining))
}

/// Characters a user saves by accepting every consistent suggestion shown (each accept jumps
/// ahead; the state after an accept is the one the replay reached by typing).
pub fn chars_saved(typed: &str, keystrokes: &[Keystroke]) -> usize {
    let chars: Vec<char> = typed.chars().collect();
    let mut pos = 0usize; // chars typed or accepted so far
    let mut saved = 0usize;
    while pos < chars.len() {
        // Keystroke index `pos - 1` is the state after `pos` chars.
        let shown = pos
            .checked_sub(1)
            .and_then(|k| keystrokes.get(k))
            .filter(|k| k.visible && k.consistent)
            .and_then(|k| k.suggestion.as_deref());
        match shown {
            Some(s) => {
                let remaining: String = chars[pos..].iter().collect();
                let n = remaining
                    .chars()
                    .zip(s.chars())
                    .take_while(|(a, b)| a == b)
                    .count();
                saved += n.saturating_sub(1); // Accepting costs one key.
                pos += n.max(1);
            }
            None => pos += 1,
        }
    }
    saved
}

fn summarize(sessions: &[SessionResult]) -> ReplaySummary {
    let all: Vec<&Keystroke> = sessions.iter().flat_map(|s| &s.keystrokes).collect();
    let lat = |f: &dyn Fn(&Keystroke) -> bool| -> Vec<f64> {
        all.iter()
            .filter(|k| f(k))
            .filter_map(|k| k.latency_ms)
            .collect()
    };
    let answered = lat(&|_| true);
    let model = lat(&|k| k.source.as_deref() == Some("model"));
    let cached = lat(&|k| matches!(k.source.as_deref(), Some("typed-through" | "prefetch")));
    // Each session's last keystroke has nothing left to predict.
    let judged: Vec<&Keystroke> = sessions
        .iter()
        .flat_map(|s| {
            s.keystrokes
                .iter()
                .take(s.keystrokes.len().saturating_sub(1))
        })
        .collect();
    let share = |f: &dyn Fn(&Keystroke) -> bool| {
        if judged.is_empty() {
            0.0
        } else {
            judged.iter().filter(|k| f(k)).count() as f64 / judged.len() as f64
        }
    };
    ReplaySummary {
        sessions: sessions.len(),
        keystrokes: all.len(),
        answered: answered.len(),
        latency_p50_ms: percentile(&answered, 50.0),
        latency_p90_ms: percentile(&answered, 90.0),
        latency_p99_ms: percentile(&answered, 99.0),
        model_latency_p50_ms: percentile(&model, 50.0),
        model_latency_p90_ms: percentile(&model, 90.0),
        cached_latency_p50_ms: percentile(&cached, 50.0),
        consistent_share: share(&|k| k.visible && k.consistent),
        correct_within_100ms_share: share(&|k| {
            k.visible && k.consistent && k.latency_ms.is_some_and(|l| l <= 100.0)
        }),
        chars_typed: sessions.iter().map(|s| s.chars_typed).sum(),
        chars_saved: sessions.iter().map(|s| s.chars_saved).sum(),
    }
}

fn language_id(lang: &str) -> &str {
    match lang {
        "ts" => "typescript",
        "js" => "javascript",
        other => other,
    }
}

/// Replays every session against a fresh `inkling lsp` child process.
pub async fn run(
    sessions: &[Session],
    settings: &Settings,
    repos_root: Option<&PathBuf>,
    speed: Duration,
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
        let (mut line, mut col) = (s.line, s.character);
        let chars: Vec<char> = s.typed.chars().collect();
        let mut keys: Vec<Keystroke> = vec![Keystroke::default(); chars.len()];
        let mut pending: HashMap<i64, (usize, Instant)> = HashMap::new();
        let mut last_source: Option<String> = None;
        let handle = |at: Instant,
                      m: Value,
                      pending: &mut HashMap<i64, (usize, Instant)>,
                      keys: &mut [Keystroke],
                      last_source: &mut Option<String>| {
            if m["method"] == "inkling/completionStats" {
                *last_source = m["params"]["source"].as_str().map(str::to_string);
                return;
            }
            let Some(id) = m.get("id").and_then(Value::as_i64) else {
                return;
            };
            if m.get("method").is_some() {
                return;
            }
            if let Some((k, sent)) = pending.remove(&id) {
                if m.get("error").is_some() {
                    return; // Cancelled.
                }
                let ks = &mut keys[k];
                ks.latency_ms = Some(at.duration_since(sent).as_secs_f64() * 1e3);
                let text = m["result"]
                    .as_array()
                    .and_then(|a| a.first())
                    .or_else(|| m["result"]["items"].as_array().and_then(|a| a.first()))
                    .and_then(|i| i["insertText"].as_str())
                    .map(str::to_string);
                if text.is_some() {
                    ks.source = last_source.take();
                }
                ks.suggestion = text;
            }
        };
        for (k, c) in chars.iter().enumerate() {
            let version = k as i32 + 2;
            let text = c.to_string();
            lsp.insert(&uri, version, line, col, &text).await?;
            if *c == '\n' {
                line += 1;
                col = 0;
            } else {
                col += position::width(&text, Encoding::Utf16) as u32;
            }
            // VS Code cancels the request of the previous keystroke.
            for id in pending.keys() {
                lsp.cancel_request(*id).await?;
            }
            // The clock starts before the request is written, as an editor's would.
            let sent = Instant::now();
            let id = lsp
                .start_inline(&uri, line, col, Trigger::Automatic)
                .await?;
            pending.insert(id, (k, sent));
            let last = k + 1 == chars.len();
            let until = sent + if last { Duration::from_secs(60) } else { speed };
            while let Ok(Some((at, m))) = tokio::time::timeout_at(until.into(), rx.recv()).await {
                handle(at, m, &mut pending, &mut keys, &mut last_source);
                if last && pending.is_empty() {
                    break;
                }
            }
            let ks = &mut keys[k];
            ks.visible = ks
                .latency_ms
                .is_some_and(|l| last || l <= speed.as_secs_f64() * 1e3);
            let remaining: String = chars[k + 1..].iter().collect();
            ks.consistent = ks
                .suggestion
                .as_deref()
                .is_some_and(|sug| consistent(sug, &remaining));
        }
        lsp.close(&uri).await?;
        let saved = chars_saved(&s.typed, &keys);
        let summary_line = {
            let shown = keys.iter().filter(|k| k.visible && k.consistent).count();
            format!(
                "{shown}/{} keystrokes with a consistent suggestion, {saved} of {} chars saved",
                keys.len(),
                chars.len()
            )
        };
        eprintln!("[{}/{}] {}: {summary_line}", si + 1, sessions.len(), s.id);
        results.push(SessionResult {
            id: s.id.clone(),
            keystrokes: keys,
            chars_typed: chars.len(),
            chars_saved: saved,
        });
    }
    // Not waiting for the shutdown answer: the child is reaped below with a timeout either way.
    let _ = lsp.start_shutdown().await;
    let _ = lsp.exit().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    Ok(ReplayReport {
        model,
        speed_ms: speed.as_millis() as u64,
        summary: summarize(&results),
        sessions: results,
    })
}

pub fn table(r: &ReplayReport) -> String {
    let s = &r.summary;
    format!(
        "model: {} (typing {} ms per char)\n\
         sessions {}  keystrokes {}  answered {}\n\
         latency ms: p50 {:.0}  p90 {:.0}  p99 {:.0}   model answers p50 {:.0} p90 {:.0}   cached answers p50 {:.1}\n\
         consistent suggestion shown: {:.1}% of keystrokes; within 100 ms: {:.1}%\n\
         chars saved by accepting: {} of {} ({:.1}%)\n",
        r.model,
        r.speed_ms,
        s.sessions,
        s.keystrokes,
        s.answered,
        s.latency_p50_ms,
        s.latency_p90_ms,
        s.latency_p99_ms,
        s.model_latency_p50_ms,
        s.model_latency_p90_ms,
        s.cached_latency_p50_ms,
        s.consistent_share * 100.0,
        s.correct_within_100ms_share * 100.0,
        s.chars_saved,
        s.chars_typed,
        if s.chars_typed > 0 {
            s.chars_saved as f64 * 100.0 / s.chars_typed as f64
        } else {
            0.0
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ks(s: Option<&str>, visible: bool, consistent: bool) -> Keystroke {
        Keystroke {
            latency_ms: Some(10.0),
            suggestion: s.map(str::to_string),
            source: None,
            visible,
            consistent,
        }
    }

    #[test]
    fn consistency() {
        assert!(consistent("urn x", "urn x\n"));
        assert!(consistent("urn x + 1", "urn x"));
        assert!(!consistent("urn y", "urn x"));
        assert!(!consistent("", "abc"));
        assert!(!consistent("abc", ""));
    }

    #[test]
    fn saved_chars_follow_accepts() {
        // Typing "return x": after "r" the suggestion "eturn x" is shown and accepted.
        let typed = "return x";
        let mut keys = vec![ks(None, false, false); typed.len()];
        keys[0] = ks(Some("eturn x"), true, true);
        assert_eq!(chars_saved(typed, &keys), 6); // 7 chars accepted with one key.
        // Not visible: nothing saved.
        keys[0].visible = false;
        assert_eq!(chars_saved(typed, &keys), 0);
    }
}
