//! The engine with the real 0.5B model: FIM answers, KV reuse, cancellation, bad model files.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use inkling::complete::Completer;
use inkling::config::Settings;
use inkling::engine::{CancelToken, Engine, EngineConfig, EngineError, GenerateRequest};
use inkling::prompt::{self, FileView};
use inkling::stop::StopRules;
use ropey::Rope;

fn completer() -> Completer {
    Completer::new(Arc::new(common::engine().clone()), Settings::default())
}

fn complete(fixture: &str, path: &str) -> inkling::engine::Generation {
    let (text, cursor) = prompt::split_cursor(fixture);
    let rope = Rope::from_str(&text);
    let view = FileView {
        rope: &rope,
        cursor,
        path,
        repo: "tests",
    };
    completer()
        .complete_blocking(&view, None, &[], CancelToken::new())
        .expect("completion")
        .1
}

#[test]
fn fills_python_function_body() {
    let g = complete(
        "def add(a, b):\n    $0\n\n\nprint(add(1, 2))\n",
        "math_utils.py",
    );
    assert!(
        g.text.trim_start().starts_with("return a + b"),
        "got {:?} (raw {:?})",
        g.text,
        g.raw
    );
    // The indentation rule ends the body: nothing at the outer level follows.
    assert!(!g.text.contains("\nprint"), "{:?}", g.text);
}

#[test]
fn fills_rust_return_expression() {
    let g = complete(
        "/// Returns the larger of two numbers.\nfn max(a: i32, b: i32) -> i32 {\n    if a > b { a } else { $0 }\n}\n",
        "src/lib.rs",
    );
    assert_eq!(g.text.trim(), "b", "raw {:?}", g.raw);
}

#[test]
fn second_request_reuses_the_kv_cache() {
    let c = completer();
    let (text, cursor) = prompt::split_cursor("def greet(name):\n    return 'hello ' + $0\n");
    let mut rope = Rope::from_str(&text);
    let view = FileView {
        rope: &rope,
        cursor,
        path: "greet.py",
        repo: "tests",
    };
    let (plan, first) = c
        .complete_blocking(&view, None, &[], CancelToken::new())
        .unwrap();
    // Type one character: the prompt only grows at its end.
    rope.insert(cursor, "n");
    let view = FileView {
        rope: &rope,
        cursor: cursor + 1,
        path: "greet.py",
        repo: "tests",
    };
    let (_, second) = c
        .complete_blocking(&view, Some(&plan.anchor), &[], CancelToken::new())
        .unwrap();
    let t = &second.timings;
    assert!(
        t.reused_tokens + 3 >= first.timings.prompt_tokens,
        "{t:?} after {:?}",
        first.timings
    );
    assert!(
        t.evaluated_tokens <= 3,
        "evaluated {} tokens: {t:?}",
        t.evaluated_tokens
    );
    assert_eq!(t.reused_tokens + t.evaluated_tokens, t.prompt_tokens);
}

#[test]
fn cancel_stops_a_long_generation() {
    let engine = common::engine();
    // A prompt that invites a long answer, with no stop rule to end it.
    let (text, cursor) =
        prompt::split_cursor("# A list of the first 500 prime numbers\nPRIMES = [$0\n");
    let rope = Rope::from_str(&text);
    let view = FileView {
        rope: &rope,
        cursor,
        path: "primes.py",
        repo: "tests",
    };
    let plan = prompt::plan(&view, &Default::default(), &[], None);
    let req = |max| GenerateRequest::new(plan.prompt.clone(), StopRules::default(), max);
    // Reference: how long 200 tokens take uncancelled.
    let t = Instant::now();
    let full = engine
        .generate_blocking(req(200), CancelToken::new())
        .unwrap();
    let full_ms = t.elapsed().as_millis();
    assert!(full.timings.generated_tokens >= 100, "{:?}", full.timings);
    let cancel = CancelToken::new();
    let rx = engine.submit(req(200), cancel.clone());
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    cancel.cancel();
    let r = rx.blocking_recv().unwrap();
    let after_cancel = t.elapsed().as_millis();
    assert!(matches!(r, Err(EngineError::Cancelled)), "{r:?}");
    // Stopping takes about one decode step, far less than the rest of the generation.
    assert!(
        after_cancel * 4 < full_ms,
        "cancel took {after_cancel} ms; a full run {full_ms} ms"
    );
}

#[test]
fn missing_and_non_gguf_models_are_clear_errors() {
    let err = Engine::spawn(EngineConfig::new("/nonexistent/model.gguf".into())).unwrap_err();
    assert!(matches!(err, EngineError::Load(_)));
    assert!(err.to_string().contains("/nonexistent/model.gguf"), "{err}");
    let dir = std::env::temp_dir().join(format!("inkling-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bogus = dir.join("bogus.gguf");
    std::fs::write(&bogus, b"this is not a model").unwrap();
    let err = Engine::spawn(EngineConfig::new(bogus.clone())).unwrap_err();
    assert!(err.to_string().contains("not a GGUF"), "{err}");
    // A truncated GGUF: right magic, nothing after it.
    std::fs::write(&bogus, b"GGUF\x03\x00\x00\x00").unwrap();
    let err = Engine::spawn(EngineConfig::new(bogus)).unwrap_err();
    assert!(err.to_string().contains("cannot load model"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn prompt_too_long_for_context_is_an_error_not_a_crash() {
    let engine = common::engine();
    let huge: String = (0..3000).map(|i| format!("value_{i} = {i}\n")).collect();
    let prompt = prompt::Prompt {
        pieces: vec![
            prompt::Piece::FimPrefix,
            prompt::Piece::Text(huge),
            prompt::Piece::FimMiddle,
        ],
    };
    let req = GenerateRequest::new(prompt, StopRules::default(), 8);
    let r = engine.generate_blocking(req, CancelToken::new());
    assert!(matches!(r, Err(EngineError::Prompt(_))), "{r:?}");
}
