//! A minimal LSP client (Content-Length framing over any async byte streams), used by
//! `inkling bench replay` to drive the server as an editor would, and by the protocol tests.
//!
//! Two ways to use it. [`Client`] reads and writes in one place and waits for each answer, which
//! suits tests. `bench replay` needs to keep typing while requests are in flight and to time each
//! answer, so it takes the halves apart: a [`Writer`] with the same typed messages, and
//! [`spawn_reader`], a task that reads frames (which is not cancel-safe, so it cannot sit inside a
//! `select!` or a timeout) and forwards each message with the instant it was read. Every message
//! is built by the free functions below, whichever half sends it.

use std::collections::VecDeque;
use std::io::{Error, ErrorKind, Result};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// Writes one frame around an already serialized body.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, body: &[u8]) -> Result<()> {
    let header = format!("Content-Length: {}\r\n\r\n", body.len());
    w.write_all(header.as_bytes()).await?;
    w.write_all(body).await?;
    w.flush().await
}

/// Writes one framed message.
pub async fn write_message<W: AsyncWrite + Unpin>(w: &mut W, msg: &Value) -> Result<()> {
    write_frame(w, &serde_json::to_vec(msg)?).await
}

/// Reads one framed message. Not cancel-safe: run it in a task of its own to select on it.
pub async fn read_message<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> Result<Value> {
    let mut len = None;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await? == 0 {
            return Err(Error::new(
                ErrorKind::UnexpectedEof,
                "server closed the stream",
            ));
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Content-Length: ") {
            len = v.parse::<usize>().ok();
        }
    }
    let len =
        len.ok_or_else(|| Error::new(ErrorKind::InvalidData, "message without Content-Length"))?;
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    Ok(serde_json::from_slice(&body)?)
}

/// A request message.
pub fn request_message(id: i64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// A notification message.
pub fn notification_message(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "method": method, "params": params})
}

/// A successful response to a server request.
pub fn response_message(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// `initialize` params: no process id, no client capabilities beyond `capabilities`.
pub fn initialize_params(root_uri: &str, init_options: Value, capabilities: Value) -> Value {
    json!({"processId": null, "rootUri": root_uri, "capabilities": capabilities, "initializationOptions": init_options})
}

/// An incremental content change that inserts `text` at (line, character) without replacing
/// anything, which is what one keystroke sends.
pub fn insert_change(line: u32, character: u32, text: &str) -> Value {
    let at = json!({"line": line, "character": character});
    json!({"range": {"start": at, "end": at}, "text": text})
}

/// How a completion was asked for (LSP `InlineCompletionTriggerKind`; `inkling/complete` takes
/// the same context).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The user asked explicitly.
    Invoked = 1,
    /// The editor asked on its own while the user typed.
    Automatic = 2,
}

/// Params of `textDocument/inlineCompletion` and `inkling/complete`.
pub fn completion_params(uri: &str, line: u32, character: u32, trigger: Trigger) -> Value {
    json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": character}, "context": {"triggerKind": trigger as u8}})
}

/// A message read by [`spawn_reader`], with the instant it was read (for latency measurements).
pub type Incoming = mpsc::UnboundedReceiver<(Instant, Value)>;

/// Spawns a task that reads messages until the stream ends (or fails, or the receiver is
/// dropped) and forwards them. Server requests are not answered.
pub fn spawn_reader<R: AsyncRead + Unpin + Send + 'static>(reader: R) -> Incoming {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut reader = BufReader::new(reader);
    tokio::spawn(async move {
        while let Ok(m) = read_message(&mut reader).await {
            if tx.send((Instant::now(), m)).is_err() {
                break;
            }
        }
    });
    rx
}

/// The writing half: sends typed messages and numbers requests, but never waits for an answer.
pub struct Writer<W> {
    writer: W,
    next_id: i64,
}

impl<W: AsyncWrite + Unpin> Writer<W> {
    /// A writer whose first request gets id `first_id`.
    pub fn new(writer: W, first_id: i64) -> Self {
        Writer {
            writer,
            next_id: first_id,
        }
    }

    pub async fn send(&mut self, msg: &Value) -> Result<()> {
        write_message(&mut self.writer, msg).await
    }

    pub async fn send_raw(&mut self, body: &[u8]) -> Result<()> {
        write_frame(&mut self.writer, body).await
    }

    pub async fn notify(&mut self, method: &str, params: Value) -> Result<()> {
        self.send(&notification_message(method, params)).await
    }

    /// Sends a request and returns its id.
    pub async fn start_request(&mut self, method: &str, params: Value) -> Result<i64> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&request_message(id, method, params)).await?;
        Ok(id)
    }

    /// Accepts a server request with a null result.
    pub async fn accept(&mut self, id: &Value) -> Result<()> {
        self.send(&response_message(id, Value::Null)).await
    }

    /// Sends `initialize` with the workspace root `root_uri`; `initialized` must follow its answer.
    pub async fn start_initialize(
        &mut self,
        root_uri: &str,
        init_options: Value,
        capabilities: Value,
    ) -> Result<i64> {
        let params = initialize_params(root_uri, init_options, capabilities);
        self.start_request("initialize", params).await
    }

    pub async fn initialized(&mut self) -> Result<()> {
        self.notify("initialized", json!({})).await
    }

    /// Opens a document at version 1.
    pub async fn open(&mut self, uri: &str, lang: &str, text: &str) -> Result<()> {
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": lang, "version": 1, "text": text}}),
        )
        .await
    }

    /// Sends `changes` (an array of content changes) as `version` of the document.
    pub async fn change(&mut self, uri: &str, version: i32, changes: Value) -> Result<()> {
        self.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": changes}),
        )
        .await
    }

    /// Inserts `text` at (line, character), the change one keystroke makes.
    pub async fn insert(
        &mut self,
        uri: &str,
        version: i32,
        line: u32,
        character: u32,
        text: &str,
    ) -> Result<()> {
        let change = insert_change(line, character, text);
        self.change(uri, version, json!([change])).await
    }

    pub async fn close(&mut self, uri: &str) -> Result<()> {
        self.notify(
            "textDocument/didClose",
            json!({"textDocument": {"uri": uri}}),
        )
        .await
    }

    pub async fn cancel_request(&mut self, id: i64) -> Result<()> {
        self.notify("$/cancelRequest", json!({"id": id})).await
    }

    /// Asks for an inline completion and returns the request id.
    pub async fn start_inline(
        &mut self,
        uri: &str,
        line: u32,
        character: u32,
        trigger: Trigger,
    ) -> Result<i64> {
        let params = completion_params(uri, line, character, trigger);
        self.start_request("textDocument/inlineCompletion", params)
            .await
    }

    pub async fn start_shutdown(&mut self) -> Result<i64> {
        self.start_request("shutdown", Value::Null).await
    }

    pub async fn exit(&mut self) -> Result<()> {
        self.notify("exit", Value::Null).await
    }
}

/// Reads and writes in one place: each call that wants an answer reads until it comes, keeping
/// whatever else arrives in [`Client::inbox`].
pub struct Client<R, W> {
    reader: BufReader<R>,
    writer: Writer<W>,
    /// Notifications and server requests seen while waiting for responses.
    pub inbox: VecDeque<Value>,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Client<R, W> {
    pub fn new(reader: R, writer: W) -> Self {
        Client {
            reader: BufReader::new(reader),
            writer: Writer::new(writer, 1),
            inbox: VecDeque::new(),
        }
    }

    pub async fn send(&mut self, msg: &Value) -> Result<()> {
        self.writer.send(msg).await
    }

    pub async fn send_raw(&mut self, body: &[u8]) -> Result<()> {
        self.writer.send_raw(body).await
    }

    /// Reads the next message, answering nothing.
    pub async fn recv(&mut self) -> Result<Value> {
        read_message(&mut self.reader).await
    }

    /// Reads the next message; requests from the server are accepted with a null result.
    pub async fn next_message(&mut self) -> Result<Value> {
        let msg = self.recv().await?;
        if msg.get("method").is_some() && msg.get("id").is_some() {
            self.writer.accept(&msg["id"]).await?;
        }
        Ok(msg)
    }

    pub async fn notify(&mut self, method: &str, params: Value) -> Result<()> {
        self.writer.notify(method, params).await
    }

    /// Sends a request and returns its id without waiting.
    pub async fn start_request(&mut self, method: &str, params: Value) -> Result<i64> {
        self.writer.start_request(method, params).await
    }

    /// Waits for the response to `id`, keeping other messages in the inbox.
    pub async fn response(&mut self, id: i64) -> Result<Value> {
        if let Some(i) = self.inbox.iter().position(|m| {
            m.get("id").and_then(Value::as_i64) == Some(id) && m.get("method").is_none()
        }) {
            return Ok(self.inbox.remove(i).unwrap_or_default());
        }
        let wait = async {
            loop {
                let msg = self.next_message().await?;
                if msg.get("id").and_then(Value::as_i64) == Some(id) && msg.get("method").is_none()
                {
                    return Ok(msg);
                }
                self.inbox.push_back(msg);
            }
        };
        tokio::time::timeout(Duration::from_secs(120), wait)
            .await
            .map_err(|_| {
                Error::new(
                    ErrorKind::TimedOut,
                    format!("no response to request {id} in 120 s"),
                )
            })?
    }

    pub async fn request(&mut self, method: &str, params: Value) -> Result<Value> {
        let id = self.start_request(method, params).await?;
        self.response(id).await
    }

    /// Waits for a notification with this method and returns its params.
    pub async fn wait_notification(&mut self, method: &str, timeout: Duration) -> Option<Value> {
        if let Some(i) = self.inbox.iter().position(|m| m["method"] == method) {
            return self.inbox.remove(i).map(|m| m["params"].clone());
        }
        let wait = async {
            loop {
                let msg = self.next_message().await.ok()?;
                if msg["method"] == method {
                    return Some(msg["params"].clone());
                }
                self.inbox.push_back(msg);
            }
        };
        tokio::time::timeout(timeout, wait).await.ok().flatten()
    }

    pub async fn initialize(&mut self, init_options: Value, capabilities: Value) -> Result<Value> {
        self.initialize_in("file:///work/demo", init_options, capabilities)
            .await
    }

    /// `initialize` + `initialized` with the workspace root `root_uri`.
    pub async fn initialize_in(
        &mut self,
        root_uri: &str,
        init_options: Value,
        capabilities: Value,
    ) -> Result<Value> {
        let id = self
            .writer
            .start_initialize(root_uri, init_options, capabilities)
            .await?;
        let r = self.response(id).await?;
        self.writer.initialized().await?;
        Ok(r)
    }

    /// Waits until the server reports the model ready; an error status is an error.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let s = self
                .wait_notification("inkling/status", left)
                .await
                .ok_or_else(|| Error::new(ErrorKind::TimedOut, "the model did not become ready"))?;
            match s["state"].as_str() {
                Some("ready") => return Ok(()),
                Some("error") => {
                    return Err(Error::other(format!(
                        "model failed to load: {}",
                        s["message"]
                    )));
                }
                _ => {}
            }
        }
    }

    pub async fn open(&mut self, uri: &str, lang: &str, text: &str) -> Result<()> {
        self.writer.open(uri, lang, text).await
    }

    pub async fn change(&mut self, uri: &str, version: i32, changes: Value) -> Result<()> {
        self.writer.change(uri, version, changes).await
    }

    /// Sends an inline completion request without waiting; see [`Client::response`].
    pub async fn start_inline(
        &mut self,
        uri: &str,
        line: u32,
        character: u32,
        trigger: Trigger,
    ) -> Result<i64> {
        self.writer
            .start_inline(uri, line, character, trigger)
            .await
    }

    pub async fn inline(&mut self, uri: &str, line: u32, character: u32) -> Result<Value> {
        let id = self
            .start_inline(uri, line, character, Trigger::Invoked)
            .await?;
        self.response(id).await
    }

    pub async fn complete(&mut self, uri: &str, line: u32, character: u32) -> Result<Value> {
        let params = completion_params(uri, line, character, Trigger::Invoked);
        self.request("inkling/complete", params).await
    }

    pub async fn shutdown(&mut self) -> Result<()> {
        let id = self.writer.start_shutdown().await?;
        let r = self.response(id).await?;
        if let Some(e) = r.get("error") {
            return Err(Error::other(format!("shutdown failed: {e}")));
        }
        self.writer.exit().await
    }
}
