//! The server's state (rust-analyzer's `GlobalState`): documents, settings, the engine, the
//! workspace and its index, and the jobs that use the engine. Handlers (`handlers.rs`) and
//! features (`suggest.rs`, `repo.rs`, `loading.rs`) work on it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tower_lsp_server::Client;
use tower_lsp_server::ls_types::Uri;

use super::documents::{Documents, Place};
use super::jobs::Jobs;
use super::protocol::{Status, StatusParams};
use crate::config::Settings;
use crate::context::{RepoContext, is_secret};
use crate::engine::{EngineError, Generator, ProgressFn};
use crate::position::Encoding;
use crate::workspace::Workspace;

/// Loads a generator for the given settings (blocking; called off the I/O task).
pub type Loader = Arc<
    dyn Fn(&Settings, Option<ProgressFn>) -> std::result::Result<Arc<dyn Generator>, EngineError>
        + Send
        + Sync,
>;

/// The real loader: llama.cpp on its engine thread.
pub fn llama_loader() -> Loader {
    Arc::new(|settings, progress| {
        let mut cfg = settings.engine_config();
        cfg.progress = progress;
        crate::engine::Engine::spawn(cfg).map(|e| Arc::new(e) as Arc<dyn Generator>)
    })
}

pub(super) enum EngineState {
    Loading,
    Ready(Arc<dyn Generator>),
    Failed(String),
}

/// Everything the server knows.
pub struct Server {
    pub(super) client: Client,
    pub(super) loader: Loader,
    pub(super) docs: Documents,
    pub(super) settings: RwLock<Settings>,
    pub(super) engine: RwLock<EngineState>,
    pub(super) encoding: RwLock<Encoding>,
    /// The editor's workspace (its root folder), when it named one.
    pub(super) workspace: RwLock<Option<Workspace>>,
    pub(super) jobs: Jobs,
    /// The workspace index and recent-files ring, once the walk is done.
    pub(super) repo: RwLock<Option<RepoContext>>,
    pub(super) watch_supported: AtomicBool,
    pub(super) progress_supported: AtomicBool,
    /// Bumped on each (re)load so an old load finishing late does not win.
    pub(super) generation: AtomicU64,
    /// Each file's last cursor (see `warm.rs`).
    pub(super) cursors: super::warm::Cursors,
}

impl Server {
    pub fn new(client: Client, loader: Loader) -> Self {
        Server {
            client,
            loader,
            docs: Documents::default(),
            settings: RwLock::new(Settings::default()),
            engine: RwLock::new(EngineState::Loading),
            encoding: RwLock::new(Encoding::Utf16),
            workspace: RwLock::new(None),
            jobs: Jobs::default(),
            repo: RwLock::new(None),
            watch_supported: AtomicBool::new(false),
            progress_supported: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            cursors: Default::default(),
        }
    }

    pub(super) fn enc(&self) -> Encoding {
        *self.encoding.read().expect("encoding lock")
    }

    pub(super) fn settings(&self) -> Settings {
        self.settings.read().expect("settings lock").clone()
    }

    pub(super) fn progress_supported(&self) -> bool {
        self.progress_supported.load(Ordering::Relaxed)
    }

    pub(super) async fn status(&self, state: &str, message: Option<String>) {
        self.client
            .send_notification::<Status>(StatusParams {
                state: state.to_string(),
                message,
            })
            .await;
    }

    /// The engine, when it is loaded.
    pub(super) fn generator(&self) -> Option<Arc<dyn Generator>> {
        match &*self.engine.read().expect("engine lock") {
            EngineState::Ready(g) => Some(Arc::clone(g)),
            EngineState::Loading => {
                tracing::debug!("no completion: the model is still loading");
                None
            }
            EngineState::Failed(e) => {
                tracing::debug!("no completion: the model failed to load: {e}");
                None
            }
        }
    }

    /// Where a document is, as the model sees it: inside the editor's workspace, or in the one
    /// that contains the file (see [`crate::workspace`]).
    pub(super) fn place(&self, uri: &Uri) -> Place {
        let file = uri
            .to_file_path()
            .map(|p| p.into_owned())
            .unwrap_or_else(|| PathBuf::from(uri.path().as_str()));
        let (ws, path) = match &*self.workspace.read().expect("workspace lock") {
            Some(ws) => ws.locate(&file),
            None => Workspace::containing(&file).locate(&file),
        };
        // A link with an innocent name may point at a secret: judge the real file too.
        let real = std::fs::canonicalize(&file).unwrap_or_else(|_| file.clone());
        Place {
            secret: is_secret(Path::new(&path)) || is_secret(&file) || is_secret(&real),
            path,
            repo: ws.name().to_string(),
        }
    }
}
