//! Speculative decoding: guess several tokens cheaply, let the target model check them in one
//! batch, keep the ones it agrees with. The answer is exactly plain greedy decoding's; only the
//! number of target passes changes.
//!
//! Split as proposer (who guesses), verifier (a pure function over the target's argmax at each
//! drafted position) and policy (which proposer, how many tokens, or none, from measured costs).
//!
//! Architecture Invariant: nothing here touches llama.cpp; tokens are plain `i32`s. The engine owns
//! the models and calls in.

pub mod lookup;
pub mod policy;
pub mod verify;

pub use lookup::PromptLookup;
pub use policy::{Choice, Policy, speculation_pays};
pub use verify::verify;
