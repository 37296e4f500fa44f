//! Streaming and warm-at-the-cursor with the real 0.5B through the built `inkling lsp`: a
//! streamed suggestion ends as the plain greedy text, and a warmed cursor (in this process, or
//! from disk after a restart) answers its first keystroke with a few evaluated tokens.

mod common;

use std::time::Duration;

use inkling::lsp::client::{Client, Trigger};
use serde_json::{Value, json};
use tokio::process::{Child, ChildStdin, ChildStdout};

type Real = Client<ChildStdout, ChildStdin>;

async fn server(options: Value) -> (Child, Real) {
    let (child, mut c) = common::spawn_lsp();
    let mut opts = json!({"model": common::test_model(), "debounceMs": 0, "maxTokens": 24, "contextTokens": 0});
    for (k, v) in options.as_object().unwrap() {
        opts[k] = v.clone();
    }
    c.initialize(opts, json!({})).await.unwrap();
    c.wait_ready(Duration::from_secs(180)).await.unwrap();
    (child, c)
}

const TEXT: &str = "def area(width, height):\n    \n\n\nprint(area(3, 4))\n";

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("inkling-stream-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A file long enough that loading its prompt's snapshot beats evaluating it again.
fn long_text() -> String {
    let mut s = String::new();
    for i in 0..40 {
        s += &format!(
            "def scaled_{i}(value):\n    return value * {i} + {}\n\n",
            i * 7
        );
    }
    s + "def area(width, height):\n    \n\n\nprint(area(3, 4))\n"
}

#[tokio::test]
async fn a_streamed_suggestion_ends_as_the_whole_greedy_text() {
    let kv = scratch("kv-streamed");
    // Deadline 0: the first token is answered at once, the rest is written afterwards.
    let (_child, mut c) = server(json!({"answerDeadlineMs": 0, "kvDir": kv})).await;
    let uri = "file:///tmp/inkling-stream/area.py";
    c.open(uri, "python", TEXT).await.unwrap();
    let id = c.start_inline(uri, 1, 4, Trigger::Automatic).await.unwrap();
    let first = c.response(id).await.unwrap();
    let piece = first["result"][0]["insertText"]
        .as_str()
        .expect("a first piece")
        .to_string();
    let stats = c
        .wait_notification("inkling/completionStats", Duration::from_secs(5))
        .await
        .unwrap();
    c.wait_notification("inkling/suggestionDone", Duration::from_secs(120))
        .await
        .expect("the job finishes");
    // Asked again at the same spot: the whole suggestion, from the cache.
    let whole = c.inline(uri, 1, 4).await.unwrap();
    let whole = whole["result"][0]["insertText"]
        .as_str()
        .expect("the whole suggestion")
        .to_string();
    assert!(whole.starts_with(&piece), "{piece:?} then {whole:?}");
    if stats["streaming"] == true {
        assert!(whole.len() > piece.len(), "{piece:?} then {whole:?}");
    }

    // The same prompt without streaming: the same text.
    c.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"inkling": {"streaming": false}}}),
    )
    .await
    .unwrap();
    c.notify(
        "textDocument/didClose",
        json!({"textDocument": {"uri": uri}}),
    )
    .await
    .unwrap();
    c.open(uri, "python", TEXT).await.unwrap();
    let plain = c.complete(uri, 1, 4).await.unwrap();
    assert_eq!(plain["result"]["source"], "model", "{plain}");
    assert_eq!(
        plain["result"]["items"][0]["insertText"].as_str(),
        Some(whole.as_str()),
        "{plain}"
    );
}

/// Types one character at `(line, col)` and asks `inkling/complete` after it; returns the
/// tokens the engine evaluated for it.
async fn first_keystroke(c: &mut Real, uri: &str, line: u32, col: u32, ch: &str) -> u64 {
    c.change(uri, 2, json!([{"range": {"start": {"line": line, "character": col}, "end": {"line": line, "character": col}}, "text": ch}]))
        .await
        .unwrap();
    let r = c.complete(uri, line, col + 1).await.unwrap();
    assert_eq!(r["result"]["source"], "model", "{r}");
    r["result"]["timings"]["evaluated_tokens"]
        .as_u64()
        .expect("timings")
}

async fn warmed(c: &mut Real) -> Value {
    c.wait_notification("inkling/warmed", Duration::from_secs(120))
        .await
        .expect("the cursor is warmed")
}

#[tokio::test]
async fn a_warmed_cursor_answers_its_first_keystroke_with_a_few_tokens() {
    let kv = scratch("kv-warm");
    let dir = scratch("src-warm");
    let file = dir.join("area.py");
    let text = long_text();
    let line = text.lines().count() as u32 - 4;
    std::fs::write(&file, &text).unwrap();
    let uri = format!("file://{}", file.display());
    let (mut child, mut c) = server(json!({"kvDir": kv})).await;
    c.open(&uri, "python", &text).await.unwrap();
    c.notify(
        "inkling/cursor",
        json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": 4}}),
    )
    .await
    .unwrap();
    let w = warmed(&mut c).await;
    assert!(w["promptTokens"].as_u64().unwrap() > 200, "{w}");
    // Saving keeps the prompt at the cursor on disk for the next start.
    c.notify(
        "textDocument/didSave",
        json!({"textDocument": {"uri": uri}}),
    )
    .await
    .unwrap();
    warmed(&mut c).await;
    let evaluated = first_keystroke(&mut c, &uri, line, 4, "r").await;
    assert!(
        evaluated <= 3,
        "{evaluated} tokens evaluated after a warm-up"
    );
    c.shutdown().await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;

    // A restart: opening the file warms its last cursor from the snapshot on disk.
    assert!(kv.join("cursors.json").exists());
    let (_child, mut c) = server(json!({"kvDir": kv})).await;
    c.open(&uri, "python", &text).await.unwrap();
    let w = warmed(&mut c).await;
    assert_eq!(w["position"], json!({"line": line, "character": 4}), "{w}");
    assert_eq!(
        w["loadedTokens"], w["promptTokens"],
        "loaded from disk: {w}"
    );
    assert_eq!(w["evaluatedTokens"], 0, "{w}");
    let evaluated = first_keystroke(&mut c, &uri, line, 4, "r").await;
    assert!(
        evaluated <= 3,
        "{evaluated} tokens evaluated after a restart"
    );
    let _ = std::fs::remove_dir_all(&kv);
    let _ = std::fs::remove_dir_all(&dir);
}
