//! The byte stream from a hostile client into the server's gate: whatever comes in, the gate
//! ends, forwards only valid JSON-RPC 2.0 frames to tower-lsp, and answers only in whole frames.
#![no_main]

use std::sync::Arc;

use inkling::lsp::transport::{Session, gate};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tokio::io::AsyncReadExt;

/// Splits `bytes` into frames the way a strict reader would, checking each.
fn frames(bytes: &[u8]) -> Vec<Value> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let head_end = rest
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a whole header");
        let head = std::str::from_utf8(&rest[..head_end]).expect("an ASCII header");
        let len: usize = head
            .strip_prefix("Content-Length: ")
            .expect("the canonical header")
            .parse()
            .expect("a length");
        let body = &rest[head_end + 4..head_end + 4 + len];
        out.push(serde_json::from_slice(body).expect("a JSON body"));
        rest = &rest[head_end + 4 + len..];
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (to_server, mut server_in) = tokio::io::duplex(1 << 20);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let session = Arc::new(Session::default());
        let forwarded = tokio::spawn(async move {
            let mut all = Vec::new();
            let _ = server_in.read_to_end(&mut all).await;
            all
        });
        gate(data, to_server, tx, session).await;
        let all = forwarded.await.expect("reader");
        for m in frames(&all) {
            let o = m.as_object().expect("an object");
            assert_eq!(o["jsonrpc"], "2.0");
            if let Some(id) = o.get("id") {
                assert!(id.is_string() || id.is_i64() || id.is_null(), "{id}");
            }
        }
        while let Ok(reply) = rx.try_recv() {
            for m in frames(&reply) {
                assert!(m["error"]["code"].is_i64(), "{m}");
            }
        }
    });
});
