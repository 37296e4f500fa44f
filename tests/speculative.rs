//! Exactness: every speculation mode returns what plain greedy decoding returns, with the real
//! model as target and as draft. This is the correctness bar for speculative decoding.

mod common;

use std::sync::Arc;

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
    let mut cfg = EngineConfig::new(model.clone());
    cfg.draft_model = Some(model);
    cfg.flash_attention = false;
    let engine = Arc::new(Engine::spawn(cfg).expect("target and draft load"));
    assert!(engine.info().draft.is_some());
    let mut proposed = 0;
    for (text, cursor, path) in prompts() {
        let rope = Rope::from_str(&text);
        let view = FileView {
            rope: &rope,
            cursor,
            path: &path,
            repo: "spec",
        };
        let run = |mode| {
            // Start every run from the same cache state: results of a batched pass depend on how
            // the prompt was split into batches, in plain decoding too.
            let reset = Rope::from_str("x");
            let other = FileView {
                rope: &reset,
                cursor: 1,
                path: "z",
                repo: "reset",
            };
            let s0 = Settings {
                speculation: Speculation::Off,
                max_tokens: 1,
                ..Settings::default()
            };
            Completer::new(engine.clone(), s0)
                .complete_blocking(&other, None, &[], CancelToken::new())
                .unwrap();
            let settings = Settings {
                speculation: mode,
                max_tokens: 32,
                time_cap_ms: 3_600_000,
                ..Settings::default()
            };
            let c = Completer::new(engine.clone(), settings);
            c.complete_blocking(&view, None, &[], CancelToken::new())
                .unwrap()
                .1
        };
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

#[test]
fn mismatched_draft_vocabulary_is_refused() {
    // A draft that is not a GGUF at all: refused before anything runs.
    let dir = std::env::temp_dir().join(format!("inkling-spec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bogus = dir.join("draft.gguf");
    std::fs::write(&bogus, b"nope").unwrap();
    let mut cfg = EngineConfig::new(common::test_model());
    cfg.draft_model = Some(bogus);
    let err = Engine::spawn(cfg).unwrap_err();
    assert!(err.to_string().contains("not a GGUF"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}
