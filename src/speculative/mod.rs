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

use serde::{Deserialize, Serialize};

pub use lookup::PromptLookup;
pub use policy::{Choice, Policy, speculation_pays};
pub use verify::verify;

/// How speculative decoding is used. Every mode returns exactly the plain greedy text: verified
/// tokens are decided on logits that the engine checks, at start-up, to be bit-identical to
/// one-token passes (see `BatchProbe`).
///
/// `auto`, the default, measures at start-up whether a three-token pass costs little enough
/// for drafting to pay; where it does not (a 2-core CPU: about 2 one-token passes) it decodes
/// plainly, with flash attention, and does not load the draft model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Speculation {
    Off,
    Lookup,
    Draft,
    #[default]
    Auto,
}
