//! What a hostile or merely unusual client sends, over `tokio::io::duplex` with a fake engine:
//! broken frames and messages get their JSON-RPC answer and the server keeps serving; headers in
//! any case; `exit` without `shutdown`; unknown `$/` requests; a client that never answers the
//! progress request; one bad setting among good ones; secrets never become a prompt.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use inkling::engine::{
    CancelToken, EngineError, GenerateRequest, Generation, Generator, StopReason, Timings,
};
use inkling::lsp::client::{Client, read_message};
use inkling::lsp::{self, Loader};
use serde_json::{Value, json};
use tokio::io::{AsyncWriteExt, BufReader, DuplexStream, ReadHalf, WriteHalf};
use tokio::sync::oneshot;

/// Answers every prompt with "ok" and keeps the prompts it saw.
struct Echo(Arc<Mutex<Vec<String>>>);

impl Generator for Echo {
    fn submit(
        &self,
        req: GenerateRequest,
        _: CancelToken,
    ) -> oneshot::Receiver<Result<Generation, EngineError>> {
        self.0.lock().unwrap().push(req.prompt.render_qwen());
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(Ok(Generation {
            text: "ok".into(),
            raw: "ok".into(),
            stop_reason: StopReason::EndOfText,
            timings: Timings::default(),
        }));
        rx
    }
    fn name(&self) -> String {
        "echo".into()
    }
}

fn echo_loader(prompts: Arc<Mutex<Vec<String>>>) -> Loader {
    Arc::new(move |_, _| Ok(Arc::new(Echo(Arc::clone(&prompts))) as Arc<dyn Generator>))
}

/// The raw streams of a server: bytes in, frames out; and the task that says how it ended.
struct Raw {
    to_server: WriteHalf<DuplexStream>,
    from_server: BufReader<ReadHalf<DuplexStream>>,
    served: tokio::task::JoinHandle<bool>,
}

fn raw_server(loader: Loader) -> Raw {
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    let (sr, sw) = tokio::io::split(server_io);
    let served = tokio::spawn(lsp::serve(sr, sw, loader));
    let (cr, cw) = tokio::io::split(client_io);
    Raw {
        to_server: cw,
        from_server: BufReader::new(cr),
        served,
    }
}

impl Raw {
    async fn send(&mut self, bytes: &[u8]) {
        self.to_server.write_all(bytes).await.unwrap();
        self.to_server.flush().await.unwrap();
    }

    async fn frame(&mut self, body: &str) {
        self.send(format!("Content-Length: {}\r\n\r\n{body}", body.len()).as_bytes())
            .await;
    }

    /// The next message that is not a notification or a server request.
    async fn response(&mut self) -> Value {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let m = read_message(&mut self.from_server).await.unwrap();
                if m.get("method").is_none() {
                    return m;
                }
            }
        })
        .await
        .expect("an answer within 10 s")
    }

    async fn initialize(&mut self) {
        self.frame(
            r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"capabilities":{}}}"#,
        )
        .await;
        assert_eq!(self.response().await["id"], 0);
        self.frame(r#"{"jsonrpc":"2.0","method":"initialized","params":{}}"#)
            .await;
    }
}

#[tokio::test]
async fn broken_messages_are_answered_and_the_server_keeps_serving() {
    let mut s = raw_server(echo_loader(Arc::default()));
    s.initialize().await;
    let framed = |body: &[u8]| {
        let mut f = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        f.extend_from_slice(body);
        f
    };
    let broken: Vec<(Vec<u8>, i64)> = vec![
        (framed(b"{not json"), -32700),
        (framed(b"[]"), -32600),
        (framed(b"42"), -32600),
        (framed(b"null"), -32600),
        (framed(b"\xff\xfe"), -32700),
        (framed(br#"{"jsonrpc":"1.0","id":9,"method":"x"}"#), -32600),
        (
            framed(br#"{"jsonrpc":"2.0","id":1.5,"method":"x"}"#),
            -32600,
        ),
        (framed(br#"{"id":2,"method":"x"}"#), -32600),
        (b"Content-Length: -5\r\n\r\n".to_vec(), -32700),
        (
            b"Content-Length: 99999999999999999999999\r\n\r\n".to_vec(),
            -32700,
        ),
    ];
    for (bytes, code) in &broken {
        s.send(bytes).await;
        let a = s.response().await;
        assert_eq!(
            a["error"]["code"],
            *code,
            "{a} for {}",
            String::from_utf8_lossy(bytes)
        );
    }
    // Garbage between frames, and a body longer than its header says.
    s.send(b"\x00\x01garbage\r\n\r\n").await;
    s.send(b"Content-Length: 2\r\n\r\n{}xyz").await;
    assert_eq!(s.response().await["error"]["code"], -32600);
    // Still serving: a valid request gets its answer.
    s.frame(r#"{"jsonrpc":"2.0","id":"after","method":"shutdown"}"#)
        .await;
    let a = s.response().await;
    assert_eq!(a["id"], "after");
    assert!(a.get("error").is_none(), "{a}");
}

#[tokio::test]
async fn a_short_body_does_not_lose_the_next_message() {
    let mut s = raw_server(echo_loader(Arc::default()));
    s.initialize().await;
    // This frame claims 40 bytes but has 12: its body swallows the next frame's header.
    s.send(b"Content-Length: 40\r\n\r\n{\"jsonrpc\":1}").await;
    s.frame(r#"{"jsonrpc":"2.0","id":5,"method":"shutdown"}"#)
        .await;
    let first = s.response().await;
    assert_eq!(first["error"]["code"], -32700, "{first}");
    let second = s.response().await;
    assert_eq!(second["id"], 5, "{second}");
}

#[tokio::test]
async fn headers_are_case_insensitive_and_content_type_is_optional() {
    let mut s = raw_server(echo_loader(Arc::default()));
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"capabilities":{}}}"#;
    let headers = [
        format!("content-length: {}\r\n\r\n", body.len()),
        format!(
            "Content-Length: {}\r\nContent-Type: application/vscode-jsonrpc\r\n\r\n",
            body.len()
        ),
        format!(
            "CONTENT-LENGTH: {}\r\ncontent-type: application/vscode-jsonrpc; charset=UTF-8\r\nX-Extra: yes\r\n\r\n",
            body.len()
        ),
    ];
    for (i, h) in headers.iter().enumerate() {
        let body = body.replace("\"id\":1", &format!("\"id\":{}", i + 1));
        s.send(format!("{h}{body}").as_bytes()).await;
        let a = s.response().await;
        assert_eq!(a["id"], i + 1, "{a}");
    }
}

#[tokio::test]
async fn unknown_dollar_requests_get_method_not_found() {
    let mut s = raw_server(echo_loader(Arc::default()));
    s.initialize().await;
    s.frame(r#"{"jsonrpc":"2.0","id":3,"method":"$/unknownRequest","params":{}}"#)
        .await;
    let a = s.response().await;
    assert_eq!(a["error"]["code"], -32601, "{a}");
    assert_eq!(a["id"], 3);
    // Unknown `$/` notifications are ignored, as the spec allows.
    s.frame(r#"{"jsonrpc":"2.0","method":"$/unknownNotification"}"#)
        .await;
    s.frame(r#"{"jsonrpc":"2.0","id":4,"method":"shutdown"}"#)
        .await;
    assert_eq!(s.response().await["id"], 4);
}

#[tokio::test]
async fn exit_without_shutdown_is_a_failure() {
    let mut s = raw_server(echo_loader(Arc::default()));
    s.frame(r#"{"jsonrpc":"2.0","method":"exit"}"#).await;
    assert!(!s.served.await.unwrap(), "exit before initialize");
    let mut s = raw_server(echo_loader(Arc::default()));
    s.initialize().await;
    s.frame(r#"{"jsonrpc":"2.0","method":"exit"}"#).await;
    assert!(!s.served.await.unwrap(), "exit without shutdown");
    let mut s = raw_server(echo_loader(Arc::default()));
    s.initialize().await;
    s.frame(r#"{"jsonrpc":"2.0","id":1,"method":"shutdown"}"#)
        .await;
    assert_eq!(s.response().await["id"], 1);
    s.frame(r#"{"jsonrpc":"2.0","method":"exit"}"#).await;
    assert!(s.served.await.unwrap(), "exit after shutdown");
}

type TestClient = Client<ReadHalf<DuplexStream>, WriteHalf<DuplexStream>>;

/// Types `text` at (line, character) as version `version`.
async fn type_at(
    c: &mut TestClient,
    uri: &str,
    version: u32,
    line: u32,
    character: u32,
    text: &str,
) {
    let p = json!({"line": line, "character": character});
    c.change(
        uri,
        version as i32,
        json!([{"range": {"start": p, "end": p}, "text": text}]),
    )
    .await
    .unwrap();
}

fn client(loader: Loader) -> TestClient {
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    let (sr, sw) = tokio::io::split(server_io);
    tokio::spawn(lsp::serve(sr, sw, loader));
    let (cr, cw) = tokio::io::split(client_io);
    Client::new(cr, cw)
}

#[tokio::test]
async fn a_client_that_never_answers_the_progress_request_still_gets_a_model() {
    let mut c = client(echo_loader(Arc::default()));
    c.request(
        "initialize",
        json!({"capabilities": {"window": {"workDoneProgress": true}}}),
    )
    .await
    .unwrap();
    c.notify("initialized", json!({})).await.unwrap();
    // `recv` answers nothing: the progress request stays unanswered.
    let ready = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let m = c.recv().await.unwrap();
            if m["method"] == "inkling/status" && m["params"]["state"] == "ready" {
                return;
            }
        }
    })
    .await;
    assert!(ready.is_ok(), "the model became ready");
}

#[tokio::test]
async fn one_bad_setting_does_not_discard_the_others() {
    let seen: Arc<Mutex<Vec<(String, usize)>>> = Arc::default();
    let s2 = Arc::clone(&seen);
    let prompts: Arc<Mutex<Vec<String>>> = Arc::default();
    let loader: Loader = Arc::new(move |settings, _| {
        s2.lock().unwrap().push((
            settings.model_path().display().to_string(),
            settings.context_size as usize,
        ));
        Ok(Arc::new(Echo(Arc::clone(&prompts))) as Arc<dyn Generator>)
    });
    let mut c = client(loader);
    c.initialize(
        json!({"model": "/models/mine.gguf", "maxTokens": "many", "contextSize": 99999999}),
        json!({}),
    )
    .await
    .unwrap();
    c.wait_ready(Duration::from_secs(5)).await.unwrap();
    let (model, ctx) = seen.lock().unwrap()[0].clone();
    assert_eq!(model, "/models/mine.gguf");
    assert_eq!(ctx, inkling::config::MAX_CONTEXT_SIZE as usize, "clamped");
    let m = c
        .wait_notification("window/showMessage", Duration::from_secs(5))
        .await
        .expect("a warning");
    let text = m["message"].as_str().unwrap();
    assert!(
        text.contains("maxTokens") && text.contains("contextSize"),
        "{text}"
    );
    assert!(!text.contains("model:"), "{text}");
}

#[tokio::test]
async fn secrets_never_become_a_prompt() {
    let dir = std::env::temp_dir().join(format!("inkling-secret-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(".env"), "API_KEY=hunter2\n").unwrap();
    std::os::unix::fs::symlink(dir.join(".env"), dir.join("notes.py")).unwrap();
    let prompts: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut c = client(echo_loader(Arc::clone(&prompts)));
    let root = format!("file://{}", dir.display());
    c.initialize_in(
        &root,
        json!({"debounceMs": 0, "persistKv": false}),
        json!({}),
    )
    .await
    .unwrap();
    c.wait_ready(Duration::from_secs(5)).await.unwrap();
    for name in [".env", "app.env", "notes.py"] {
        let uri = format!("{root}/{name}");
        c.open(&uri, "python", "API_KEY=hunter2\n").await.unwrap();
        let r = c.inline(&uri, 0, 8).await.unwrap();
        assert!(r["result"].is_null(), "{name}: {r}");
    }
    // A plain file next to them still completes.
    let uri = format!("{root}/main.py");
    c.open(&uri, "python", "x = \n").await.unwrap();
    let r = c.inline(&uri, 0, 4).await.unwrap();
    assert_eq!(r["result"][0]["insertText"], "ok", "{r}");
    for p in prompts.lock().unwrap().iter() {
        assert!(!p.contains("hunter2"), "{p}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A burst of keystrokes, each with a completion request, sent at once: every request is
/// answered, the last with a suggestion, and stale requests are dropped before they reach the
/// engine instead of piling up there.
#[tokio::test]
async fn a_burst_of_keystrokes_drops_stale_work() {
    let prompts: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut c = client(echo_loader(Arc::clone(&prompts)));
    c.initialize(json!({"persistKv": false}), json!({}))
        .await
        .unwrap();
    c.wait_ready(Duration::from_secs(5)).await.unwrap();
    let uri = "file:///work/demo/burst.py";
    c.open(uri, "python", "x = \n").await.unwrap();
    let n: u32 = 2000;
    let mut ids = Vec::new();
    for k in 0..n {
        type_at(&mut c, uri, k + 2, 0, 4 + k, "a").await;
        if let Some(last) = ids.last() {
            c.notify("$/cancelRequest", json!({"id": last}))
                .await
                .unwrap();
        }
        let id = c
            .start_request(
                "textDocument/inlineCompletion",
                json!({"textDocument": {"uri": uri}, "position": {"line": 0, "character": 5 + k}, "context": {"triggerKind": 2}}),
            )
            .await
            .unwrap();
        ids.push(id);
    }
    let mut last = Value::Null;
    for id in &ids {
        last = c.response(*id).await.expect("every request is answered");
    }
    assert_eq!(last["result"][0]["insertText"], "ok", "{last}");
    let reached = prompts.lock().unwrap().len();
    assert!(
        reached <= n as usize / 10,
        "{reached} of {n} requests reached the engine"
    );
}

/// A 1.9 MB file: opened, completed in, and typed into, with every keystroke's request answered.
#[tokio::test]
async fn a_large_file_answers_every_keystroke() {
    let mut c = client(echo_loader(Arc::default()));
    c.initialize(json!({"persistKv": false, "debounceMs": 0}), json!({}))
        .await
        .unwrap();
    c.wait_ready(Duration::from_secs(5)).await.unwrap();
    let block = "def f(a, b):\n    total = a + b\n    return total\n\n\n";
    let mut text = block.repeat(1_900_000 / block.len());
    text.push_str("x = ");
    let line = text.matches('\n').count() as u32;
    let uri = "file:///work/demo/big.py";
    c.open(uri, "python", &text).await.unwrap();
    let first = c.inline(uri, line, 4).await.unwrap();
    assert_eq!(first["result"][0]["insertText"], "ok", "{first}");
    for k in 0..300u32 {
        type_at(&mut c, uri, k + 2, line, 4 + k, "a").await;
        let r = c.inline(uri, line, 5 + k).await.unwrap();
        assert!(r.get("error").is_none(), "{r}");
    }
}
