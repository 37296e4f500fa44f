//! End to end: the built `inkling lsp` binary, the real 0.5B model, JSON-RPC over its stdio.

mod common;

use std::time::Duration;

use serde_json::json;

#[tokio::test]
async fn real_server_completes_types_through_and_lists_items() {
    let model = common::test_model();
    let (mut child, mut c) = common::spawn_lsp();
    let init = c
        .initialize(
            json!({"model": model, "debounceMs": 0, "maxTokens": 24}),
            json!({"window": {"workDoneProgress": true}}),
        )
        .await
        .unwrap();
    assert_eq!(
        init["result"]["capabilities"]["inlineCompletionProvider"],
        true
    );
    // Loading reports progress, then the ready status.
    c.wait_ready(Duration::from_secs(120)).await.unwrap();
    assert!(
        c.inbox.iter().any(|m| m["method"] == "$/progress"),
        "work-done progress was reported"
    );

    let uri = "file:///tmp/inkling-e2e/calc.py";
    let text = "def add(a, b):\n    \n\n\nprint(add(1, 2))\n";
    c.open(uri, "python", text).await.unwrap();
    let r = c.complete(uri, 1, 4).await.unwrap();
    let res = &r["result"];
    assert_eq!(res["source"], "model", "{r}");
    let suggestion = res["items"][0]["insertText"]
        .as_str()
        .expect("a suggestion")
        .to_string();
    assert!(suggestion.starts_with("return a + b"), "{suggestion:?}");
    assert!(
        res["timings"]["prompt_tokens"].as_u64().unwrap() > 0,
        "{res}"
    );

    // Type the first two characters of the suggestion: the rest comes from the typed-through cache.
    let typed = &suggestion[..2];
    c.change(uri, 2, json!([{"range": {"start": {"line": 1, "character": 4}, "end": {"line": 1, "character": 4}}, "text": typed}])).await.unwrap();
    let r = c.complete(uri, 1, 6).await.unwrap();
    assert_eq!(r["result"]["source"], "typed-through", "{r}");
    assert_eq!(
        r["result"]["items"][0]["insertText"].as_str().unwrap(),
        &suggestion[2..]
    );

    // The standard inline completion request and the completion menu answer too.
    let r = c.inline(uri, 1, 6).await.unwrap();
    assert_eq!(
        r["result"][0]["insertText"].as_str().unwrap(),
        &suggestion[2..],
        "{r}"
    );
    let r = c
        .request("textDocument/completion", json!({"textDocument": {"uri": uri}, "position": {"line": 1, "character": 6}, "context": {"triggerKind": 1}}))
        .await.unwrap();
    let item = &r["result"]["items"][0];
    assert_eq!(
        item["textEdit"]["newText"].as_str().unwrap(),
        suggestion,
        "{r}"
    );
    assert!(item["label"].as_str().unwrap().starts_with("return a + b"));

    // A document the model has not seen: a fresh model answer.
    c.change(uri, 3, json!([{"text": "def mul(a, b):\n    \n"}]))
        .await
        .unwrap();
    let r = c.complete(uri, 1, 4).await.unwrap();
    assert_eq!(r["result"]["source"], "model", "{r}");
    assert!(
        r["result"]["items"][0]["insertText"]
            .as_str()
            .unwrap()
            .contains("a * b"),
        "{r}"
    );
    c.shutdown().await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits")
        .unwrap();
    assert!(status.success());
}
