//! `inkling bench`: headless benchmarks through the same code paths the editors use.
//!
//! `tasks` runs completion tasks through [`crate::complete::Completer`]; `replay` types sessions into
//! a real `inkling lsp` process; `soak` types a long, unkind session into one and watches its
//! memory and answers; `make` builds task and session sets from a repository.
//!
//! Architecture Invariant: the benchmark measures; it never changes how completions are made.

pub mod child;
pub mod make;
pub mod metrics;
pub mod replay;
pub mod report;
pub mod soak;
pub mod tasks;
