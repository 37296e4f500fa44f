//! The protocol edge: LSP over stdio (or any byte stream, for tests).
//!
//! Architecture Invariant: only this module knows LSP types and JSON. Positions are converted once,
//! on the way in, through [`crate::position`].

pub mod client;
pub mod protocol;
pub mod server;

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tower_lsp_server::{ClientSocket, LspService};

pub use server::{Handle, Loader, Server, llama_loader};

/// Builds the service with inkling's extra methods registered.
pub fn service(loader: Loader) -> (LspService<Handle>, ClientSocket) {
    LspService::build(|client| Handle(Arc::new(Server::new(client, loader))))
        // tower-lsp-server 0.23 has the 3.18 types but no trait method for inline completion.
        .custom_method("textDocument/inlineCompletion", Handle::inline_completion)
        .custom_method("inkling/complete", Handle::inkling_complete)
        .finish()
}

/// Serves one client over the given streams until it exits.
pub async fn serve<I, O>(input: I, output: O, loader: Loader)
where
    I: AsyncRead + Unpin,
    O: AsyncWrite,
{
    let (service, socket) = service(loader);
    // Enough slots that waiting completions never hold back didChange notifications.
    tower_lsp_server::Server::new(input, output, socket)
        .concurrency_level(64)
        .serve(service)
        .await;
}

/// `inkling lsp`: the real engine on stdin/stdout.
pub fn run_stdio() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(serve(
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
    Ok(())
}
