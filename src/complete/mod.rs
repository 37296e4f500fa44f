//! One completion pipeline for every door (`inkling complete`, the language server, the
//! benchmark): they differ only in transport.
//!
//! A completion is asked for an [`Input`] (the document snapshot: text, cursor, file, syntax
//! tree, anchor, context chunks) and goes through two phases, as in rust-analyzer's
//! `ide-completion`:
//!
//! - [`Completer::prepare`] decides whether to ask the model at all (refusals are data: a
//!   [`Skip`]), then shapes the suggestion (nothing / line / block), plans the prompt and builds
//!   the engine request;
//! - the tokens come from the engine (or, later, from another backend);
//! - [`Completer::finish`] is the one place where a suggestion is trimmed and fitted to the code
//!   around it, prefetched suggestions included.
//!
//! [`Completer::complete`] runs both phases blocking. [`Completer::warm_up`] evaluates (or loads
//! from disk) the stable repo-context prefix of a file ahead of time, and [`Input::accepted`] is
//! the input for the suggestion that follows accepting one (prefetch).
//!
//! Architecture Invariant: no LSP types; documents are ropes and cursors are char offsets.

mod cache;

use std::sync::Arc;
use std::time::Duration;

use ropey::Rope;
use tokio::sync::{oneshot, watch};

pub use cache::{CONTEXT_CHARS, Shown, SuggestionCache};

use crate::config::Settings;
use crate::document::{self, TextError};
use crate::engine::{CancelToken, EngineError, GenerateRequest, Generation, Generator, KvReuse};
use crate::prompt::{self, Anchor, ContextFile, FileView, Plan, Prompt};
use crate::stop::StopRules;
use crate::syntax::{self, Shape, Syntax};

/// Lines longer than this get no completion (see [`Skip::LineTooLong`]).
pub const MAX_LINE_CHARS: usize = 20_000;

/// Everything a completion is asked for: one snapshot of a document at a cursor. Cheap to clone
/// (ropes and trees share their nodes).
#[derive(Debug, Clone)]
pub struct Input {
    pub rope: Rope,
    /// Cursor as a char offset.
    pub cursor: usize,
    /// The file's path relative to its workspace (see [`crate::workspace`]).
    pub path: String,
    /// The workspace's name.
    pub repo: String,
    /// The editor's language id ("" when unknown), for `disabledLanguages`.
    pub language: String,
    /// The tree-sitter tree of `rope`, for languages with a grammar. It must match `rope`.
    pub syntax: Option<Syntax>,
    /// Where the last prompt for this document split prefix and typed text.
    pub anchor: Option<Anchor>,
    /// Repo-context chunks (stable per file: they change on open and save, not per keystroke).
    pub context: Arc<Vec<ContextFile>>,
    /// The file is (or links to) one the filters call secret; its path alone may not say so.
    pub secret: bool,
}

impl Input {
    /// An input without syntax tree, anchor or context.
    pub fn new(rope: Rope, cursor: usize, path: &str, repo: &str) -> Input {
        Input {
            rope,
            cursor,
            path: path.to_string(),
            repo: repo.to_string(),
            language: String::new(),
            syntax: None,
            anchor: None,
            context: Arc::new(Vec::new()),
            secret: false,
        }
    }

    pub fn view(&self) -> FileView<'_> {
        FileView {
            rope: &self.rope,
            cursor: self.cursor,
            path: &self.path,
            repo: &self.repo,
        }
    }

    /// The input as it would be after accepting `suggestion` at the cursor, keeping `anchor`
    /// (the state a prefetch completes). The tree no longer matches the text, so it is dropped.
    pub fn accepted(&self, suggestion: &str, anchor: Anchor) -> Input {
        let shown = Shown::new(&self.rope, self.cursor, suggestion.to_string(), false);
        let (rope, cursor) = shown.accepted(&self.rope);
        Input {
            rope,
            cursor,
            syntax: None,
            anchor: Some(anchor),
            ..self.clone()
        }
    }
}

/// Why no suggestion is asked of the model: data, not an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Skip {
    #[error("completions are disabled")]
    Disabled,
    #[error("completions are disabled for {0}")]
    LanguageDisabled(String),
    #[error("the document {0}")]
    NotCompletable(TextError),
    /// Secrets never become a prompt (`.env` files, keys, credentials, links to them).
    #[error("the file may hold secrets")]
    Secret,
    /// The syntax (or the text around the cursor) says no suggestion fits here.
    #[error("nothing fits at the cursor")]
    NothingFits,
    /// The cursor line is longer than [`MAX_LINE_CHARS`] (minified or generated code): the
    /// prompt rules copy and scan it, which would cost every keystroke that much.
    #[error("the cursor line has {0} characters (the limit is {MAX_LINE_CHARS})")]
    LineTooLong(usize),
}

/// A completion ready for the model: the prompt plan (its anchor is kept for the next request)
/// and the engine request.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub plan: Plan,
    pub request: GenerateRequest,
}

/// A finished suggestion and the plan of its prompt (whose anchor the next request keeps).
#[derive(Debug, Clone)]
pub struct Suggestion {
    pub plan: Plan,
    pub generation: Generation,
}

/// What a blocking completion came to.
#[derive(Debug, Clone)]
pub enum Outcome {
    Suggested(Box<Suggestion>),
    Skipped(Skip),
}

/// The pipeline: settings and a generator of tokens.
#[derive(Clone)]
pub struct Completer {
    pub engine: Arc<dyn Generator>,
    pub settings: Settings,
}

impl std::fmt::Debug for Completer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Completer")
            .field("model", &self.engine.name())
            .finish()
    }
}

impl Completer {
    pub fn new(engine: Arc<dyn Generator>, settings: Settings) -> Self {
        Completer { engine, settings }
    }

    /// Phase one: whether to ask the model, and what.
    pub fn prepare(&self, input: &Input) -> Result<Prepared, Skip> {
        check(&self.settings, input)?;
        let cursor = input.cursor.min(input.rope.len_chars());
        let line = input.rope.line(input.rope.char_to_line(cursor)).len_chars();
        if line > MAX_LINE_CHARS {
            return Err(Skip::LineTooLong(line));
        }
        let shape = self.shape(input);
        if shape == Shape::Nothing {
            return Err(Skip::NothingFits);
        }
        let plan = self.plan(input);
        let mut request = GenerateRequest {
            prompt: plan.prompt.clone(),
            stop: plan.stop.clone(),
            max_tokens: self.settings.max_tokens,
            time_cap_after_newline: Some(Duration::from_millis(self.settings.time_cap_ms)),
            partial: None,
            speculation: self.settings.speculation,
            kv: KvReuse::default(),
            persist: false,
        };
        if self.settings.syntax {
            request.stop.single_line = shape == Shape::Line;
        }
        Ok(Prepared { plan, request })
    }

    /// The prompt plan for `input` (text rules only).
    pub fn plan(&self, input: &Input) -> Plan {
        prompt::plan(
            &input.view(),
            &self.settings.budget(),
            &input.context,
            input.anchor.as_ref(),
        )
    }

    /// What kind of suggestion fits at the cursor.
    fn shape(&self, input: &Input) -> Shape {
        if !self.settings.syntax {
            return Shape::Block;
        }
        syntax::shape(input.syntax.as_ref(), &input.rope, input.cursor)
    }

    /// Sends a prepared request to the engine; with `partial`, the text generated so far is
    /// published after each token (requests that type through it join the job).
    pub fn start(
        &self,
        prepared: Prepared,
        partial: Option<Arc<watch::Sender<String>>>,
        cancel: CancelToken,
    ) -> oneshot::Receiver<Result<Generation, EngineError>> {
        let mut request = prepared.request;
        request.partial = partial;
        self.engine.submit(request, cancel)
    }

    /// Phase two: trims a finished suggestion to the code around it (the end of its block, no
    /// repeated closers, nothing that breaks a file that parsed). Empty text: show nothing.
    pub fn finish(&self, input: &Input, mut generation: Generation) -> Generation {
        if self.settings.syntax && !generation.text.is_empty() {
            generation.text = syntax::fit(
                input.syntax.as_ref(),
                &input.rope,
                input.cursor,
                &generation.text,
            )
            .unwrap_or_default();
        }
        generation
    }

    /// What of a job's text so far (`raw`, whole tokens) may be shown while the model keeps
    /// writing: cut where the stop rules would cut it, trimmed as a finished text is, and fitted
    /// with the rules that hold for unfinished code ([`syntax::fit_piece`]). Every step only
    /// shortens, and greedy decoding only appends, so each piece is a prefix of the next longer
    /// one and of what [`Completer::finish`] makes of the whole: a streamed suggestion grows but
    /// never turns into something else.
    pub fn piece(&self, input: &Input, stop: &StopRules, raw: &str) -> String {
        let cut = stop.check(raw).unwrap_or(raw.len());
        let text = stop.finish(&raw[..cut]);
        if self.settings.syntax && !text.is_empty() {
            syntax::fit_piece(input.syntax.as_ref(), &input.rope, input.cursor, &text)
        } else {
            text
        }
    }

    /// The prompt for a completion at `input`'s cursor, evaluated without generating (and, with
    /// `persist`, saved to disk or loaded from it), so that the first keystroke there costs its
    /// own tokens only. `None` when no completion would be asked for there. The plan's anchor is
    /// returned with it: the next request must keep it for its prompt to extend this one.
    pub fn warm_at(
        &self,
        input: &Input,
        persist: bool,
        cancel: CancelToken,
    ) -> Option<(Anchor, oneshot::Receiver<Result<Generation, EngineError>>)> {
        let prepared = self.prepare(input).ok()?;
        let mut request = prepared.request;
        request.max_tokens = 0;
        request.persist = persist;
        Some((prepared.plan.anchor, self.engine.submit(request, cancel)))
    }

    /// Both phases, blocking (the command line, the benchmark, tests). Must not be called inside
    /// an async runtime.
    pub fn complete(&self, input: &Input, cancel: CancelToken) -> Result<Outcome, EngineError> {
        let prepared = match self.prepare(input) {
            Ok(p) => p,
            Err(skip) => return Ok(Outcome::Skipped(skip)),
        };
        let plan = prepared.plan.clone();
        let generation = self
            .start(prepared, None, cancel)
            .blocking_recv()
            .unwrap_or(Err(EngineError::Gone))?;
        Ok(Outcome::Suggested(Box::new(Suggestion {
            plan,
            generation: self.finish(input, generation),
        })))
    }

    /// [`Completer::complete`] on a plain view, for simple callers: a skipped completion comes
    /// back as an empty generation ([`Generation::skipped`]) with the plan it would have used.
    pub fn complete_blocking(
        &self,
        view: &FileView,
        anchor: Option<&Anchor>,
        context: &[ContextFile],
        cancel: CancelToken,
    ) -> Result<(Plan, Generation), EngineError> {
        let input = Input {
            anchor: anchor.copied(),
            context: Arc::new(context.to_vec()),
            ..Input::new(view.rope.clone(), view.cursor, view.path, view.repo)
        };
        Ok(match self.complete(&input, cancel)? {
            Outcome::Suggested(s) => (s.plan, s.generation),
            Outcome::Skipped(_) => (self.plan(&input), Generation::skipped()),
        })
    }

    /// Evaluates (or loads from its snapshot on disk, else evaluates and saves) the stable
    /// repo-context prefix of `input`'s file, so the next completion there starts from it.
    pub fn warm_up(
        &self,
        input: &Input,
        cancel: CancelToken,
    ) -> oneshot::Receiver<Result<Generation, EngineError>> {
        let mut request = GenerateRequest::new(prefix_of(input), Default::default(), 0);
        request.persist = true;
        self.engine.submit(request, cancel)
    }
}

/// The refusals that do not depend on the cursor or the model: disabled, a disabled language, a
/// document not worth completing in. Cheap; checked before any cached answer is given.
pub fn check(settings: &Settings, input: &Input) -> Result<(), Skip> {
    if !settings.enable {
        return Err(Skip::Disabled);
    }
    if settings.disabled_languages.contains(&input.language) {
        return Err(Skip::LanguageDisabled(input.language.clone()));
    }
    if input.secret || crate::context::is_secret(std::path::Path::new(&input.path)) {
        return Err(Skip::Secret);
    }
    document::completable(&input.rope).map_err(Skip::NotCompletable)
}

/// The stable prefix every prompt for `input`'s file starts with (workspace name, context
/// chunks, the file's header): what a warm-up evaluates and snapshots.
pub fn prefix_of(input: &Input) -> Prompt {
    prompt::repo_prefix(&input.repo, &input.context, &input.path)
}

#[cfg(test)]
mod tests;
