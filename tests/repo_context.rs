//! Repo context with the real 0.5B model: moving the KV of unchanged chunks (RoPE shift) gives
//! the same greedy tokens as a full re-evaluation, and prefix snapshots survive a restart while a
//! corrupted snapshot is recomputed, not trusted.

mod common;

use std::path::{Path, PathBuf};

use inkling::engine::{CancelToken, Engine, EngineConfig, GenerateRequest, Generation, KvReuse};
use inkling::prompt::{Piece, Prompt};
use inkling::stop::StopRules;

/// A repo-level prompt with three context files; `middle` is the second file's content.
fn pieces(middle: &str, fim: bool) -> Vec<Piece> {
    let mut p = vec![
        Piece::RepoName("shapes".into()),
        Piece::File {
            path: "geometry.py".into(),
            content: "import math\n\n\ndef area(w, h):\n    \"\"\"Area of a w by h rectangle.\"\"\"\n    return w * h\n\n\ndef circle_area(r):\n    return math.pi * r * r\n\n\ndef perimeter(w, h):\n    return 2 * (w + h)\n".into(),
        },
        Piece::File {
            path: "units.py".into(),
            content: middle.into(),
        },
        Piece::File {
            path: "report.py".into(),
            content: "from geometry import area, perimeter\nfrom units import to_cm\n\n\ndef describe(w, h):\n    lines = []\n    lines.append(f\"area: {area(w, h)}\")\n    lines.append(f\"perimeter: {perimeter(w, h)}\")\n    return \"\\n\".join(lines)\n".into(),
        },
        Piece::CurrentFile("main.py".into()),
    ];
    if fim {
        p.extend([
            Piece::FimPrefix,
            Piece::Text("from geometry import area, circle_area\nfrom units import to_cm\n\n\ndef total_area(rects):\n    total = 0\n    for w, h in rects:\n".into()),
            Piece::FimSuffix,
            Piece::Text("\n    return total\n".into()),
            Piece::FimMiddle,
            Piece::Text("        total += ".into()),
        ]);
    }
    p
}

const UNITS_A: &str = "INCH = 2.54\n\n\ndef to_cm(inches):\n    return inches * INCH\n";
const UNITS_B: &str = "INCH_IN_CM = 2.54\nFOOT_IN_CM = 30.48\n\n\ndef to_cm(inches):\n    \"\"\"Inches to centimetres.\"\"\"\n    return inches * INCH_IN_CM\n";

fn run(engine: &Engine, pieces: Vec<Piece>, max_tokens: usize, kv: KvReuse) -> Generation {
    let mut req = GenerateRequest::new(Prompt { pieces }, StopRules::default(), max_tokens);
    req.kv = kv;
    engine
        .generate_blocking(req, CancelToken::new())
        .expect("generation")
}

fn warm(engine: &Engine, middle: &str) -> Generation {
    let mut req = GenerateRequest::new(
        Prompt {
            pieces: pieces(middle, false),
        },
        StopRules::default(),
        0,
    );
    req.persist = true;
    engine
        .generate_blocking(req, CancelToken::new())
        .expect("warm-up")
}

#[test]
fn changed_middle_chunk_shifts_the_rest_and_matches_full_evaluation() {
    let engine = common::engine();
    let first = run(engine, pieces(UNITS_A, true), 6, KvReuse::Shift);
    assert!(first.timings.generated_tokens > 0, "{:?}", first.timings);
    // The second file changed: the third file and the FIM part move instead of being re-read.
    let shifted = run(engine, pieces(UNITS_B, true), 6, KvReuse::Shift);
    let t = &shifted.timings;
    assert!(t.shifted_tokens > 100, "{t:?}");
    assert!(
        t.evaluated_tokens * 3 < t.prompt_tokens,
        "evaluated {} of {}: {t:?}",
        t.evaluated_tokens,
        t.prompt_tokens
    );
    assert_eq!(
        t.reused_tokens + t.shifted_tokens + t.evaluated_tokens,
        t.prompt_tokens
    );
    // The reference: the same prompt evaluated from scratch.
    let full = run(engine, pieces(UNITS_B, true), 6, KvReuse::None);
    assert_eq!(full.timings.evaluated_tokens, full.timings.prompt_tokens);
    assert_eq!(shifted.raw, full.raw, "shifted vs full re-evaluation");
    // Prefix-only reuse re-reads everything after the change.
    let _ = run(engine, pieces(UNITS_A, true), 1, KvReuse::Shift);
    let prefix_only = run(engine, pieces(UNITS_B, true), 6, KvReuse::Prefix);
    assert_eq!(prefix_only.timings.shifted_tokens, 0);
    assert!(prefix_only.timings.evaluated_tokens > t.evaluated_tokens + 100);
    assert_eq!(prefix_only.raw, full.raw);
    // For the record (cargo test -- --nocapture): what each reuse mode evaluated.
    for (label, g) in [
        ("shift", &shifted),
        ("prefix only", &prefix_only),
        ("none", &full),
    ] {
        let t = &g.timings;
        eprintln!(
            "{label}: prompt {} = reused {} + shifted {} + evaluated {}; prompt {:.0} ms",
            t.prompt_tokens, t.reused_tokens, t.shifted_tokens, t.evaluated_tokens, t.prompt_ms
        );
    }
}

fn kv_engine(dir: &Path) -> Engine {
    let mut cfg = EngineConfig::new(common::test_model());
    cfg.kv_dir = Some(dir.to_path_buf());
    Engine::spawn(cfg).expect("model loads")
}

fn snapshots(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "kv"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn prefix_snapshot_survives_a_restart_and_a_corrupt_one_is_recomputed() {
    let dir = std::env::temp_dir().join(format!("inkling-kv-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);

    // First start: the prefix is evaluated and saved.
    let engine = kv_engine(&dir);
    let cold = warm(&engine, UNITS_A);
    assert_eq!(cold.timings.loaded_tokens, 0);
    assert!(cold.timings.evaluated_tokens > 100, "{:?}", cold.timings);
    let files = snapshots(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let reference = run(&engine, pieces(UNITS_A, true), 6, KvReuse::Shift);
    drop(engine);

    // Restart: the prefix comes from disk, and completions are the same.
    let engine = kv_engine(&dir);
    let restarted = warm(&engine, UNITS_A);
    assert_eq!(
        restarted.timings.loaded_tokens, cold.timings.prompt_tokens,
        "{:?}",
        restarted.timings
    );
    assert_eq!(restarted.timings.evaluated_tokens, 0);
    let after = run(&engine, pieces(UNITS_A, true), 6, KvReuse::Shift);
    assert!(
        after.timings.reused_tokens >= cold.timings.prompt_tokens,
        "{:?}",
        after.timings
    );
    assert_eq!(after.raw, reference.raw);
    drop(engine);

    // A flipped byte in the snapshot: detected, deleted, recomputed and saved again.
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(&files[0], &bytes).unwrap();
    let engine = kv_engine(&dir);
    let recomputed = warm(&engine, UNITS_A);
    assert_eq!(recomputed.timings.loaded_tokens, 0);
    assert!(recomputed.timings.evaluated_tokens > 100);
    assert_eq!(snapshots(&dir).len(), 1);
    assert_ne!(std::fs::read(&files[0]).unwrap(), bytes);
    let again = run(&engine, pieces(UNITS_A, true), 6, KvReuse::Shift);
    assert_eq!(again.raw, reference.raw);

    // A truncated snapshot is not trusted either.
    drop(engine);
    let len = std::fs::metadata(&files[0]).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&files[0])
        .unwrap()
        .set_len(len / 3)
        .unwrap();
    let engine = kv_engine(&dir);
    let t = warm(&engine, UNITS_A).timings;
    assert_eq!(t.loaded_tokens, 0);
    assert!(t.evaluated_tokens > 100);
    drop(engine);
    let _ = std::fs::remove_dir_all(dir);
}
