//! The batch probe: are verification rows bit-identical to one-token passes on this backend, and
//! what does a three-token pass cost against a one-token pass? Speculation's exactness and
//! `auto`'s choice rest on it. The result is saved beside the KV snapshots, keyed by everything
//! it depends on, so only the first start with a given model and build pays for it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use llama_cpp_2::token::LlamaToken;

use super::kv::store::Fnv64;
use super::kv::{KvSeq, Store};
use super::{BatchProbe, EngineConfig, EngineError};

/// A short code prompt: the probe's three tokens follow it.
pub(super) const PROBE_TEXT: &str = "fn main() {\n    let names = vec![\"alpha\", \"beta\", \"gamma\"];\n    for (i, name) in names.iter().enumerate() {\n        println!(\"{i}: {name}\");\n    }\n}\n";

/// Timed rounds of the probe; the first round before them is untimed (the first passes after
/// loading still page the weights in).
const ROUNDS: usize = 5;

/// Timed passes of one kind varying by more than this factor (slowest over fastest) mean that
/// something else was running: the probe is noisy.
const MAX_SPREAD: f64 = 1.5;

/// Evaluates the last three of `tokens` as one-token passes and as one batch, compares every
/// logit bit for bit, and times both (medians of [`ROUNDS`] rounds after one untimed round).
/// Leaves the cache empty. `stop` is asked before every pass: true gives up (a job came).
pub(super) fn probe_batches(
    target: &mut KvSeq<'_>,
    tokens: &[LlamaToken],
    stop: &mut dyn FnMut() -> bool,
) -> Result<BatchProbe, EngineError> {
    if tokens.len() < 8 {
        return Err(EngineError::Prompt("probe prompt too short".into()));
    }
    let decode = |e: String| EngineError::Decode(e);
    let (head, tail) = tokens.split_at(tokens.len() - 3);
    let started = Instant::now();
    target.reset();
    target.eval_rows(head, |_| false).map_err(decode)?;
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
    let (mut one, mut three) = (Vec::new(), Vec::new());
    let mut exact = true;
    for round in 0..=ROUNDS {
        let timed = round > 0;
        let mut singles = Vec::with_capacity(tail.len());
        for t in tail {
            if stop() {
                target.reset();
                return Err(EngineError::Cancelled);
            }
            let s = Instant::now();
            target.eval_rows(&[*t], |_| true).map_err(decode)?;
            if timed {
                one.push(ms(s));
            }
            singles.push(target.logits(0).to_vec());
        }
        target.truncate(head.len());
        let s = Instant::now();
        target.eval_rows(tail, |_| true).map_err(decode)?;
        if timed {
            three.push(ms(s));
        }
        for (i, single) in singles.iter().enumerate() {
            let row = target.logits(i as i32);
            exact &= row.len() == single.len()
                && row
                    .iter()
                    .zip(single)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
        }
        target.truncate(head.len());
    }
    target.reset();
    let noisy = spread(&one) > MAX_SPREAD || spread(&three) > MAX_SPREAD;
    Ok(BatchProbe {
        exact,
        one_ms: median(&mut one),
        three_ms: median(&mut three),
        took_ms: ms(started),
        from_cache: false,
        speculating: false,
        noisy,
        live: false,
    })
}

/// Slowest over fastest of `v` (1 when empty).
fn spread(v: &[f64]) -> f64 {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(0.0, f64::max);
    if v.is_empty() || min <= 0.0 {
        1.0
    } else {
        max / min
    }
}

/// What a probe's result depends on besides the model: this build of inkling (and llama.cpp),
/// the thread count, GPU offload and the CPU.
fn probe_identity(config: &EngineConfig) -> String {
    let exe = std::env::current_exe()
        .and_then(std::fs::metadata)
        .map(|m| {
            let mtime = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            format!("{}:{mtime}", m.len())
        })
        .unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(str::to_string)
        })
        .unwrap_or_default();
    format!(
        "{} {exe} threads={} gpu={} {cpu}",
        env!("CARGO_PKG_VERSION"),
        config.threads,
        config.gpu_layers
    )
}

/// Where a probe's result is saved: the snapshot directory, keyed by the model and
/// [`probe_identity`].
pub(super) fn probe_path(store: &Store, config: &EngineConfig) -> PathBuf {
    let mut h = Fnv64::new();
    h.write(&store.model_fp.to_le_bytes());
    h.write(probe_identity(config).as_bytes());
    store
        .kv
        .dir()
        .join(format!("probe-{:016x}.json", h.finish()))
}

/// A probe saved by an earlier start; a missing or unreadable file means probing again.
pub(super) fn load_probe(path: &Path) -> Option<BatchProbe> {
    // A small regular file only: anything else in its place would block or never end.
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.is_file() || meta.len() > 64 << 10 {
        return None;
    }
    let mut p = std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<BatchProbe>(&b).ok())
        .filter(|p| p.one_ms > 0.0 && p.three_ms > 0.0)?;
    p.from_cache = true;
    p.took_ms = 0.0;
    Some(p)
}

/// Saves a probe for the next start; a noisy one is not worth keeping.
pub(super) fn save_probe(path: &Path, probe: &BatchProbe) {
    if probe.noisy {
        return;
    }
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(path, serde_json::to_vec(probe).unwrap_or_default()));
    if let Err(e) = written {
        tracing::debug!("cannot save the batch probe: {e}");
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_of_samples() {
        assert_eq!(spread(&[]), 1.0);
        assert_eq!(spread(&[10.0, 10.0]), 1.0);
        assert!((spread(&[10.0, 20.0, 12.0]) - 2.0).abs() < 1e-9);
    }

    #[test]
    fn noisy_probes_are_not_saved_and_never_pay() {
        let dir = std::env::temp_dir().join(format!("inkling-probe-{}", std::process::id()));
        let path = dir.join("probe.json");
        let mut p = BatchProbe {
            exact: true,
            one_ms: 2232.0,
            three_ms: 2988.0,
            took_ms: 1.0,
            from_cache: false,
            speculating: false,
            noisy: true,
            live: false,
        };
        // The numbers of a loaded machine look like speculation pays; the spread says otherwise.
        assert!(crate::speculative::speculation_pays(p.one_ms, p.three_ms));
        assert!(!p.pays());
        save_probe(&path, &p);
        assert!(!path.exists());
        p.noisy = false;
        save_probe(&path, &p);
        assert!(load_probe(&path).is_some_and(|l| l.from_cache && l.pays()));
        // Something that is not a regular file is never read.
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir_all(&path).unwrap();
        assert!(load_probe(&path).is_none());
        let _ = std::fs::remove_dir_all(dir);
    }
}
