//! Quality and latency metrics for benchmark runs.
//!
//! Pure functions: normalisation (trailing whitespace per line and trailing newlines ignored), exact
//! match, edit similarity (1 − Levenshtein / max length, over chars) and percentiles.

use serde::{Deserialize, Serialize};

/// Trailing whitespace of each line and trailing newlines do not count.
pub fn normalize(s: &str) -> String {
    let lines: Vec<&str> = s.split('\n').map(|l| l.trim_end()).collect();
    lines.join("\n").trim_end_matches('\n').to_string()
}

pub fn exact_match(pred: &str, expected: &str) -> bool {
    normalize(pred) == normalize(expected)
}

pub fn first_line_match(pred: &str, expected: &str) -> bool {
    let p = normalize(pred);
    let e = normalize(expected);
    p.split('\n').next() == e.split('\n').next()
}

/// Levenshtein distance over chars, two rows of memory.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

pub fn edit_similarity(pred: &str, expected: &str) -> f64 {
    let p = normalize(pred);
    let e = normalize(expected);
    let max = p.chars().count().max(e.chars().count());
    if max == 0 {
        return 1.0;
    }
    1.0 - levenshtein(&p, &e) as f64 / max as f64
}

/// Nearest-rank percentile of unsorted values (`q` in 0..=100); 0 for no values.
pub fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((q / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// Quality and latency of a group of tasks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub n: usize,
    pub exact_match: f64,
    pub edit_similarity: f64,
    pub first_line_exact_match: f64,
    pub latency_p50_ms: f64,
    pub latency_p90_ms: f64,
    pub latency_p99_ms: f64,
}

/// Width and decimals of each of [`Summary::values`]' columns in the text table.
pub const COLUMNS: [(usize, usize); 6] = [(7, 3), (7, 3), (9, 3), (8, 0), (8, 0), (8, 0)];

impl Summary {
    /// The scores and latencies in table order: EM, ES, first-line EM, p50, p90, p99 ms.
    pub fn values(&self) -> [f64; 6] {
        [
            self.exact_match,
            self.edit_similarity,
            self.first_line_exact_match,
            self.latency_p50_ms,
            self.latency_p90_ms,
            self.latency_p99_ms,
        ]
    }

    /// From (prediction, expected, latency ms) triples.
    pub fn of<'a>(rows: impl IntoIterator<Item = (&'a str, &'a str, f64)>) -> Summary {
        let rows: Vec<_> = rows.into_iter().collect();
        let n = rows.len();
        if n == 0 {
            return Summary::default();
        }
        let mean = |f: &dyn Fn(&str, &str) -> f64| {
            rows.iter().map(|(p, e, _)| f(p, e)).sum::<f64>() / n as f64
        };
        let lat: Vec<f64> = rows.iter().map(|r| r.2).collect();
        Summary {
            n,
            exact_match: mean(&|p, e| f64::from(u8::from(exact_match(p, e)))),
            edit_similarity: mean(&edit_similarity),
            first_line_exact_match: mean(&|p, e| f64::from(u8::from(first_line_match(p, e)))),
            latency_p50_ms: percentile(&lat, 50.0),
            latency_p90_ms: percentile(&lat, 90.0),
            latency_p99_ms: percentile(&lat, 99.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_ignores_trailing_whitespace() {
        assert!(exact_match("a  \nb\n\n", "a\nb"));
        assert!(!exact_match(" a", "a"));
        assert!(first_line_match("x = 1\ny", "x = 1\nz"));
    }

    #[test]
    fn edit_similarity_bounds() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(edit_similarity("abc", "abc"), 1.0);
        assert_eq!(edit_similarity("", "abcd"), 0.0);
        assert!((edit_similarity("abcd", "abce") - 0.75).abs() < 1e-9);
        assert_eq!(edit_similarity("", ""), 1.0);
    }

    #[test]
    fn percentiles() {
        let v = [5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(percentile(&v, 50.0), 3.0);
        assert_eq!(percentile(&v, 90.0), 5.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn summary_of_rows() {
        let s = Summary::of([("a", "a", 10.0), ("b", "c", 30.0)]);
        assert_eq!(s.n, 2);
        assert_eq!(s.exact_match, 0.5);
        assert_eq!(s.latency_p50_ms, 10.0);
    }
}
