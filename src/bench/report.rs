//! `report.json` and a self-contained `report.html` (inline SVG, no scripts, no network).
//!
//! Both benchmark modes write into the same report: each updates its own section and the page is
//! drawn again from the whole.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::replay::ReplayReport;
use super::tasks::TasksReport;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    pub tasks: Option<TasksReport>,
    pub replay: Option<ReplayReport>,
    #[serde(default)]
    pub soak: Option<super::soak::SoakReport>,
}

/// Loads the report in `dir` (if any), lets `update` change it, writes JSON and HTML back.
pub fn update(dir: &Path, update: impl FnOnce(&mut Report)) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let json_path = dir.join("report.json");
    let mut report: Report = std::fs::read(&json_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    update(&mut report);
    std::fs::write(&json_path, serde_json::to_vec_pretty(&report)?)?;
    std::fs::write(dir.join("report.html"), html(&report))?;
    Ok(())
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const W: f64 = 640.0;
const H: f64 = 260.0;
const PAD: f64 = 40.0;

/// Grouped bars, values in 0..=1.
fn bars(title: &str, groups: &[String], series: &[(&str, &str, Vec<f64>)]) -> String {
    let mut s = format!(
        r#"<figure><figcaption>{}</figcaption><svg width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img">"#,
        esc(title)
    );
    let plot_w = W - 2.0 * PAD;
    let plot_h = H - 2.0 * PAD;
    for t in 0..=4 {
        let y = PAD + plot_h * (1.0 - f64::from(t) / 4.0);
        let _ = write!(
            s,
            r##"<line x1="{PAD}" x2="{}" y1="{y}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" font-size="10" text-anchor="end">{:.2}</text>"##,
            W - PAD,
            PAD - 4.0,
            y + 3.0,
            f64::from(t) / 4.0
        );
    }
    let gw = plot_w / groups.len().max(1) as f64;
    let bw = gw * 0.8 / series.len().max(1) as f64;
    for (gi, g) in groups.iter().enumerate() {
        let gx = PAD + gw * gi as f64 + gw * 0.1;
        for (si, (_, color, vals)) in series.iter().enumerate() {
            let v = vals.get(gi).copied().unwrap_or(0.0).clamp(0.0, 1.0);
            let h = plot_h * v;
            let x = gx + bw * si as f64;
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="{color}"><title>{v:.3}</title></rect>"#,
                PAD + plot_h - h,
                bw * 0.95
            );
        }
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{}" font-size="11" text-anchor="middle">{}</text>"#,
            gx + gw * 0.4,
            H - PAD + 14.0,
            esc(g)
        );
    }
    for (si, (name, color, _)) in series.iter().enumerate() {
        let x = PAD + 110.0 * si as f64;
        let _ = write!(
            s,
            r#"<rect x="{x}" y="8" width="10" height="10" fill="{color}"/><text x="{}" y="17" font-size="11">{}</text>"#,
            x + 14.0,
            esc(name)
        );
    }
    s + "</svg></figure>"
}

/// Histogram of latencies (ms).
fn histogram(title: &str, values: &[f64], color: &str) -> String {
    let mut s = format!(
        r#"<figure><figcaption>{}</figcaption><svg width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img">"#,
        esc(title)
    );
    if values.is_empty() {
        return s + r#"<text x="20" y="40">no data</text></svg></figure>"#;
    }
    let max = values.iter().copied().fold(0.0, f64::max).max(1.0);
    let bins = 20usize;
    let width = max / bins as f64;
    let mut counts = vec![0usize; bins];
    for v in values {
        counts[((v / width) as usize).min(bins - 1)] += 1;
    }
    let top = *counts.iter().max().unwrap_or(&1) as f64;
    let plot_w = W - 2.0 * PAD;
    let plot_h = H - 2.0 * PAD;
    let bw = plot_w / bins as f64;
    for (i, c) in counts.iter().enumerate() {
        let h = plot_h * *c as f64 / top;
        let _ = write!(
            s,
            r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="{color}"><title>{:.0}–{:.0} ms: {c}</title></rect>"#,
            PAD + bw * i as f64,
            PAD + plot_h - h,
            bw * 0.9,
            width * i as f64,
            width * (i + 1) as f64
        );
    }
    for t in 0..=4 {
        let x = PAD + plot_w * f64::from(t) / 4.0;
        let _ = write!(
            s,
            r#"<text x="{x:.1}" y="{}" font-size="10" text-anchor="middle">{:.0} ms</text>"#,
            H - PAD + 14.0,
            max * f64::from(t) / 4.0
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" font-size="10" text-anchor="end">{top:.0}</text>"#,
        PAD - 4.0,
        PAD + 3.0
    );
    s + "</svg></figure>"
}

/// Each session's keystrokes in order, one square each: what the user saw before typing the
/// next character (green: a consistent suggestion within 100 ms, light green: later, red: a
/// suggestion that the next characters contradict, grey: nothing; a dark border: a pause).
fn keystroke_timeline(r: &ReplayReport) -> String {
    const CELL: f64 = 9.0;
    const ROW: f64 = 14.0;
    let label_w = 240.0;
    let widest = r
        .sessions
        .iter()
        .map(|s| s.keystrokes.len())
        .max()
        .unwrap_or(0);
    let per_row = (((W - label_w) / CELL) as usize).max(1);
    let rows: Vec<(usize, usize)> = r
        .sessions
        .iter()
        .enumerate()
        .flat_map(|(i, s)| (0..s.keystrokes.len().div_ceil(per_row).max(1)).map(move |j| (i, j)))
        .collect();
    let h = ROW * rows.len() as f64 + 4.0;
    let mut out = format!(
        r#"<figure><figcaption>What the user saw after each keystroke ({} ms per character, longest session {widest} keystrokes): green a consistent suggestion within 100 ms, light green one later, red a contradicted one, grey nothing; outlined: a pause</figcaption><svg width="{W}" height="{h:.0}" viewBox="0 0 {W} {h:.0}" role="img">"#,
        r.speed_ms
    );
    for (row, (si, part)) in rows.iter().enumerate() {
        let s = &r.sessions[*si];
        let y = 2.0 + ROW * row as f64;
        if *part == 0 {
            let _ = write!(
                out,
                r#"<text x="0" y="{:.1}" font-size="10">{}</text>"#,
                y + CELL - 1.0,
                esc(&s.id.chars().take(40).collect::<String>())
            );
        }
        let start = part * per_row;
        for (i, k) in s.keystrokes.iter().enumerate().skip(start).take(per_row) {
            let color = match (k.visible, k.consistent, k.first_consistent_ms) {
                (_, _, Some(ms)) if ms <= 100.0 => "#2ca02c",
                (true, true, _) | (_, _, Some(_)) => "#98df8a",
                (true, false, _) => "#d62728",
                _ => "#ccc",
            };
            let x = label_w + CELL * (i - start) as f64;
            let stroke = if k.pause_ms > 0 {
                r##" stroke="#000" stroke-width="1.5""##
            } else {
                ""
            };
            let tip = format!(
                "#{i}: {} {}",
                k.first_consistent_ms
                    .or(k.latency_ms)
                    .map_or("-".to_string(), |l| format!("{l:.0} ms")),
                k.suggestion.as_deref().unwrap_or("")
            );
            let _ = write!(
                out,
                r##"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{color}"{stroke}><title>{}</title></rect>"##,
                CELL - 1.5,
                CELL,
                esc(&tip)
            );
        }
    }
    out + "</svg></figure>"
}

/// Latency of each keystroke in order, coloured by where the answer came from.
fn keystroke_plot(r: &ReplayReport) -> String {
    let pts: Vec<(usize, f64, &str)> = r
        .sessions
        .iter()
        .flat_map(|s| &s.keystrokes)
        .enumerate()
        .filter_map(|(i, k)| {
            let color = match k.source.as_deref() {
                Some("model") => "#1f77b4",
                Some("typed-through") => "#2ca02c",
                Some("prefetch") => "#9467bd",
                _ => "#aaa",
            };
            k.latency_ms.map(|l| (i, l, color))
        })
        .collect();
    let mut s = format!(
        r#"<figure><figcaption>Latency per keystroke (log scale): blue model, green typed-through, purple prefetch, grey no suggestion</figcaption><svg width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img">"#
    );
    let n = r
        .sessions
        .iter()
        .map(|s| s.keystrokes.len())
        .sum::<usize>()
        .max(1);
    let max = pts
        .iter()
        .map(|p| p.1)
        .fold(1.0, f64::max)
        .log10()
        .ceil()
        .max(1.0);
    let plot_w = W - 2.0 * PAD;
    let plot_h = H - 2.0 * PAD;
    for d in 0..=(max as i32) {
        let y = PAD + plot_h * (1.0 - f64::from(d) / max);
        let _ = write!(
            s,
            r##"<line x1="{PAD}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" font-size="10" text-anchor="end">{} ms</text>"##,
            W - PAD,
            PAD - 4.0,
            y + 3.0,
            10f64.powi(d)
        );
    }
    for (i, l, c) in pts {
        let x = PAD + plot_w * i as f64 / n as f64;
        let y = PAD + plot_h * (1.0 - l.max(1.0).log10() / max);
        let _ = write!(
            s,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="2.5" fill="{c}"><title>{l:.1} ms</title></circle>"#
        );
    }
    s + "</svg></figure>"
}

pub fn html(r: &Report) -> String {
    let mut s = String::from(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>inkling bench</title><style>body{font-family:system-ui,sans-serif;margin:2em;max-width:900px}table{border-collapse:collapse}td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}th:first-child,td:first-child{text-align:left}figure{margin:1.5em 0}figcaption{font-weight:600;margin-bottom:.4em}</style></head><body><h1>inkling bench</h1>"#,
    );
    if let Some(t) = &r.tasks {
        let _ = write!(
            s,
            "<h2>Completion tasks</h2><p>model: {}</p><table><tr><th>kind</th><th>n</th><th>exact match</th><th>edit similarity</th><th>first line</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th></tr>",
            esc(&t.model)
        );
        let mut rows: Vec<(String, &super::metrics::Summary)> =
            t.per_kind.iter().map(|(k, v)| (k.clone(), v)).collect();
        rows.push(("all".into(), &t.overall));
        for (k, v) in &rows {
            let cells: String = v
                .values()
                .iter()
                .zip(super::metrics::COLUMNS)
                .map(|(x, (_, p))| format!("<td>{x:.p$}</td>"))
                .collect();
            let _ = write!(s, "<tr><td>{}</td><td>{}</td>{cells}</tr>", esc(k), v.n);
        }
        s += "</table>";
        let groups: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
        s += &bars(
            "Quality per kind",
            &groups,
            &[
                (
                    "exact match",
                    "#1f77b4",
                    rows.iter().map(|r| r.1.exact_match).collect(),
                ),
                (
                    "edit similarity",
                    "#ff7f0e",
                    rows.iter().map(|r| r.1.edit_similarity).collect(),
                ),
                (
                    "first line",
                    "#2ca02c",
                    rows.iter().map(|r| r.1.first_line_exact_match).collect(),
                ),
            ],
        );
        s += &histogram("Task latency distribution", &t.latencies_ms, "#1f77b4");
    }
    if let Some(rp) = &r.replay {
        let m = &rp.summary;
        let _ = write!(
            s,
            "<h2>Typing replay</h2><p>model: {} · {} ms per character · {} sessions, {} keystrokes</p><table><tr><th>measure</th><th>value</th></tr>\
             <tr><td>latency p50 / p90 / p99</td><td>{:.0} / {:.0} / {:.0} ms</td></tr>\
             <tr><td>model answers p50 / p90</td><td>{:.0} / {:.0} ms</td></tr>\
             <tr><td>cached answers p50</td><td>{:.1} ms</td></tr>\
             <tr><td>consistent suggestion shown</td><td>{:.1}%</td></tr>\
             <tr><td>… within 100 ms</td><td>{:.1}%</td></tr>\
             <tr><td>… within 300 ms</td><td>{:.1}%</td></tr>\
             <tr><td>chars saved by accepting</td><td>{} of {} ({:.1}%)</td></tr>\
             <tr><td>after a pause: a consistent suggestion / p50 / p90</td><td>{:.0}% / {:.0} / {:.0} ms ({} pauses)</td></tr>\
             <tr><td>fresh model requests: first piece p50 / p90</td><td>{:.0} / {:.0} ms</td></tr>\
             <tr><td>… whole suggestion p50 / p90</td><td>{:.0} / {:.0} ms</td></tr>\
             <tr><td>re-asked because a suggestion grew</td><td>{}</td></tr></table>",
            esc(&rp.model),
            rp.speed_ms,
            m.sessions,
            m.keystrokes,
            m.latency_p50_ms,
            m.latency_p90_ms,
            m.latency_p99_ms,
            m.model_latency_p50_ms,
            m.model_latency_p90_ms,
            m.cached_latency_p50_ms,
            m.consistent_share * 100.0,
            m.correct_within_100ms_share * 100.0,
            m.correct_within_300ms_share * 100.0,
            m.chars_saved,
            m.chars_typed,
            m.chars_saved_share * 100.0,
            m.pause_suggested_share * 100.0,
            m.pause_to_suggestion_p50_ms,
            m.pause_to_suggestion_p90_ms,
            m.pauses,
            m.fresh_first_piece_p50_ms,
            m.fresh_first_piece_p90_ms,
            m.fresh_whole_p50_ms,
            m.fresh_whole_p90_ms,
            m.reasks,
        );
        s += &keystroke_timeline(rp);
        s += &keystroke_plot(rp);
        let lat: Vec<f64> = rp
            .sessions
            .iter()
            .flat_map(|s| &s.keystrokes)
            .filter_map(|k| k.latency_ms)
            .collect();
        s += &histogram("Keystroke latency distribution", &lat, "#2ca02c");
    }
    s + "</body></html>\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::metrics::Summary;

    #[test]
    fn html_is_self_contained() {
        let mut t = TasksReport {
            model: "m<1>".into(),
            ..Default::default()
        };
        t.per_kind
            .insert("line".into(), Summary::of([("a", "a", 5.0)]));
        t.latencies_ms = vec![5.0, 50.0];
        let h = html(&Report {
            tasks: Some(t),
            replay: Some(ReplayReport::default()),
            soak: None,
        });
        assert!(h.contains("<svg") && h.contains("m&lt;1&gt;"));
        assert!(!h.contains("<script") && !h.contains("http"));
    }
}
