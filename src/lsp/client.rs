//! A minimal LSP client (Content-Length framing over any async byte streams), used by
//! `inkling bench replay` to drive the server as an editor would, and by the protocol tests.

use std::collections::VecDeque;
use std::io::{Error, ErrorKind, Result};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// Writes one framed message.
pub async fn write_message<W: AsyncWrite + Unpin>(w: &mut W, msg: &Value) -> Result<()> {
    let body = serde_json::to_vec(msg)?;
    let header = format!("Content-Length: {}\r\n\r\n", body.len());
    w.write_all(header.as_bytes()).await?;
    w.write_all(&body).await?;
    w.flush().await
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

pub struct Client<R, W> {
    reader: BufReader<R>,
    writer: W,
    next_id: i64,
    /// Notifications and server requests seen while waiting for responses.
    pub inbox: VecDeque<Value>,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Client<R, W> {
    pub fn new(reader: R, writer: W) -> Self {
        Client {
            reader: BufReader::new(reader),
            writer,
            next_id: 1,
            inbox: VecDeque::new(),
        }
    }

    pub async fn send(&mut self, msg: &Value) -> Result<()> {
        write_message(&mut self.writer, msg).await
    }

    pub async fn send_raw(&mut self, body: &[u8]) -> Result<()> {
        let header = format!("Content-Length: {}\r\n\r\n", body.len());
        self.writer.write_all(header.as_bytes()).await?;
        self.writer.write_all(body).await?;
        self.writer.flush().await
    }

    /// Reads the next message, answering nothing.
    pub async fn recv(&mut self) -> Result<Value> {
        read_message(&mut self.reader).await
    }

    /// Reads the next message; requests from the server are accepted with a null result.
    pub async fn next_message(&mut self) -> Result<Value> {
        let msg = self.recv().await?;
        if msg.get("method").is_some() && msg.get("id").is_some() {
            let reply = json!({"jsonrpc": "2.0", "id": msg["id"], "result": null});
            self.send(&reply).await?;
        }
        Ok(msg)
    }

    pub async fn notify(&mut self, method: &str, params: Value) -> Result<()> {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}))
            .await
    }

    /// Sends a request and returns its id without waiting.
    pub async fn start_request(&mut self, method: &str, params: Value) -> Result<i64> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await?;
        Ok(id)
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
        let r = self
            .request(
                "initialize",
                json!({"processId": null, "rootUri": root_uri, "capabilities": capabilities, "initializationOptions": init_options}),
            )
            .await?;
        self.notify("initialized", json!({})).await?;
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
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": lang, "version": 1, "text": text}}),
        )
        .await
    }

    pub async fn change(&mut self, uri: &str, version: i32, changes: Value) -> Result<()> {
        self.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": changes}),
        )
        .await
    }

    pub async fn inline(&mut self, uri: &str, line: u32, character: u32) -> Result<Value> {
        self.request(
            "textDocument/inlineCompletion",
            json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": character}, "context": {"triggerKind": 1}}),
        )
        .await
    }

    pub async fn complete(&mut self, uri: &str, line: u32, character: u32) -> Result<Value> {
        self.request(
            "inkling/complete",
            json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": character}, "context": {"triggerKind": 1}}),
        )
        .await
    }

    pub async fn shutdown(&mut self) -> Result<()> {
        let r = self.request("shutdown", Value::Null).await?;
        if let Some(e) = r.get("error") {
            return Err(Error::other(format!("shutdown failed: {e}")));
        }
        self.notify("exit", Value::Null).await
    }
}
