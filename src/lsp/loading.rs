//! Model loading in the background, with `$/progress` and `inkling/status`: the server answers
//! requests (with nothing) while the model loads, and a reload replaces the engine only when it
//! is the newest one asked for.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tower_lsp_server::ls_types::{MessageType, NumberOrString};

use super::state::{EngineState, Server};
use crate::engine::EngineError;

/// How long the client may take to accept a progress token before the work goes on without one.
const PROGRESS_CREATE_TIMEOUT: Duration = Duration::from_secs(2);

impl Server {
    /// Asks the client for a progress token (`window/workDoneProgress/create`); false when it
    /// cannot show progress, refuses, or does not answer in time.
    pub(super) async fn create_progress(&self, token: NumberOrString) -> bool {
        self.progress_supported()
            && matches!(
                tokio::time::timeout(
                    PROGRESS_CREATE_TIMEOUT,
                    self.client.create_work_done_progress(token)
                )
                .await,
                Ok(Ok(()))
            )
    }

    /// Loads (or reloads) the model in the background, reporting `$/progress`.
    pub(super) fn start_loading(self: &Arc<Self>) {
        let me = Arc::clone(self);
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        *self.engine.write().expect("engine lock") = EngineState::Loading;
        tokio::spawn(async move {
            let settings = me.settings();
            let model = settings.model_path();
            me.status("loading", Some(model.display().to_string()))
                .await;
            // The load starts first: a client slow to answer (or never answering) the progress
            // request must not hold it up.
            let (ptx, mut prx) = tokio::sync::mpsc::unbounded_channel::<u32>();
            let cb: crate::engine::ProgressFn = Arc::new(move |p: f32| {
                let _ = ptx.send((p * 100.0) as u32);
            });
            let loader = Arc::clone(&me.loader);
            let s2 = settings.clone();
            let mut task = tokio::task::spawn_blocking(move || loader(&s2, Some(cb)));
            let token = NumberOrString::String("inkling/load".into());
            let progress = if me.create_progress(token.clone()).await {
                Some(
                    me.client
                        .progress(token, "inkling: loading model")
                        .with_message(model.display().to_string())
                        .with_percentage(0)
                        .begin()
                        .await,
                )
            } else {
                None
            };
            let mut last = 0;
            let result = loop {
                tokio::select! {
                    r = &mut task => break r,
                    Some(p) = prx.recv() => {
                        // Report in steps of 10% to keep the channel quiet.
                        if p >= last + 10 {
                            last = p;
                            if let Some(pr) = &progress { pr.report(p.min(100)).await; }
                        }
                    }
                }
            };
            let result = result
                .unwrap_or_else(|e| Err(EngineError::Load(format!("model loader panicked: {e}"))));
            if me.generation.load(Ordering::SeqCst) != generation {
                return; // A newer load replaced this one.
            }
            match result {
                Ok(engine) => {
                    let name = engine.name();
                    let details = engine
                        .details()
                        .map(|d| format!("; {d}"))
                        .unwrap_or_default();
                    *me.engine.write().expect("engine lock") = EngineState::Ready(engine);
                    if let Some(pr) = progress {
                        pr.finish_with_message(format!("{name} ready")).await;
                    }
                    me.client
                        .log_message(
                            MessageType::INFO,
                            format!("inkling: model {name} ready{details}"),
                        )
                        .await;
                    me.status("ready", Some(name)).await;
                    me.warm_latest();
                }
                Err(e) => {
                    let msg = e.to_string();
                    tracing::error!("{msg}");
                    *me.engine.write().expect("engine lock") = EngineState::Failed(msg.clone());
                    if let Some(pr) = progress {
                        pr.finish_with_message("failed").await;
                    }
                    me.client
                        .show_message(MessageType::ERROR, format!("inkling: {msg}"))
                        .await;
                    me.status("error", Some(msg)).await;
                }
            }
        });
    }
}
