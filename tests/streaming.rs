//! Streaming suggestions through the language server, with a fake engine whose tokens come on a
//! clock the test drives (one `tick` = one token): an early answer at the deadline, growth into
//! the cache, typing through it, the grown notification, no contradicting replacement, and a
//! diverging keystroke cancelling the job.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use inkling::engine::{
    CancelToken, EngineError, GenerateRequest, Generation, Generator, StopReason, Timings,
};
use inkling::lsp::client::{Client, Trigger};
use inkling::lsp::{self, Loader};
use serde_json::{Value, json};
use tokio::io::{DuplexStream, ReadHalf, WriteHalf};
use tokio::sync::oneshot;

/// The fake's tokens, in order; the test releases them one at a time.
const TOKENS: &[&str] = &[
    "comp", "ute", "(", "x", ", ", "y", ")", " + 1", "\n", "junk",
];

#[derive(Default)]
struct Clock {
    /// Tokens each job may emit so far (shared by every job: a new job starts from the top).
    released: AtomicUsize,
    jobs: AtomicUsize,
    cancels: AtomicUsize,
    /// Jobs that emitted every token and finished.
    finished: AtomicUsize,
}

struct Ticking(Arc<Clock>);

impl Generator for Ticking {
    fn submit(
        &self,
        req: GenerateRequest,
        cancel: CancelToken,
    ) -> oneshot::Receiver<Result<Generation, EngineError>> {
        let (tx, rx) = oneshot::channel();
        if req.max_tokens == 0 {
            // A warm-up: nothing to write.
            let _ = tx.send(Ok(Generation::skipped()));
            return rx;
        }
        let clock = Arc::clone(&self.0);
        clock.jobs.fetch_add(1, Ordering::SeqCst);
        std::thread::spawn(move || {
            let mut text = String::new();
            let mut emitted = 0;
            loop {
                if cancel.is_cancelled() {
                    clock.cancels.fetch_add(1, Ordering::SeqCst);
                    let _ = tx.send(Err(EngineError::Cancelled));
                    return;
                }
                if emitted < clock.released.load(Ordering::SeqCst).min(TOKENS.len()) {
                    text.push_str(TOKENS[emitted]);
                    emitted += 1;
                    if let Some(p) = &req.partial {
                        p.send_replace(text.clone());
                    }
                    if let Some(cut) = req.stop.check(&text) {
                        text.truncate(cut);
                        break;
                    }
                    continue;
                }
                if emitted == TOKENS.len() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            clock.finished.fetch_add(1, Ordering::SeqCst);
            let _ = tx.send(Ok(Generation {
                text: req.stop.finish(&text),
                raw: text,
                stop_reason: StopReason::StopRule,
                timings: Timings {
                    generated_tokens: emitted,
                    ..Timings::default()
                },
            }));
        });
        rx
    }

    fn name(&self) -> String {
        "ticking".into()
    }
}

impl Clock {
    fn tick(&self, n: usize) {
        self.released.fetch_add(n, Ordering::SeqCst);
    }
}

type TestClient = Client<ReadHalf<DuplexStream>, WriteHalf<DuplexStream>>;

async fn start(clock: Arc<Clock>, deadline_ms: u64) -> TestClient {
    let loader: Loader =
        Arc::new(move |_, _| Ok(Arc::new(Ticking(Arc::clone(&clock))) as Arc<dyn Generator>));
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    let (sr, sw) = tokio::io::split(server_io);
    tokio::spawn(lsp::serve(sr, sw, loader));
    let (cr, cw) = tokio::io::split(client_io);
    let mut c = Client::new(cr, cw);
    c.initialize(
        json!({"debounceMs": 0, "syntax": false, "answerDeadlineMs": deadline_ms, "warmCursor": false}),
        json!({}),
    )
    .await
    .unwrap();
    c.wait_ready(Duration::from_secs(5)).await.unwrap();
    c
}

const URI: &str = "file:///work/demo/src/calc.py";
/// The cursor goes after `total = ` on line 1; the rest of the line is empty, the next line holds
/// other code.
const TEXT: &str = "x, y = 1, 2\ntotal = \nprint(total)\n";

fn text_of(r: &Value) -> Option<String> {
    r["result"][0]["insertText"].as_str().map(str::to_string)
}

async fn inline_automatic(c: &mut TestClient, line: u32, col: u32) -> Value {
    let id = c
        .start_inline(URI, line, col, Trigger::Automatic)
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), c.response(id))
        .await
        .expect("answered")
        .unwrap()
}

async fn type_at(c: &mut TestClient, version: i32, line: u32, col: u32, text: &str) {
    c.change(URI, version, json!([{"range": {"start": {"line": line, "character": col}, "end": {"line": line, "character": col}}, "text": text}]))
        .await
        .unwrap();
}

async fn until(what: &str, f: impl Fn() -> bool) {
    for _ in 0..1000 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn an_unfinished_word_is_answered_at_the_deadline_and_the_job_goes_on() {
    let clock = Arc::new(Clock::default());
    let mut c = start(Arc::clone(&clock), 150).await;
    c.open(URI, "python", TEXT).await.unwrap();
    // One token, half a word: the request waits for the deadline, then answers with it.
    clock.tick(1);
    let r = inline_automatic(&mut c, 1, 8).await;
    assert_eq!(text_of(&r).as_deref(), Some("comp"), "{r}");
    assert_eq!(clock.finished.load(Ordering::SeqCst), 0, "answered early");
    // The job keeps writing after its request was answered (and its waiter left).
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        clock.cancels.load(Ordering::SeqCst),
        0,
        "a shown job is not cancelled"
    );
    clock.tick(2);
    // Typing through the first piece: the longer text comes from the cache, no new job.
    type_at(&mut c, 2, 1, 8, "c").await;
    until("the piece to grow", || {
        clock.released.load(Ordering::SeqCst) == 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let r = inline_automatic(&mut c, 1, 9).await;
    assert_eq!(text_of(&r).as_deref(), Some("ompute("), "{r}");
    assert_eq!(clock.jobs.load(Ordering::SeqCst), 1, "no new job");
}

#[tokio::test]
async fn a_finished_word_is_answered_before_the_deadline() {
    let clock = Arc::new(Clock::default());
    // A deadline far away: only the end of a word can answer before it.
    let mut c = start(Arc::clone(&clock), 10_000).await;
    c.open(URI, "python", TEXT).await.unwrap();
    clock.tick(3);
    let t0 = std::time::Instant::now();
    let r = inline_automatic(&mut c, 1, 8).await;
    assert_eq!(text_of(&r).as_deref(), Some("compute("), "{r}");
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "not held to the deadline"
    );
}

#[tokio::test]
async fn growth_is_announced_to_an_idle_client_and_never_contradicts_what_was_shown() {
    let clock = Arc::new(Clock::default());
    let mut c = start(Arc::clone(&clock), 50).await;
    c.open(URI, "python", TEXT).await.unwrap();
    clock.tick(3);
    let first = text_of(&inline_automatic(&mut c, 1, 8).await).expect("a piece");
    assert_eq!(first, "compute(");
    // The user is idle: the suggestion grows by a few tokens and the client is told.
    tokio::time::sleep(Duration::from_millis(150)).await;
    clock.tick(3);
    let grown = c
        .wait_notification("inkling/suggestionGrown", Duration::from_secs(5))
        .await
        .expect("a grown notification");
    assert_eq!(grown["textDocument"]["uri"], URI);
    assert_eq!(grown["textDocument"]["version"], 1);
    assert_eq!(grown["position"], json!({"line": 1, "character": 8}));
    // Asked again there, as the editors do: the longer text, extending what was shown.
    let mut shown = first;
    let r = c.inline(URI, 1, 8).await.unwrap();
    let longer = text_of(&r).expect("grown text");
    assert!(
        longer.starts_with(&shown) && longer.len() > shown.len(),
        "{shown:?} -> {longer:?}"
    );
    shown = longer;
    // The rest: a stop at the line's end. No answer ever holds the next line, and each one
    // extends the last.
    clock.tick(TOKENS.len());
    // (A prefetch of what follows accepting it may finish right after.)
    until("the job to finish", || {
        clock.finished.load(Ordering::SeqCst) >= 1
    })
    .await;
    let done = c
        .wait_notification("inkling/suggestionDone", Duration::from_secs(5))
        .await
        .expect("a done notification");
    assert_eq!(done["chars"], "compute(x, y) + 1".len());
    let r = c.inline(URI, 1, 8).await.unwrap();
    let last = text_of(&r).expect("the whole suggestion");
    assert!(last.starts_with(&shown), "{shown:?} -> {last:?}");
    assert_eq!(last, "compute(x, y) + 1");
}

#[tokio::test]
async fn a_diverging_keystroke_cancels_the_streaming_job() {
    let clock = Arc::new(Clock::default());
    let mut c = start(Arc::clone(&clock), 50).await;
    c.open(URI, "python", TEXT).await.unwrap();
    clock.tick(3);
    assert_eq!(
        text_of(&inline_automatic(&mut c, 1, 8).await).as_deref(),
        Some("compute(")
    );
    // Something else than the suggestion: its job stops and a new one starts there.
    type_at(&mut c, 2, 1, 8, "z").await;
    let id = c.start_inline(URI, 1, 9, Trigger::Automatic).await.unwrap();
    until("the old job to stop", || {
        clock.cancels.load(Ordering::SeqCst) == 1
    })
    .await;
    until("a new job", || clock.jobs.load(Ordering::SeqCst) == 2).await;
    let r = tokio::time::timeout(Duration::from_secs(10), c.response(id))
        .await
        .unwrap()
        .unwrap();
    // The new job's first piece: its tokens are released already.
    assert_eq!(text_of(&r).as_deref(), Some("compute("), "{r}");
}

#[tokio::test]
async fn the_timings_request_waits_for_the_whole_suggestion() {
    let clock = Arc::new(Clock::default());
    let mut c = start(Arc::clone(&clock), 50).await;
    c.open(URI, "python", TEXT).await.unwrap();
    clock.tick(3);
    let id = c
        .start_request(
            "inkling/complete",
            inkling::lsp::client::completion_params(URI, 1, 8, Trigger::Invoked),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    clock.tick(TOKENS.len());
    let r = c.response(id).await.unwrap();
    assert_eq!(
        r["result"]["items"][0]["insertText"], "compute(x, y) + 1",
        "{r}"
    );
}
