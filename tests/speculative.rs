//! Exactness: every speculation mode returns what plain greedy decoding returns, with the real
//! model as target and as draft. This is the correctness bar for speculative decoding.

mod common;

use std::sync::Arc;
use std::time::Duration;

use inkling::bench::tasks::{Task, read_jsonl};
use inkling::complete::Completer;
use inkling::config::{Settings, Speculation};
use inkling::engine::{CancelToken, Engine, EngineConfig};
use inkling::prompt::{self, FileView};
use ropey::Rope;

fn prompts() -> Vec<(String, usize, String)> {
    let mut out: Vec<(String, usize, String)> = [
        ("def add(a, b):\n    $0\n", "m.py"),
        ("fn max(a: i32, b: i32) -> i32 {\n    $0\n}\n", "lib.rs"),
        ("const names = ['alpha', 'beta', 'gamma'];\nfor (const n of names) {\n  console.log($0\n}\n", "a.js"),
        ("# The same call again\nresult = compute(alpha=1, beta=2, gamma=3)\nother = compute(alpha=1, $0\n", "r.py"),
    ]
    .iter()
    .map(|(f, p)| {
        let (t, c) = prompt::split_cursor(f);
        (t, c, (*p).to_string())
    })
    .collect();
    let tasks: Vec<Task> = read_jsonl(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/data/tasks.jsonl"
    )))
    .unwrap();
    for t in tasks.iter().take(8) {
        out.push((
            format!("{}{}", t.prefix, t.suffix),
            t.prefix.chars().count(),
            t.path.clone(),
        ));
    }
    out
}

#[test]
fn every_mode_returns_the_greedy_answer() {
    let model = common::test_model();
    every_mode_matches_plain(model.clone(), model, 12, 32);
}

/// The default pair: the 1.5B target with the 0.5B draft.
#[test]
fn every_mode_returns_the_greedy_answer_with_the_default_target() {
    let target = inkling::config::default_model();
    assert!(
        target.exists(),
        "{} is missing: run scripts/setup.sh",
        target.display()
    );
    every_mode_matches_plain(target, common::test_model(), 6, 24);
}

/// Runs the first `n_prompts` prompts in every mode and compares each with plain decoding.
fn every_mode_matches_plain(
    target: std::path::PathBuf,
    draft: std::path::PathBuf,
    n_prompts: usize,
    max_tokens: usize,
) {
    let mut cfg = EngineConfig::new(target);
    cfg.draft_model = Some(draft);
    // An explicit mode speculates whatever the costs (auto could choose plain decoding here).
    cfg.speculation = Speculation::Draft;
    let engine = Arc::new(Engine::spawn(cfg).expect("target and draft load"));
    assert!(engine.info().draft.is_some());
    // The precondition of exactness, checked bit for bit at start-up: a verification row has the
    // logits of a one-token pass.
    let probe = engine.info().batch_probe.clone().expect("probed");
    assert!(
        probe.exact,
        "verification rows differ from one-token passes: {probe:?}"
    );
    assert!(probe.speculating);
    eprintln!(
        "{}: one-token pass {:.1} ms, three-token pass {:.1} ms",
        engine.info().name,
        probe.one_ms,
        probe.three_ms
    );
    let mut proposed = 0;
    for (text, cursor, path) in prompts().into_iter().take(n_prompts) {
        let rope = Rope::from_str(&text);
        let view = FileView {
            rope: &rope,
            cursor,
            path: &path,
            repo: "spec",
        };
        let run = |mode| {
            let settings = Settings {
                speculation: mode,
                max_tokens,
                time_cap_ms: 3_600_000,
                prefix_tokens: 256,
                suffix_tokens: 64,
                ..Settings::default()
            };
            let c = Completer::new(engine.clone(), settings);
            c.complete_blocking(&view, None, &[], CancelToken::new())
                .unwrap()
                .1
        };
        // Every compared run starts from the same cache state: the prompt as the first run read
        // it, in chunks, with its last token read again alone (KV reuse always re-reads one).
        // A prompt read in other chunks would round differently, in plain decoding too.
        run(Speculation::Off);
        let plain = run(Speculation::Off);
        assert_eq!(plain.timings.draft_proposed, 0);
        for mode in [Speculation::Lookup, Speculation::Draft, Speculation::Auto] {
            let g = run(mode);
            assert_eq!(g.raw, plain.raw, "{mode:?} differs from plain on {path}");
            assert_eq!(g.text, plain.text);
            assert!(g.timings.draft_accepted <= g.timings.draft_proposed);
            proposed += g.timings.draft_proposed;
        }
    }
    assert!(proposed > 0, "speculation was exercised");
}

/// `auto` keeps plain decoding where a verification batch costs nearly as much as its tokens,
/// and then runs with flash attention and without the draft model.
#[test]
fn auto_reports_its_choice() {
    let model = common::test_model();
    let mut cfg = EngineConfig::new(model.clone());
    cfg.draft_model = Some(model);
    cfg.speculation = Speculation::Auto;
    let engine = Engine::spawn(cfg).expect("loads");
    let probe = engine.info().batch_probe.clone().expect("probed");
    assert!(probe.one_ms > 0.0 && probe.three_ms > 0.0, "{probe:?}");
    // Speculation only on trustworthy numbers that show it pays (a noisy probe never does).
    assert_eq!(probe.speculating, probe.pays(), "{probe:?}");
    // The draft model is loaded only when requests will speculate.
    assert_eq!(engine.info().draft.is_some(), probe.speculating);
}

#[test]
fn mismatched_draft_vocabulary_is_refused() {
    // A draft that is not a GGUF at all: refused before anything runs.
    let dir = std::env::temp_dir().join(format!("inkling-spec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bogus = dir.join("draft.gguf");
    std::fs::write(&bogus, b"nope").unwrap();
    let mut cfg = EngineConfig::new(common::test_model());
    cfg.draft_model = Some(bogus);
    cfg.speculation = Speculation::Draft;
    let err = Engine::spawn(cfg).unwrap_err();
    assert!(err.to_string().contains("not a GGUF"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

/// A saved probe never decides for good: one that claims speculation pays (as a probe taken
/// beside another workload once did) is measured again when the engine is idle, and what the
/// new measurement says replaces it.
#[test]
fn a_saved_probe_is_measured_again_in_idle_time() {
    let kv = std::env::temp_dir().join(format!("inkling-reprobe-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&kv);
    let config = || {
        let mut cfg = EngineConfig::new(common::test_model());
        cfg.speculation = Speculation::Auto;
        cfg.kv_dir = Some(kv.clone());
        cfg.reprobe_after_idle = Duration::from_millis(300);
        cfg
    };
    // A first start probes and saves what it measured (a noisy probe is not saved: try again).
    let saved = || {
        std::fs::read_dir(&kv)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("probe-"))
            })
    };
    let mut file = None;
    for _ in 0..5 {
        drop(Engine::spawn(config()).expect("loads"));
        file = saved();
        if file.is_some() {
            break;
        }
    }
    let file = file.expect("a saved probe");
    // Forge the saved probe of a loaded machine: a three-token pass at 1.1 one-token passes.
    let mut forged: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    forged["one_ms"] = 100.0.into();
    forged["three_ms"] = 110.0.into();
    forged["noisy"] = false.into();
    std::fs::write(&file, serde_json::to_vec(&forged).unwrap()).unwrap();
    let engine = Engine::spawn(config()).expect("loads");
    let read = engine.info().batch_probe.clone().unwrap();
    assert!(read.from_cache && read.speculating, "{read:?}");
    // Idle: the engine measures again and saves the new numbers.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let again = loop {
        let p: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        if p["one_ms"].as_f64() != Some(100.0) {
            break p;
        }
        assert!(std::time::Instant::now() < deadline, "not measured again");
        std::thread::sleep(Duration::from_millis(100));
    };
    let one = again["one_ms"].as_f64().unwrap();
    let three = again["three_ms"].as_f64().unwrap();
    assert_eq!(
        again["speculating"].as_bool(),
        Some(inkling::speculative::speculation_pays(one, three)),
        "{again}"
    );
    // The engine keeps answering, with the plain greedy text whatever mode it is in now.
    let text = "def add(a, b):\n    \n";
    let rope = Rope::from_str(text);
    let view = FileView {
        rope: &rope,
        cursor: 19,
        path: "a.py",
        repo: "spec",
    };
    let c = Completer::new(Arc::new(engine.clone()), Settings::default());
    let (_, g) = c
        .complete_blocking(&view, None, &[], CancelToken::new())
        .unwrap();
    assert!(!g.raw.is_empty());
    drop(engine);
    let _ = std::fs::remove_dir_all(kv);
}
