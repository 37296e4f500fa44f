//! The frame reader and the message checks on broken and unusual input.

use super::*;

async fn frames(input: &[u8]) -> Vec<Frame> {
    let mut r = FrameReader::new(input);
    let mut out = Vec::new();
    while let Some(f) = r.next().await {
        out.push(f);
    }
    out
}

fn body(s: &str) -> Frame {
    Frame::Body(s.as_bytes().to_vec())
}

#[tokio::test]
async fn headers_in_any_case_with_other_headers() {
    let input = b"content-length: 2\r\nContent-Type: application/vscode-jsonrpc\r\n\r\n{}\
CONTENT-LENGTH:2\r\nX-Extra: 1\r\ncontent-type: application/vscode-jsonrpc; charset=UTF-8\r\n\r\n[]\
Content-Length: 4\n\nnull";
    assert_eq!(
        frames(input).await,
        vec![body("{}"), body("[]"), body("null")]
    );
}

#[tokio::test]
async fn garbage_and_bad_lengths_resynchronise() {
    let input = b"\x00\xffgarbage\r\n\r\nContent-Length: -5\r\n\r\nContent-Length: 99999999999999999999999\r\n\r\nContent-Length: 2\r\n\r\n{}";
    let got = frames(input).await;
    assert!(matches!(got[0], Frame::BadHeader(_)), "{got:?}");
    assert!(matches!(got[1], Frame::BadHeader(_)), "{got:?}");
    assert_eq!(got[2], body("{}"));
    assert_eq!(got.len(), 3);
}

#[tokio::test]
async fn a_long_body_leaves_garbage_that_is_skipped() {
    // The first frame says 2 but carries 5 bytes: the extra 3 come before the next header.
    let input = b"Content-Length: 2\r\n\r\n{}xyzContent-Length: 2\r\n\r\n[]";
    assert_eq!(frames(input).await, vec![body("{}"), body("[]")]);
}

#[tokio::test]
async fn a_short_body_gives_back_the_next_header() {
    // The first frame says 30 but carries 12: its body swallows the next frame's header.
    let next = "Content-Length: 2\r\n\r\n{}";
    let input = format!("Content-Length: 30\r\n\r\n{{\"jsonrpc\":1}}{next}");
    let mut r = FrameReader::new(input.as_bytes());
    let Some(Frame::Body(b)) = r.next().await else {
        panic!("a body")
    };
    assert!(serde_json::from_slice::<Value>(&b).is_err());
    assert!(r.put_back(&b));
    assert_eq!(r.next().await, Some(body("{}")));
}

#[tokio::test]
async fn oversized_frames_are_skipped_not_kept() {
    let big = MAX_FRAME_BYTES + 1;
    let mut input = format!("Content-Length: {big}\r\n\r\n").into_bytes();
    input.extend(std::iter::repeat_n(b'x', big));
    input.extend_from_slice(b"Content-Length: 2\r\n\r\n{}");
    assert_eq!(frames(&input).await, vec![Frame::TooLarge(big), body("{}")]);
}

fn answer(v: &Verdict) -> Value {
    let Verdict::Answer(frame) = v else {
        panic!("no answer: {v:?}")
    };
    let text = String::from_utf8_lossy(frame);
    let (_, json) = text.split_once("\r\n\r\n").unwrap();
    serde_json::from_str(json).unwrap()
}

#[test]
fn broken_messages_get_the_json_rpc_answer() {
    let cases: &[(&[u8], i64, Value)] = &[
        (b"{not json", -32700, Value::Null),
        (b"\xff\xfe", -32700, Value::Null),
        (br#""a string""#, -32600, Value::Null),
        (b"42", -32600, Value::Null),
        (b"null", -32600, Value::Null),
        (b"[]", -32600, Value::Null),
        (
            br#"[{"jsonrpc":"2.0","id":1,"method":"shutdown"}]"#,
            -32600,
            Value::Null,
        ),
        (br#"{"id":1,"method":"shutdown"}"#, -32600, json!(1)),
        (
            br#"{"jsonrpc":"1.0","id":"a","method":"shutdown"}"#,
            -32600,
            json!("a"),
        ),
        (
            br#"{"jsonrpc":"2.0","id":1.5,"method":"shutdown"}"#,
            -32600,
            Value::Null,
        ),
        (
            br#"{"jsonrpc":"2.0","id":{"a":1},"method":"shutdown"}"#,
            -32600,
            Value::Null,
        ),
        (
            br#"{"jsonrpc":"2.0","id":18446744073709551615,"method":"shutdown"}"#,
            -32600,
            Value::Null,
        ),
        (br#"{"jsonrpc":"2.0","id":3,"method":7}"#, -32600, json!(3)),
        (
            br#"{"jsonrpc":"2.0","id":4,"method":"x","params":5}"#,
            -32600,
            json!(4),
        ),
        (
            br#"{"jsonrpc":"2.0","id":5,"method":"$/unknown"}"#,
            -32601,
            json!(5),
        ),
        (
            br#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"s":"\ud800"}}"#,
            -32700,
            Value::Null,
        ),
    ];
    for (input, code, id) in cases {
        let a = answer(&judge(input));
        assert_eq!(
            a["error"]["code"],
            *code,
            "{}",
            String::from_utf8_lossy(input)
        );
        assert_eq!(a["id"], *id, "{}", String::from_utf8_lossy(input));
        assert_eq!(a["jsonrpc"], "2.0");
    }
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(answer(&judge(deep.as_bytes()))["error"]["code"], -32700);
}

#[test]
fn valid_messages_pass() {
    for ok in [
        br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#.as_slice(),
        br#"{"jsonrpc":"2.0","id":"x","method":"shutdown"}"#,
        br#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":1}}"#,
        br#"{"jsonrpc":"2.0","method":"$/unknownNotification"}"#,
        br#"{"jsonrpc":"2.0","id":7,"result":null}"#,
        br#"{"jsonrpc":"2.0","id":-3,"error":{"code":1,"message":"no"}}"#,
    ] {
        assert!(
            matches!(judge(ok), Verdict::Pass { .. }),
            "{}",
            String::from_utf8_lossy(ok)
        );
    }
    // Broken responses and notifications have nobody to answer.
    assert!(matches!(
        judge(br#"{"jsonrpc":"2.0","id":7}"#),
        Verdict::Drop(_)
    ));
    assert!(matches!(
        judge(br#"{"jsonrpc":"2.0","method":"textDocument/didOpen","params":"x"}"#),
        Verdict::Drop(_)
    ));
}
