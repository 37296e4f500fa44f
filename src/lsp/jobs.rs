//! Who may use the engine, and for how long: latest wins.
//!
//! - The newest completion request holds the `latest` token; a newer request cancels it (it
//!   answers null), as helix's `TaskController` does for its hooks.
//! - The model job in flight is owned here rather than by the request that started it: a request
//!   that only typed through what the job is generating waits for it ([`Waiter`]); any other new
//!   job cancels it. A job whose waiters all left keeps running for a short grace period, the gap
//!   between keystrokes in which an editor cancels one request and sends the next. A streaming
//!   job whose suggestion was shown keeps writing it until it is done or a job for another state
//!   replaces it: the user is reading (or typing through) what it writes.
//! - The last answer given is kept ([`LastAnswer`]) so that a suggestion that grows after it can
//!   be announced to the client while the user is idle.
//! - Prefetch (the suggestion after an accept) and warm-up (a repo prefix) run in idle engine
//!   time, each in a slot of its own; a keystroke or a completion pre-empts them.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ropey::Rope;
use tokio::sync::watch;
use tower_lsp_server::ls_types::Uri;

use crate::complete::Shown;
use crate::engine::{CancelToken, EngineError, Generation};

/// How long a job whose requests were all cancelled keeps running, waiting for the next
/// keystroke's request to join it; editors cancel the previous request on every keystroke.
pub const ORPHAN_GRACE: Duration = Duration::from_millis(150);

/// The result of a job, once there is one.
pub type Done = Option<Result<Generation, EngineError>>;

/// A model job, shared by the requests that wait for it.
#[derive(Debug)]
pub struct Job {
    pub uri: Uri,
    /// The document state the job completes.
    pub at: Shown,
    pub token: CancelToken,
    /// The text generated so far.
    pub partial: watch::Receiver<String>,
    /// What of it may be shown (see [`crate::complete::Completer::piece`]): each value extends
    /// the one before.
    pub piece: watch::Receiver<String>,
    pub done: watch::Receiver<Done>,
    /// Requests waiting for this job.
    waiters: AtomicUsize,
    /// A piece of it was shown: it keeps running without waiters.
    shown: AtomicBool,
}

/// The sending ends of a job's channels, for whoever runs it.
#[derive(Debug)]
pub struct JobFeed {
    pub partial: Arc<watch::Sender<String>>,
    pub piece: watch::Sender<String>,
    pub done: watch::Sender<Done>,
}

impl Job {
    pub fn new(uri: Uri, at: Shown) -> (Arc<Job>, JobFeed) {
        let (ptx, prx) = watch::channel(String::new());
        let (stx, srx) = watch::channel(String::new());
        let (dtx, drx) = watch::channel(None);
        let job = Arc::new(Job {
            uri,
            at,
            token: CancelToken::new(),
            partial: prx,
            piece: srx,
            done: drx,
            waiters: AtomicUsize::new(0),
            shown: AtomicBool::new(false),
        });
        let feed = JobFeed {
            partial: Arc::new(ptx),
            piece: stx,
            done: dtx,
        };
        (job, feed)
    }

    pub fn finished(&self) -> bool {
        self.done.borrow().is_some()
    }

    /// A piece of the job was shown to the user: from now on only a job for another document
    /// state (or shutdown) stops it.
    pub fn mark_shown(&self) {
        self.shown.store(true, Ordering::SeqCst);
    }

    /// Waits for the result; a job dropped without one answers `Gone`.
    #[cfg(test)]
    pub async fn result(&self) -> Result<Generation, EngineError> {
        let mut done = self.done.clone();
        match done.wait_for(Option::is_some).await {
            Ok(v) => v.clone().unwrap_or(Err(EngineError::Gone)),
            Err(_) => Err(EngineError::Gone),
        }
    }
}

/// Counts a request waiting on a job; the last one to leave cancels the job after the grace.
#[derive(Debug)]
pub struct Waiter(Arc<Job>);

impl Waiter {
    pub fn new(job: &Arc<Job>) -> Self {
        job.waiters.fetch_add(1, Ordering::SeqCst);
        Waiter(Arc::clone(job))
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if self.0.waiters.fetch_sub(1, Ordering::SeqCst) != 1 {
            return;
        }
        let job = Arc::clone(&self.0);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                tokio::time::sleep(ORPHAN_GRACE).await;
                if job.waiters.load(Ordering::SeqCst) == 0
                    && !job.finished()
                    && !job.shown.load(Ordering::SeqCst)
                {
                    job.token.cancel();
                }
            });
        } else if !job.shown.load(Ordering::SeqCst) {
            job.token.cancel();
        }
    }
}

/// The last suggestion answered, for telling the client when it grew.
#[derive(Debug, Clone)]
pub struct LastAnswer {
    pub uri: Uri,
    /// The document version the answer was for.
    pub version: i32,
    /// Where it was asked (the protocol's position, echoed back to the client).
    pub position: tower_lsp_server::ls_types::Position,
    /// The cursor as a char offset.
    pub cursor: usize,
    /// The text shown.
    pub text: String,
    pub at: Instant,
    /// The latest-wins token of the request that got it: a newer request makes the entry stale.
    pub request: CancelToken,
}

/// The engine's users: the newest request, the model job, prefetch and warm-up.
#[derive(Debug, Default)]
pub struct Jobs {
    latest: Mutex<Option<CancelToken>>,
    last_answer: Mutex<Option<LastAnswer>>,
    job: Mutex<Option<Arc<Job>>>,
    prefetch: Mutex<Option<CancelToken>>,
    warm: Mutex<Option<CancelToken>>,
    cursor_warm: Mutex<Option<CancelToken>>,
    /// Set by `shutdown`: no engine work starts after it (a job finishing then would otherwise
    /// start a prefetch or a warm-up that holds the exit up).
    closed: std::sync::atomic::AtomicBool,
}

/// Puts `token` into `slot`, cancelling what was there.
fn replace(slot: &Mutex<Option<CancelToken>>, token: CancelToken) {
    if let Some(old) = slot.lock().expect("jobs lock").replace(token) {
        old.cancel();
    }
}

fn cancel(slot: &Mutex<Option<CancelToken>>) {
    if let Some(old) = slot.lock().expect("jobs lock").take() {
        old.cancel();
    }
}

impl Jobs {
    /// Registers a new request: older requests give up (they answer null).
    pub fn new_request(&self) -> CancelToken {
        let token = CancelToken::new();
        replace(&self.latest, token.clone());
        self.forget_answer();
        token
    }

    /// Keeps `answer` as the one to grow (unless a newer request came meanwhile).
    pub fn answered(&self, answer: LastAnswer) {
        if !answer.request.is_cancelled() {
            *self.last_answer.lock().expect("jobs lock") = Some(answer);
        }
    }

    /// The last answer, while no request or edit came after it.
    pub fn last_answer(&self) -> Option<LastAnswer> {
        let last = self.last_answer.lock().expect("jobs lock");
        last.clone().filter(|a| !a.request.is_cancelled())
    }

    /// The user typed or asked again: the last answer is no longer on screen.
    pub fn forget_answer(&self) {
        self.last_answer.lock().expect("jobs lock").take();
    }

    /// Records that the last answer's suggestion is now `text` (after telling the client).
    pub fn grew(&self, text: &str) {
        if let Some(a) = self.last_answer.lock().expect("jobs lock").as_mut() {
            a.text = text.to_string();
        }
    }

    /// The job in flight for `uri`, if the user has only typed what it is generating since it
    /// started.
    pub fn joinable(&self, uri: &Uri, rope: &Rope, cursor: usize) -> Option<Arc<Job>> {
        let job = self.job.lock().expect("jobs lock").clone()?;
        if &job.uri != uri || job.token.is_cancelled() || job.finished() {
            return None;
        }
        let typed = job.at.typed_since(rope, cursor)?;
        let partial = job.partial.borrow();
        (partial.starts_with(&typed) || typed.starts_with(partial.as_str()))
            .then(|| Arc::clone(&job))
    }

    /// Makes `job` the model job, stopping every other use of the engine.
    pub fn install(&self, job: &Arc<Job>) {
        self.cancel_engine_work();
        self.refuse_when_closed(&job.token);
        *self.job.lock().expect("jobs lock") = Some(Arc::clone(job));
    }

    /// A new prefetch, replacing (and cancelling) the previous one.
    pub fn set_prefetch(&self, token: CancelToken) {
        self.refuse_when_closed(&token);
        replace(&self.prefetch, token);
    }

    /// A new warm-up, replacing (and cancelling) the previous one.
    pub fn set_warm(&self, token: CancelToken) {
        self.refuse_when_closed(&token);
        replace(&self.warm, token);
    }

    /// A new warm-up at a cursor, replacing (and cancelling) the previous one.
    pub fn set_cursor_warm(&self, token: CancelToken) {
        self.refuse_when_closed(&token);
        replace(&self.cursor_warm, token);
    }

    /// After `shutdown`, new work is cancelled before it starts.
    fn refuse_when_closed(&self, token: &CancelToken) {
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            token.cancel();
        }
    }

    /// Keystrokes pre-empt prefetch work at once.
    pub fn cancel_prefetch(&self) {
        cancel(&self.prefetch);
    }

    /// Stops the model job, prefetch and warm-up.
    pub fn cancel_engine_work(&self) {
        if let Some(j) = self.job.lock().expect("jobs lock").take() {
            j.token.cancel();
        }
        cancel(&self.prefetch);
        cancel(&self.warm);
        cancel(&self.cursor_warm);
    }

    /// Stops everything, the newest request too, and refuses new work (shutdown).
    pub fn cancel_all(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        cancel(&self.latest);
        self.cancel_engine_work();
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn uri() -> Uri {
        Uri::from_str("file:///w/a.py").unwrap()
    }

    fn job_at(text: &str, cursor: usize) -> (Arc<Job>, JobFeed, Rope) {
        let rope = Rope::from_str(text);
        let (job, feed) = Job::new(uri(), Shown::new(&rope, cursor, String::new(), false));
        (job, feed, rope)
    }

    #[test]
    fn the_latest_request_wins() {
        let jobs = Jobs::default();
        let first = jobs.new_request();
        let second = jobs.new_request();
        assert!(first.is_cancelled());
        assert!(!second.is_cancelled());
        jobs.cancel_all();
        assert!(second.is_cancelled());
        // After shutdown nothing new starts.
        let late = CancelToken::new();
        jobs.set_warm(late.clone());
        assert!(late.is_cancelled());
    }

    #[test]
    fn a_new_job_stops_the_old_one_and_idle_work() {
        let jobs = Jobs::default();
        let (a, _fa, _) = job_at("x = \n", 4);
        jobs.install(&a);
        let prefetch = CancelToken::new();
        let warm = CancelToken::new();
        let cursor = CancelToken::new();
        jobs.set_prefetch(prefetch.clone());
        jobs.set_warm(warm.clone());
        jobs.set_cursor_warm(cursor.clone());
        assert!(
            !warm.is_cancelled(),
            "the two warm-ups have slots of their own"
        );
        let (b, _fb, _) = job_at("x = \n", 4);
        jobs.install(&b);
        assert!(a.token.is_cancelled() && prefetch.is_cancelled() && warm.is_cancelled());
        assert!(cursor.is_cancelled());
        assert!(!b.token.is_cancelled());
        // A newer prefetch replaces the older one.
        let p1 = CancelToken::new();
        jobs.set_prefetch(p1.clone());
        jobs.set_prefetch(CancelToken::new());
        assert!(p1.is_cancelled());
    }

    #[test]
    fn typing_through_the_partial_text_joins_the_job() {
        let jobs = Jobs::default();
        let (job, feed, rope) = job_at("x = \n", 4);
        jobs.install(&job);
        feed.partial.send_replace("comp".into());
        let mut typed = rope.clone();
        typed.insert(4, "co");
        assert!(
            jobs.joinable(&uri(), &typed, 6).is_some(),
            "typed a prefix of it"
        );
        let mut more = rope.clone();
        more.insert(4, "compute");
        assert!(
            jobs.joinable(&uri(), &more, 11).is_some(),
            "typed past what it has so far"
        );
        let mut other = rope.clone();
        other.insert(4, "y");
        assert!(
            jobs.joinable(&uri(), &other, 5).is_none(),
            "typed something else"
        );
        let elsewhere = Uri::from_str("file:///w/b.py").unwrap();
        assert!(
            jobs.joinable(&elsewhere, &typed, 6).is_none(),
            "another document"
        );
        feed.done.send_replace(Some(Err(EngineError::Cancelled)));
        assert!(
            jobs.joinable(&uri(), &typed, 6).is_none(),
            "finished jobs are not joined"
        );
    }

    #[tokio::test]
    async fn an_orphaned_job_stops_after_the_grace_unless_joined() {
        let (job, _feed, _) = job_at("x = \n", 4);
        drop(Waiter::new(&job));
        // The next keystroke's request joins within the grace: the job keeps running.
        tokio::time::sleep(ORPHAN_GRACE / 3).await;
        let again = Waiter::new(&job);
        tokio::time::sleep(ORPHAN_GRACE * 2).await;
        assert!(!job.token.is_cancelled());
        // Nobody comes back: cancelled once the grace has passed, not before.
        drop(again);
        tokio::time::sleep(ORPHAN_GRACE / 3).await;
        assert!(!job.token.is_cancelled());
        tokio::time::sleep(ORPHAN_GRACE * 2).await;
        assert!(job.token.is_cancelled());
    }

    #[tokio::test]
    async fn a_finished_job_is_not_cancelled_and_answers_its_result() {
        let (job, feed, _) = job_at("x = \n", 4);
        let w = Waiter::new(&job);
        feed.done.send_replace(Some(Ok(Generation::skipped())));
        drop(w);
        tokio::time::sleep(ORPHAN_GRACE * 2).await;
        assert!(!job.token.is_cancelled());
        assert!(job.result().await.is_ok());
        let (gone, feed, _) = job_at("x = \n", 4);
        drop(feed);
        assert!(matches!(gone.result().await, Err(EngineError::Gone)));
    }
}
