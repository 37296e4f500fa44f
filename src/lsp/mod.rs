//! The protocol edge: LSP over stdio (or any byte stream, for tests).
//!
//! `state.rs` holds what the server knows; `handlers.rs` converts requests and notifications
//! and calls the features (`suggest.rs`: completions; `repo.rs`: repo context and warm-up;
//! `loading.rs`: the model), which use `documents.rs` (open documents, in arrival order) and
//! `jobs.rs` (latest wins, the shared model job); `to_proto.rs` shapes the answers.
//!
//! Architecture Invariant: only this module knows LSP types and JSON. Positions are converted once,
//! on the way in, through [`crate::position`].

pub mod client;
pub mod documents;
mod handlers;
mod jobs;
mod loading;
pub mod protocol;
mod repo;
mod state;
mod suggest;
mod to_proto;
pub mod transport;
mod warm;

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tower_lsp_server::{ClientSocket, LspService};

pub use handlers::Handle;
pub use state::{Loader, Server, llama_loader};

/// Builds the service with inkling's extra methods registered.
pub fn service(loader: Loader) -> (LspService<Handle>, ClientSocket) {
    LspService::build(|client| Handle(Arc::new(Server::new(client, loader))))
        // tower-lsp-server 0.23 has the 3.18 types but no trait method for inline completion.
        .custom_method("textDocument/inlineCompletion", Handle::inline_completion)
        .custom_method("inkling/complete", Handle::inkling_complete)
        .custom_method("inkling/cursor", Handle::cursor)
        .finish()
}

/// Serves one client over the given streams until it exits (or its stream ends). Every frame
/// passes the [`transport::gate`] first. True when the client asked for `shutdown` first: the
/// process must exit with status 1 otherwise.
pub async fn serve<I, O>(input: I, output: O, loader: Loader) -> bool
where
    I: AsyncRead + Unpin + Send + 'static,
    O: AsyncWrite + Unpin + Send + 'static,
{
    let (service, socket) = service(loader);
    let (to_server, server_in) = tokio::io::duplex(1 << 16);
    let (server_out, from_server) = tokio::io::duplex(1 << 16);
    let (replies, out) = tokio::sync::mpsc::unbounded_channel();
    let session = Arc::new(transport::Session::default());
    let gate = tokio::spawn(transport::gate(
        input,
        to_server,
        replies.clone(),
        Arc::clone(&session),
    ));
    let relay = tokio::spawn(transport::relay(from_server, replies));
    let writer = tokio::spawn(transport::write_out(output, out));
    // Enough slots that waiting completions never hold back didChange notifications.
    tower_lsp_server::Server::new(server_in, server_out, socket)
        .concurrency_level(64)
        .serve(service)
        .await;
    // The server is done: stop reading, send what it wrote last, then close the stream.
    gate.abort();
    let _ = gate.await;
    let _ = relay.await;
    let _ = writer.await;
    session.clean()
}

/// `inkling lsp`: the real engine on stdin/stdout.
pub fn run_stdio() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let clean = rt.block_on(serve(
        tokio::io::stdin(),
        tokio::io::stdout(),
        llama_loader(),
    ));
    // Dropping the runtime drops the tasks' engine handles; then let the engine thread finish
    // its last decode before the process exits.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    if !crate::engine::wait_for_engine_threads(std::time::Duration::from_secs(5)) {
        tracing::warn!("the engine thread is still busy at exit");
    }
    anyhow::ensure!(clean, "the client ended the session without `shutdown`");
    Ok(())
}
