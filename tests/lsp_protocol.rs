//! In-process protocol tests over `tokio::io::duplex`, with a fake generator that echoes the document
//! it was shown (so the tests see exactly what the server holds) or waits until cancelled.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use inkling::engine::{
    CancelToken, EngineError, GenerateRequest, Generation, Generator, StopReason, Timings,
};
use inkling::lsp::client::Client;
use inkling::lsp::{self, Loader};
use serde_json::{Value, json};
use tokio::io::{DuplexStream, ReadHalf, WriteHalf};
use tokio::sync::oneshot;

#[derive(Default)]
struct Counters {
    calls: AtomicUsize,
    cancels: AtomicUsize,
    /// Every prompt the engine was given, as Qwen reads it.
    prompts: std::sync::Mutex<Vec<String>>,
}

/// Echo: returns "{prefix}{typed}|{suffix}" of the prompt. Documents containing SLOW wait for a
/// cancel instead; FIXED documents always get "return value".
struct Fake(Arc<Counters>);

fn between<'a>(s: &'a str, a: &str, b: &str) -> &'a str {
    let start = s.find(a).map_or(0, |i| i + a.len());
    let end = s[start..].find(b).map_or(s.len(), |i| start + i);
    &s[start..end]
}

impl Generator for Fake {
    fn submit(
        &self,
        req: GenerateRequest,
        cancel: CancelToken,
    ) -> oneshot::Receiver<Result<Generation, EngineError>> {
        let (tx, rx) = oneshot::channel();
        self.0.calls.fetch_add(1, Ordering::SeqCst);
        let p = req.prompt.render_qwen();
        self.0.prompts.lock().unwrap().push(p.clone());
        let gen_ = |text: String| Generation {
            raw: text.clone(),
            text,
            stop_reason: StopReason::StopRule,
            timings: Timings::default(),
        };
        if p.contains("SLOW") {
            let counters = Arc::clone(&self.0);
            std::thread::spawn(move || {
                for _ in 0..2000 {
                    if cancel.is_cancelled() {
                        counters.cancels.fetch_add(1, Ordering::SeqCst);
                        let _ = tx.send(Err(EngineError::Cancelled));
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                let _ = tx.send(Ok(gen_("too late".into())));
            });
        } else if p.contains("FIXED") {
            let _ = tx.send(Ok(gen_("return value".into())));
        } else {
            let prefix = between(&p, "<|fim_prefix|>", "<|fim_suffix|>");
            let suffix = between(&p, "<|fim_suffix|>", "<|fim_middle|>");
            let typed = between(&p, "<|fim_middle|>", "\u{0}");
            let _ = tx.send(Ok(gen_(format!("{prefix}{typed}|{suffix}"))));
        }
        rx
    }
    fn name(&self) -> String {
        "fake".into()
    }
}

/// Waits up to a second for the fake engine thread to notice a cancel.
async fn cancels_reach(counters: &Counters, n: usize) {
    for _ in 0..200 {
        if counters.cancels.load(Ordering::SeqCst) >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(counters.cancels.load(Ordering::SeqCst), n);
}

type TestClient = Client<ReadHalf<DuplexStream>, WriteHalf<DuplexStream>>;

fn start_with(loader: Loader) -> TestClient {
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    let (sr, sw) = tokio::io::split(server_io);
    tokio::spawn(lsp::serve(sr, sw, loader));
    let (cr, cw) = tokio::io::split(client_io);
    Client::new(cr, cw)
}

async fn start(counters: Arc<Counters>, capabilities: Value) -> (TestClient, Value) {
    let loader: Loader =
        Arc::new(move |_, _| Ok(Arc::new(Fake(Arc::clone(&counters))) as Arc<dyn Generator>));
    let mut c = start_with(loader);
    let init = c
        .initialize(json!({"debounceMs": 0, "syntax": false}), capabilities)
        .await
        .unwrap();
    c.wait_ready(Duration::from_secs(5)).await.unwrap();
    (c, init)
}

fn echoed(resp: &Value) -> String {
    resp["result"]["items"][0]["insertText"]
        .as_str()
        .unwrap_or_else(|| panic!("no item in {resp}"))
        .to_string()
}

const URI: &str = "file:///work/demo/src/main.py";

#[tokio::test]
async fn capabilities_and_position_encoding() {
    let (_c, init) = start(Default::default(), json!({})).await;
    let caps = &init["result"]["capabilities"];
    assert_eq!(caps["positionEncoding"], "utf-16");
    assert_eq!(caps["inlineCompletionProvider"], true);
    assert_eq!(caps["textDocumentSync"]["change"], 2);
    assert!(caps["completionProvider"].is_object());
    let (_c, init) = start(
        Default::default(),
        json!({"general": {"positionEncodings": ["utf-8", "utf-16"]}}),
    )
    .await;
    assert_eq!(init["result"]["capabilities"]["positionEncoding"], "utf-8");
}

#[tokio::test]
async fn incremental_edits_with_surrogate_pairs_and_crlf() {
    let (mut c, _) = start(Default::default(), json!({})).await;
    c.open(URI, "python", "a😀b\r\nsecond\r\n").await.unwrap();
    // UTF-16: 'a' is 1 unit, the emoji 2: column 3 is between the emoji and 'b'.
    c.change(URI, 2, json!([{"range": {"start": {"line": 0, "character": 3}, "end": {"line": 0, "character": 3}}, "text": "X"}])).await.unwrap();
    // Replace "second" across a CRLF boundary-free range, then insert a new line.
    c.change(URI, 3, json!([
        {"range": {"start": {"line": 1, "character": 0}, "end": {"line": 1, "character": 6}}, "text": "2nd"},
        {"range": {"start": {"line": 2, "character": 0}, "end": {"line": 2, "character": 0}}, "text": "third"}
    ])).await.unwrap();
    let r = c.complete(URI, 0, 4).await.unwrap();
    assert_eq!(echoed(&r), "a😀X|b\r\n2nd\r\nthird");
}

#[tokio::test]
async fn out_of_order_versions_are_refused() {
    let (mut c, _) = start(Default::default(), json!({})).await;
    c.open(URI, "python", "abc\n").await.unwrap();
    c.change(URI, 3, json!([{"range": {"start": {"line": 0, "character": 3}, "end": {"line": 0, "character": 3}}, "text": "3"}])).await.unwrap();
    c.change(URI, 2, json!([{"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}, "text": "2"}])).await.unwrap();
    let r = c.complete(URI, 1, 0).await.unwrap();
    assert_eq!(echoed(&r), "abc3\n|");
}

#[tokio::test]
async fn edit_outside_the_document_waits_for_full_resync() {
    let (mut c, _) = start(Default::default(), json!({})).await;
    c.open(URI, "python", "abc\n").await.unwrap();
    c.change(URI, 2, json!([{"range": {"start": {"line": 9, "character": 0}, "end": {"line": 9, "character": 1}}, "text": "zz"}])).await.unwrap();
    let r = c.complete(URI, 0, 1).await.unwrap();
    assert_eq!(
        r["result"]["items"],
        json!([]),
        "an out-of-sync document gets no suggestion: {r}"
    );
    c.change(URI, 3, json!([{"text": "fresh\n"}]))
        .await
        .unwrap();
    let r = c.complete(URI, 0, 5).await.unwrap();
    assert_eq!(echoed(&r), "fresh|\n");
}

#[tokio::test]
async fn bad_positions_and_documents() {
    let (mut c, _) = start(Default::default(), json!({})).await;
    // Unknown document: an error, not a crash.
    let r = c.inline("file:///nowhere.py", 0, 0).await.unwrap();
    assert_eq!(r["error"]["code"], -32602, "{r}");
    c.open(URI, "python", "a😀b\n").await.unwrap();
    // Past the end of the line and of the file: clamped.
    let r = c.complete(URI, 0, 99).await.unwrap();
    assert_eq!(echoed(&r), "a😀b|\n");
    let r = c.complete(URI, 50, 3).await.unwrap();
    assert_eq!(echoed(&r), "a😀b\n|");
    // Inside the surrogate pair: moved to the start of the character.
    let r = c.complete(URI, 0, 2).await.unwrap();
    assert_eq!(echoed(&r), "a|😀b\n");
    // Invalid params: an error response, and the server keeps going.
    let r = c
        .request("textDocument/inlineCompletion", json!({"textDocument": 5}))
        .await
        .unwrap();
    assert!(r["error"].is_object(), "{r}");
    let r = c.complete(URI, 0, 1).await.unwrap();
    assert_eq!(echoed(&r), "a|😀b\n");
}

#[tokio::test]
async fn huge_and_binary_documents_get_no_suggestion() {
    let counters = Arc::new(Counters::default());
    let (mut c, _) = start(Arc::clone(&counters), json!({})).await;
    // A 50 MB document.
    let huge = "x = 1\n".repeat((50 << 20) / 6);
    c.open("file:///work/demo/huge.py", "python", &huge)
        .await
        .unwrap();
    let r = c.inline("file:///work/demo/huge.py", 10, 0).await.unwrap();
    assert_eq!(
        r["result"],
        Value::Null,
        "{}",
        &r.to_string()[..200.min(r.to_string().len())]
    );
    c.open("file:///work/demo/blob.bin", "plaintext", "ab\u{0}cd")
        .await
        .unwrap();
    let r = c.inline("file:///work/demo/blob.bin", 0, 1).await.unwrap();
    assert_eq!(r["result"], Value::Null);
    assert_eq!(
        counters.calls.load(Ordering::SeqCst),
        0,
        "the model was not asked"
    );
}

#[tokio::test]
async fn did_change_before_did_open() {
    let (mut c, _) = start(Default::default(), json!({})).await;
    c.change(URI, 1, json!([{"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}, "text": "x"}])).await.unwrap();
    let r = c.inline(URI, 0, 0).await.unwrap();
    assert_eq!(
        r["error"]["code"], -32602,
        "incremental change alone does not open it: {r}"
    );
    c.change(URI, 2, json!([{"text": "full text"}]))
        .await
        .unwrap();
    let r = c.complete(URI, 0, 4).await.unwrap();
    assert_eq!(echoed(&r), "full| text");
}

#[tokio::test]
async fn latest_request_cancels_the_previous_engine_job() {
    let counters = Arc::new(Counters::default());
    let (mut c, _) = start(Arc::clone(&counters), json!({})).await;
    c.open(URI, "python", "SLOW = 1\n").await.unwrap();
    let first = c
        .start_request("textDocument/inlineCompletion", json!({"textDocument": {"uri": URI}, "position": {"line": 0, "character": 4}, "context": {"triggerKind": 2}}))
        .await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = c
        .start_request("textDocument/inlineCompletion", json!({"textDocument": {"uri": URI}, "position": {"line": 0, "character": 5}, "context": {"triggerKind": 2}}))
        .await.unwrap();
    let r1 = c.response(first).await.unwrap();
    assert_eq!(
        r1["result"],
        Value::Null,
        "superseded request answers null: {r1}"
    );
    cancels_reach(&counters, 1).await;
    // $/cancelRequest stops the engine job too.
    c.notify("$/cancelRequest", json!({"id": second}))
        .await
        .unwrap();
    let r2 = c.response(second).await.unwrap();
    assert_eq!(r2["error"]["code"], -32800, "{r2}");
    cancels_reach(&counters, 2).await;
}

#[tokio::test]
async fn shutdown_while_a_completion_runs() {
    let counters = Arc::new(Counters::default());
    let (mut c, _) = start(Arc::clone(&counters), json!({})).await;
    c.open(URI, "python", "SLOW = 1\n").await.unwrap();
    let pending = c.start_request("inkling/complete", json!({"textDocument": {"uri": URI}, "position": {"line": 0, "character": 4}, "context": {"triggerKind": 1}})).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let r = tokio::time::timeout(Duration::from_secs(5), c.request("shutdown", Value::Null))
        .await
        .expect("shutdown answers")
        .unwrap();
    assert!(r.get("error").is_none(), "{r}");
    let p = tokio::time::timeout(Duration::from_secs(5), c.response(pending))
        .await
        .expect("pending request ends")
        .unwrap();
    assert!(p.get("result").is_some() || p.get("error").is_some());
    cancels_reach(&counters, 1).await;
}

#[tokio::test]
async fn typed_through_and_completion_items() {
    let counters = Arc::new(Counters::default());
    let (mut c, _) = start(Arc::clone(&counters), json!({})).await;
    c.open(URI, "python", "# FIXED\ndef f():\n    \n")
        .await
        .unwrap();
    let r = c.complete(URI, 2, 4).await.unwrap();
    assert_eq!(r["result"]["source"], "model");
    assert_eq!(echoed(&r), "return value");
    c.change(URI, 2, json!([{"range": {"start": {"line": 2, "character": 4}, "end": {"line": 2, "character": 4}}, "text": "ret"}])).await.unwrap();
    let calls = counters.calls.load(Ordering::SeqCst);
    let r = c.complete(URI, 2, 7).await.unwrap();
    assert_eq!(r["result"]["source"], "typed-through", "{r}");
    assert_eq!(echoed(&r), "urn value");
    assert_eq!(
        r["result"]["items"][0]["range"]["start"],
        json!({"line": 2, "character": 7})
    );
    assert_eq!(
        counters.calls.load(Ordering::SeqCst),
        calls,
        "no model call"
    );
    let stats = c
        .wait_notification("inkling/completionStats", Duration::from_secs(1))
        .await;
    assert!(stats.is_none() || stats.unwrap()["source"].is_string());
    // A completion menu item: label is the first line, the edit replaces the word before the cursor.
    let r = c
        .request("textDocument/completion", json!({"textDocument": {"uri": URI}, "position": {"line": 2, "character": 7}, "context": {"triggerKind": 1}}))
        .await.unwrap();
    let item = &r["result"]["items"][0];
    assert_eq!(item["label"], "return value", "{r}");
    assert_eq!(item["textEdit"]["newText"], "return value");
    assert_eq!(
        item["textEdit"]["range"]["start"],
        json!({"line": 2, "character": 4})
    );
    assert_eq!(item["filterText"], "return value");
    assert_eq!(item["sortText"], "0000");
}

#[tokio::test]
async fn model_load_failure_is_shown_and_the_server_stays_up() {
    let loader: Loader =
        Arc::new(|_, _| Err(EngineError::Load("cannot open model /x.gguf".into())));
    let mut c = start_with(loader);
    c.initialize(json!({}), json!({})).await.unwrap();
    let msg = c
        .wait_notification("window/showMessage", Duration::from_secs(5))
        .await
        .expect("showMessage");
    assert_eq!(msg["type"], 1);
    assert!(msg["message"].as_str().unwrap().contains("/x.gguf"));
    c.open(URI, "python", "x = 1\n").await.unwrap();
    let r = c.inline(URI, 0, 5).await.unwrap();
    assert_eq!(r["result"], Value::Null);
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn configuration_changes_merge_and_reload_only_when_needed() {
    let loads = Arc::new(AtomicUsize::new(0));
    let l2 = Arc::clone(&loads);
    let loader: Loader = Arc::new(move |_, _| {
        l2.fetch_add(1, Ordering::SeqCst);
        Ok(Arc::new(Fake(Arc::default())) as Arc<dyn Generator>)
    });
    let mut c = start_with(loader);
    c.initialize(
        json!({"debounceMs": 0, "maxTokens": 7, "syntax": false}),
        json!({}),
    )
    .await
    .unwrap();
    c.wait_ready(Duration::from_secs(5)).await.unwrap();
    c.open(URI, "python", "x = 1\n").await.unwrap();
    // Only `enable` changes: the other settings stay, and the model is not reloaded.
    c.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"inkling": {"enable": false}}}),
    )
    .await
    .unwrap();
    let r = c.inline(URI, 0, 5).await.unwrap();
    assert_eq!(r["result"], Value::Null);
    c.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"inkling": {"enable": true}}}),
    )
    .await
    .unwrap();
    let r = c.complete(URI, 0, 5).await.unwrap();
    assert_eq!(echoed(&r), "x = 1|\n");
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    // A different model path reloads.
    c.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"inkling": {"model": "/other.gguf"}}}),
    )
    .await
    .unwrap();
    c.wait_ready(Duration::from_secs(5)).await.unwrap();
    assert_eq!(loads.load(Ordering::SeqCst), 2);
    // Invalid settings are reported and ignored.
    c.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"inkling": {"maxTokens": "many"}}}),
    )
    .await
    .unwrap();
    let m = c
        .wait_notification("window/showMessage", Duration::from_secs(5))
        .await
        .expect("warning");
    assert!(
        m["message"].as_str().unwrap().contains("invalid settings"),
        "{m}"
    );
}

/// The newest completion prompt (warm-up prompts end before `<|fim_prefix|>`).
fn last_completion_prompt(counters: &Counters) -> String {
    counters
        .prompts
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|p| p.contains("<|fim_prefix|>"))
        .cloned()
        .unwrap_or_default()
}

/// The repo-context part of a prompt: everything before the current file's header.
fn repo_part<'a>(prompt: &'a str, current: &str) -> &'a str {
    let header = format!("<|file_sep|>{current}\n<|fim_prefix|>");
    prompt.find(&header).map_or(prompt, |i| &prompt[..i])
}

#[tokio::test]
async fn repo_context_is_stable_private_and_follows_file_changes() {
    let dir = std::env::temp_dir().join(format!("inkling-lsp-ctx-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let write = |p: &str, c: &str| {
        let path = dir.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, c).unwrap();
    };
    write("geometry.py", "def area(w, h):\n    return w * h\n");
    write(
        "main.py",
        "from geometry import area\n\nprint(area(2, 3))\n",
    );
    write(".env", "API_KEY=hunter2\n");
    write("secrets.json", "{\"token\": \"hunter2\"}\n");
    write(".gitignore", "scratch.py\n");
    write("scratch.py", "def area(): return 'hunter2'\n");
    let root = format!("file://{}", dir.display());
    let uri = format!("{root}/main.py");

    let counters: Arc<Counters> = Default::default();
    let c2 = Arc::clone(&counters);
    let loader: Loader =
        Arc::new(move |_, _| Ok(Arc::new(Fake(Arc::clone(&c2))) as Arc<dyn Generator>));
    let mut c = start_with(loader);
    c.initialize_in(
        &root,
        json!({"debounceMs": 0, "syntax": false, "persistKv": false}),
        json!({"workspace": {"didChangeWatchedFiles": {"dynamicRegistration": true}}}),
    )
    .await
    .unwrap();
    c.wait_ready(Duration::from_secs(5)).await.unwrap();
    let text = "from geometry import area\n\nprint(area(2, 3))\nx = \n";
    c.open(&uri, "python", text).await.unwrap();
    // The walk runs in the background: wait until the context shows up in prompts.
    // Each round edits right after the cursor, so the suggestion cache cannot answer instead.
    let mut last = String::new();
    let mut version = 1;
    for _ in 0..200 {
        version += 1;
        c.change(&uri, version, json!([{"range": {"start": {"line": 3, "character": 4}, "end": {"line": 3, "character": 4}}, "text": "#"}])).await.unwrap();
        c.complete(&uri, 3, 4).await.unwrap();
        last = last_completion_prompt(&counters);
        if last.contains("<|file_sep|>geometry.py") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        last.starts_with(&format!(
            "<|repo_name|>{}\n<|file_sep|>geometry.py\ndef area(w, h):",
            dir.file_name().unwrap().to_string_lossy()
        )),
        "{last}"
    );
    let before = repo_part(&last, "main.py").to_string();

    // Typing in the file never changes the repo prefix.
    c.change(&uri, version + 1, json!([{"range": {"start": {"line": 3, "character": 4}, "end": {"line": 3, "character": 4}}, "text": "ar"}])).await.unwrap();
    c.complete(&uri, 3, 6).await.unwrap();
    let typed = last_completion_prompt(&counters);
    assert_eq!(repo_part(&typed, "main.py"), before);

    // A changed file on disk, reported by the watcher, reaches the next prompt.
    write(
        "geometry.py",
        "def area(w, h):\n    \"\"\"Rectangle.\"\"\"\n    return w * h\n",
    );
    c.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [{"uri": format!("{root}/geometry.py"), "type": 2}]}),
    )
    .await
    .unwrap();
    c.change(&uri, version + 2, json!([{"range": {"start": {"line": 3, "character": 6}, "end": {"line": 3, "character": 6}}, "text": "e"}])).await.unwrap();
    c.complete(&uri, 3, 7).await.unwrap();
    let changed = last_completion_prompt(&counters);
    assert!(
        repo_part(&changed, "main.py").contains("Rectangle."),
        "{changed}"
    );

    // Secrets and ignored files never reach the engine, not even in warm-up prompts.
    for p in counters.prompts.lock().unwrap().iter() {
        assert!(!p.contains("hunter2"), "{p}");
    }
    let _ = std::fs::remove_dir_all(dir);
}
