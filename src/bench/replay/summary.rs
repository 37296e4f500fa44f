//! What a replay came to: whether a suggestion agrees with what is typed next, the characters a
//! user saves by accepting, the summary over all sessions (the fields `report.json` keeps), and
//! the text table.

use serde::{Deserialize, Serialize};

use super::{Keystroke, ReplayReport, SessionResult};
use crate::bench::metrics::percentile;

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
    /// Share with a consistent suggestion visible within 300 ms (before the next keystroke).
    #[serde(default)]
    pub correct_within_300ms_share: f64,
    /// `chars_saved / chars_typed`.
    #[serde(default)]
    pub chars_saved_share: f64,
    /// Pauses (see the module doc) and how soon a consistent suggestion came after their last
    /// keystroke; a pause without one counts as its whole length.
    #[serde(default)]
    pub pauses: usize,
    #[serde(default)]
    pub pause_suggested_share: f64,
    #[serde(default)]
    pub pause_to_suggestion_p50_ms: f64,
    #[serde(default)]
    pub pause_to_suggestion_p90_ms: f64,
    /// Model jobs that finished: time from the request that started them to their first piece
    /// that could be shown (server-side, `inkling/suggestionDone`).
    #[serde(default)]
    pub fresh_first_piece_p50_ms: f64,
    #[serde(default)]
    pub fresh_first_piece_p90_ms: f64,
    /// Model jobs that finished: time from the request that started them to the whole suggestion.
    #[serde(default)]
    pub fresh_whole_p50_ms: f64,
    #[serde(default)]
    pub fresh_whole_p90_ms: f64,
    /// Requests sent again on `inkling/suggestionGrown`.
    #[serde(default)]
    pub reasks: usize,
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

pub(super) fn summarize(sessions: &[SessionResult]) -> ReplaySummary {
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
    let pause_lat: Vec<f64> = judged
        .iter()
        .filter(|k| k.pause_ms > 0)
        .map(|k| k.first_consistent_ms.unwrap_or(k.pause_ms as f64))
        .collect();
    let pauses = pause_lat.len();
    let paused_ok = judged
        .iter()
        .filter(|k| k.pause_ms > 0 && k.first_consistent_ms.is_some())
        .count();
    let whole: Vec<f64> = sessions.iter().flat_map(|s| s.whole_ms.clone()).collect();
    let first_piece: Vec<f64> = sessions
        .iter()
        .flat_map(|s| s.first_piece_ms.clone())
        .collect();
    let chars_typed: usize = sessions.iter().map(|s| s.chars_typed).sum();
    let chars_saved: usize = sessions.iter().map(|s| s.chars_saved).sum();
    ReplaySummary {
        correct_within_300ms_share: share(&|k| k.first_consistent_ms.is_some_and(|l| l <= 300.0)),
        chars_saved_share: if chars_typed > 0 {
            chars_saved as f64 / chars_typed as f64
        } else {
            0.0
        },
        pauses,
        pause_suggested_share: if pauses > 0 {
            paused_ok as f64 / pauses as f64
        } else {
            0.0
        },
        pause_to_suggestion_p50_ms: percentile(&pause_lat, 50.0),
        pause_to_suggestion_p90_ms: percentile(&pause_lat, 90.0),
        fresh_first_piece_p50_ms: percentile(&first_piece, 50.0),
        fresh_first_piece_p90_ms: percentile(&first_piece, 90.0),
        fresh_whole_p50_ms: percentile(&whole, 50.0),
        fresh_whole_p90_ms: percentile(&whole, 90.0),
        reasks: all.iter().map(|k| k.reasks).sum(),
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
        correct_within_100ms_share: share(&|k| k.first_consistent_ms.is_some_and(|l| l <= 100.0)),
        chars_typed,
        chars_saved,
    }
}

pub fn table(r: &ReplayReport) -> String {
    let s = &r.summary;
    format!(
        "model: {} (typing {} ms per char)\n\
         sessions {}  keystrokes {}  answered {}\n\
         latency ms: p50 {:.0}  p90 {:.0}  p99 {:.0}   model answers p50 {:.0} p90 {:.0}   cached answers p50 {:.1}\n\
         consistent suggestion shown: {:.1}% of keystrokes; within 100 ms: {:.1}%; within 300 ms: {:.1}%\n\
         chars saved by accepting: {} of {} ({:.1}%)\n\
         after a pause ({} pauses of {} ms): a consistent suggestion in {:.0}%, p50 {:.0} ms, p90 {:.0} ms\n\
         fresh model requests: first piece p50 {:.0} p90 {:.0} ms; whole suggestion p50 {:.0} p90 {:.0} ms; re-asked on growth {}\n",
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
        s.correct_within_300ms_share * 100.0,
        s.chars_saved,
        s.chars_typed,
        s.chars_saved_share * 100.0,
        s.pauses,
        r.pause_ms,
        s.pause_suggested_share * 100.0,
        s.pause_to_suggestion_p50_ms,
        s.pause_to_suggestion_p90_ms,
        s.fresh_first_piece_p50_ms,
        s.fresh_first_piece_p90_ms,
        s.fresh_whole_p50_ms,
        s.fresh_whole_p90_ms,
        s.reasks,
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
            ..Keystroke::default()
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
