//! inkling: offline code completion from a local model.
//!
//! See ARCHITECTURE.md for the code map. The layers, from the editor inwards:
//! [`lsp`] (protocol) → [`complete`] (suggestions, caches) → [`prompt`] + [`stop`] (pure text rules)
//! → [`engine`] (llama.cpp on its own thread).

pub mod bench;
pub mod complete;
pub mod config;
pub mod context;
pub mod document;
pub mod engine;
pub mod lsp;
pub mod position;
pub mod prompt;
pub mod speculative;
pub mod stop;
pub mod syntax;
pub mod workspace;
