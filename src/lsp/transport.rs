//! The byte stream between the editor and the server, guarded.
//!
//! tower-lsp-server's reader stops at the first frame it cannot decode (a bad `Content-Length`,
//! a body that is not JSON-RPC 2.0, an id it cannot represent), which ends the whole server with
//! a clean exit status: the editor silently loses completions. So every frame passes through
//! [`gate`] first. It reads frames leniently (header names in any case, any `Content-Type`,
//! extra headers, LF or CRLF), answers what JSON-RPC says for what is broken (-32700 parse error,
//! -32600 invalid request, with `id: null` where no id can be read; -32601 for unknown `$/`
//! requests), resynchronises on the next `Content-Length` header, and hands tower-lsp only
//! canonical, valid frames. The server's own output and the gate's answers are merged frame by
//! frame onto the editor's stream.
//!
//! It also remembers whether `shutdown` came before `exit`: the process must exit with status 1
//! otherwise.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// Frames larger than this are refused (and skipped) instead of being read into memory.
pub const MAX_FRAME_BYTES: usize = 256 << 20;

/// Header blocks longer than this are garbage: the reader resynchronises.
const MAX_HEADER_BYTES: usize = 8 << 10;

/// What the gate learned about the session.
#[derive(Debug, Default)]
pub struct Session {
    shutdown: AtomicBool,
    exit: AtomicBool,
}

impl Session {
    /// `exit` came after `shutdown` (or the stream ended after `shutdown`): exit status 0.
    pub fn clean(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    pub fn exited(&self) -> bool {
        self.exit.load(Ordering::SeqCst)
    }
}

/// One frame read from the editor, or why there is none.
#[derive(Debug, PartialEq, Eq)]
enum Frame {
    Body(Vec<u8>),
    /// A header block that could not be used; the reader has skipped it.
    BadHeader(String),
    /// A frame over [`MAX_FRAME_BYTES`]; its body was skipped.
    TooLarge(usize),
}

/// Reads frames from a byte stream, leniently, with its own buffer so that bytes can be put back
/// when a short body swallowed the next frame's header.
struct FrameReader<R> {
    inner: R,
    buf: Vec<u8>,
    eof: bool,
}

/// Position of `needle` in `hay`, ASCII case-insensitively.
fn find_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

const CONTENT_LENGTH: &[u8] = b"content-length";

impl<R: AsyncRead + Unpin> FrameReader<R> {
    fn new(inner: R) -> Self {
        FrameReader {
            inner,
            buf: Vec::new(),
            eof: false,
        }
    }

    /// Reads more bytes; false at the end of the stream.
    async fn fill(&mut self) -> bool {
        if self.eof {
            return false;
        }
        let mut chunk = [0u8; 64 << 10];
        match self.inner.read(&mut chunk).await {
            Ok(0) | Err(_) => {
                self.eof = true;
                false
            }
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// The next frame; `None` at the end of the stream.
    async fn next(&mut self) -> Option<Frame> {
        loop {
            // Skip to the next header block: garbage before it is dropped.
            match find_ci(&self.buf, CONTENT_LENGTH) {
                Some(at) => {
                    self.buf.drain(..at);
                }
                None => {
                    let keep = CONTENT_LENGTH.len().min(self.buf.len());
                    self.buf.drain(..self.buf.len() - keep);
                    if !self.fill().await {
                        return None;
                    }
                    continue;
                }
            }
            // The header block ends at the first empty line.
            let end = loop {
                if let Some(e) = header_end(&self.buf) {
                    break Some(e);
                }
                if self.buf.len() > MAX_HEADER_BYTES {
                    break None;
                }
                if !self.fill().await {
                    return None;
                }
            };
            let Some((head_len, body_at)) = end else {
                // Drop this "Content-Length" and look for the next one.
                self.buf.drain(..CONTENT_LENGTH.len());
                return Some(Frame::BadHeader("header block too long".into()));
            };
            let head = String::from_utf8_lossy(&self.buf[..head_len]).into_owned();
            let len = match content_length(&head) {
                Ok(n) => n,
                Err(why) => {
                    self.buf.drain(..body_at);
                    return Some(Frame::BadHeader(why));
                }
            };
            self.buf.drain(..body_at);
            if len > MAX_FRAME_BYTES {
                return Some(self.skip(len).await);
            }
            while self.buf.len() < len {
                if !self.fill().await {
                    return None;
                }
            }
            let body: Vec<u8> = self.buf.drain(..len).collect();
            return Some(Frame::Body(body));
        }
    }

    /// Skips a body too large to keep.
    async fn skip(&mut self, len: usize) -> Frame {
        let mut left = len;
        loop {
            let n = left.min(self.buf.len());
            self.buf.drain(..n);
            left -= n;
            if left == 0 || !self.fill().await {
                return Frame::TooLarge(len);
            }
        }
    }

    /// A body that turned out to hold the start of the next frame (its `Content-Length` was
    /// too large): put the bytes from that header on back in front of the buffer.
    fn put_back(&mut self, body: &[u8]) -> bool {
        match find_ci(body, CONTENT_LENGTH) {
            Some(at) => {
                let mut rest = body[at..].to_vec();
                rest.extend_from_slice(&self.buf);
                self.buf = rest;
                true
            }
            None => false,
        }
    }
}

/// (header length, body start) when the buffer holds a whole header block.
fn header_end(buf: &[u8]) -> Option<(usize, usize)> {
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, i + 4));
    let lf = buf
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| (i, i + 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// The `Content-Length` of a header block (names in any case; other headers ignored).
fn content_length(head: &str) -> Result<usize, String> {
    let mut len = None;
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("content-length") {
            let v = value.trim();
            len = Some(
                v.parse::<usize>()
                    .map_err(|_| format!("invalid Content-Length {v:?}"))?,
            );
        }
    }
    len.ok_or_else(|| "no Content-Length".to_string())
}

/// A frame as the server and the editor expect it.
fn encode(body: &[u8]) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

fn error_frame(id: Value, code: i64, message: &str) -> Vec<u8> {
    let v = json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}});
    encode(&serde_json::to_vec(&v).unwrap_or_default())
}

/// An id tower-lsp can carry: a string or an integer that fits `i64`.
fn valid_id(id: &Value) -> bool {
    id.is_string() || id.is_i64()
}

/// What to do with one body.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// Forward to the server: a request or notification (its method; whether it has an id),
    /// or a response (no method).
    Pass { method: Option<String>, id: bool },
    /// Answer this frame to the editor; the server never sees the message.
    Answer(Vec<u8>),
    /// Neither: a broken notification or response has nobody to answer.
    Drop(String),
}

fn judge(body: &[u8]) -> Verdict {
    let Ok(text) = std::str::from_utf8(body) else {
        return Verdict::Answer(error_frame(Value::Null, -32700, "Parse error: not UTF-8"));
    };
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return Verdict::Answer(error_frame(
                Value::Null,
                -32700,
                &format!("Parse error: {e}"),
            ));
        }
    };
    let Some(obj) = v.as_object() else {
        return Verdict::Answer(error_frame(
            Value::Null,
            -32600,
            "Invalid Request: not a JSON-RPC object (batches are not supported)",
        ));
    };
    let id = obj.get("id");
    let answer_id = id.filter(|i| valid_id(i)).cloned().unwrap_or(Value::Null);
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Verdict::Answer(error_frame(
            answer_id,
            -32600,
            "Invalid Request: jsonrpc must be \"2.0\"",
        ));
    }
    if id.is_some_and(|i| !valid_id(i) && !i.is_null()) {
        return Verdict::Answer(error_frame(
            Value::Null,
            -32600,
            "Invalid Request: id must be a string or an integer",
        ));
    }
    match obj.get("method") {
        Some(Value::String(m)) => {
            let params_ok = obj
                .get("params")
                .is_none_or(|p| p.is_object() || p.is_array() || p.is_null());
            if !params_ok {
                return match id {
                    Some(_) => Verdict::Answer(error_frame(
                        answer_id,
                        -32600,
                        "Invalid Request: params must be an object or an array",
                    )),
                    None => Verdict::Drop(format!("notification {m} with invalid params")),
                };
            }
            let is_request = id.is_some_and(|i| !i.is_null());
            if is_request && m.starts_with("$/") {
                return Verdict::Answer(error_frame(
                    answer_id,
                    -32601,
                    &format!("Method not found: {m}"),
                ));
            }
            Verdict::Pass {
                method: Some(m.clone()),
                id: is_request,
            }
        }
        Some(_) => Verdict::Answer(error_frame(
            answer_id,
            -32600,
            "Invalid Request: method must be a string",
        )),
        // A response to one of the server's requests.
        None => {
            let shaped = id.is_some_and(valid_id)
                && (obj.contains_key("result") != obj.contains_key("error"));
            if shaped {
                Verdict::Pass {
                    method: None,
                    id: true,
                }
            } else {
                Verdict::Drop("a response without a usable id, result or error".into())
            }
        }
    }
}

/// Reads the editor's frames from `input`, forwards valid ones to `server` and sends answers
/// for broken ones to `replies`. Ends at the end of `input`, or after forwarding `exit`.
pub async fn gate<R, W>(
    input: R,
    mut server: W,
    replies: mpsc::UnboundedSender<Vec<u8>>,
    session: Arc<Session>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = FrameReader::new(input);
    while let Some(frame) = reader.next().await {
        let body = match frame {
            Frame::Body(b) => b,
            Frame::BadHeader(why) => {
                tracing::warn!("bad frame from the client: {why}; resynchronising");
                let _ = replies.send(error_frame(
                    Value::Null,
                    -32700,
                    &format!("Parse error: {why}"),
                ));
                continue;
            }
            Frame::TooLarge(n) => {
                tracing::warn!(bytes = n, "frame too large; skipped");
                let _ = replies.send(error_frame(
                    Value::Null,
                    -32600,
                    &format!("Invalid Request: a message of {n} bytes exceeds {MAX_FRAME_BYTES}"),
                ));
                continue;
            }
        };
        match judge(&body) {
            Verdict::Pass { method, id } => {
                match method.as_deref() {
                    Some("shutdown") if id => session.shutdown.store(true, Ordering::SeqCst),
                    Some("exit") => session.exit.store(true, Ordering::SeqCst),
                    _ => {}
                }
                if server.write_all(&encode(&body)).await.is_err() || server.flush().await.is_err()
                {
                    return;
                }
                if session.exited() {
                    return;
                }
            }
            Verdict::Answer(frame) => {
                // A body that is not JSON may have swallowed the next frame's header (its
                // Content-Length was too large): read on from that header.
                if serde_json::from_slice::<Value>(&body).is_err() {
                    reader.put_back(&body);
                }
                tracing::warn!("invalid message from the client; answered with an error");
                let _ = replies.send(frame);
            }
            Verdict::Drop(why) => {
                tracing::warn!("ignoring a message from the client: {why}");
            }
        }
    }
}

/// Copies the server's frames to `replies` (so that they interleave with the gate's answers
/// only at frame boundaries).
pub async fn relay<R: AsyncRead + Unpin>(output: R, replies: mpsc::UnboundedSender<Vec<u8>>) {
    let mut reader = FrameReader::new(output);
    while let Some(frame) = reader.next().await {
        if let Frame::Body(b) = frame {
            if replies.send(encode(&b)).is_err() {
                return;
            }
        }
    }
}

/// Writes every frame from `replies` to the editor until all senders are gone.
pub async fn write_out<W: AsyncWrite + Unpin>(
    mut output: W,
    mut replies: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    while let Some(frame) = replies.recv().await {
        if output.write_all(&frame).await.is_err() || output.flush().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
#[path = "transport_tests.rs"]
mod tests;
