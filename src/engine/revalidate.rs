//! `auto`'s choice between plain decoding and speculation, re-checked so that one measurement
//! never decides for good. A start-up probe taken beside another workload once measured a
//! three-token pass at 1.3 one-token passes on a 2-core CPU (it is about 2), turned speculation
//! on, saved that, and every later start read it back. So:
//!
//! - a noisy probe (its passes vary too much) never turns speculation on and is not saved;
//! - a decision read from a saved (or noisy) probe is measured again in idle time, on a small
//!   context of its own (the completion cache stays), and a job that arrives stops the probe;
//! - live decoding is compared with the probe: when speculating, live pass costs that say it
//!   does not pay turn it off at once; a probe whose one-token cost is far from what decoding
//!   really costs (the sanity bound) is measured again;
//! - whatever is decided replaces the saved probe.
//!
//! Switching recreates the target's context (speculation runs without flash attention, plain
//! decoding with it), which empties the KV cache once.

use std::sync::mpsc;

use super::kv::KvSeq;
use super::load::{backend, context_params};
use super::probe::{PROBE_TEXT, probe_batches, save_probe};
use super::tokens::tokenize;
use super::worker::Worker;
use super::{BatchProbe, EngineError, Job};
use crate::prompt::Piece;
use crate::speculative::speculation_pays;

/// Live passes of each size needed before they may overrule the probe.
const LIVE_SAMPLES: u32 = 24;

/// A probe whose one-token cost is off from live decoding's by more than this factor (either
/// way) was taken under other conditions.
const SANITY_FACTOR: f64 = 3.0;

/// Context size of the probe's own context: the probe's prompt is some 40 tokens.
const PROBE_CTX: u32 = 256;

impl Worker<'_> {
    /// After a job: live decoding against the probe (see the module header).
    pub(super) fn check_live_costs(&mut self) {
        if !self.auto {
            return;
        }
        let one = self.policy.live_cost(1, LIVE_SAMPLES);
        if let (Some(live), Some(probed)) = (one, self.probe_one_ms) {
            if live > probed * SANITY_FACTOR || live * SANITY_FACTOR < probed {
                tracing::info!(
                    live_ms = live,
                    probed_ms = probed,
                    "one-token passes cost far from what the probe measured; measuring again when idle"
                );
                self.probe_one_ms = None;
                self.revalidate = true;
            }
        }
        if !self.speculating {
            return;
        }
        let (Some(one_ms), Some(three_ms)) = (one, self.policy.live_cost(3, LIVE_SAMPLES)) else {
            return;
        };
        if speculation_pays(one_ms, three_ms) {
            return;
        }
        tracing::warn!(
            one_ms,
            three_ms,
            "live decoding disagrees with the probe: speculation does not pay here; decoding plainly from now on"
        );
        self.decide(BatchProbe {
            exact: self.exact_batches,
            one_ms,
            three_ms,
            took_ms: 0.0,
            from_cache: false,
            speculating: false,
            noisy: false,
            live: true,
        });
    }

    /// In idle time: probes again on a context of its own; a job arriving stops it (and is kept
    /// in `next_job`).
    pub(super) fn reprobe(&mut self, jobs: &mpsc::Receiver<Job>, next_job: &mut Option<Job>) {
        let mut small = self.config.clone();
        small.ctx_size = PROBE_CTX;
        let ctx = backend().and_then(|b| {
            self.model
                .new_context(b, context_params(&small, false))
                .map_err(|e| EngineError::Load(e.to_string()))
        });
        let mut seq = match ctx {
            Ok(c) => KvSeq::new(c),
            Err(e) => {
                tracing::warn!("cannot measure batches again: {e}");
                self.revalidate = false;
                return;
            }
        };
        let (tokens, _) = tokenize(self.model, &self.fim, &[Piece::Text(PROBE_TEXT.into())]);
        let mut stop = || match jobs.try_recv() {
            Ok(j) => {
                *next_job = Some(j);
                true
            }
            Err(mpsc::TryRecvError::Empty) => false,
            Err(mpsc::TryRecvError::Disconnected) => true,
        };
        let probe = match probe_batches(&mut seq, &tokens, &mut stop) {
            Ok(p) => p,
            // A job came first: measure at the next idle time.
            Err(EngineError::Cancelled) => return,
            Err(e) => {
                tracing::warn!("cannot measure batches again: {e}");
                self.revalidate = false;
                return;
            }
        };
        if probe.noisy {
            tracing::debug!("the idle probe was noisy too; measuring again at the next idle time");
            return;
        }
        self.revalidate = false;
        self.probe_one_ms = Some(probe.one_ms);
        tracing::info!(
            one_ms = probe.one_ms,
            three_ms = probe.three_ms,
            pays = probe.pays(),
            "batches measured again in idle time"
        );
        self.decide(probe);
    }

    /// Applies what `probe` says (switching the mode when it changes) and saves it.
    fn decide(&mut self, mut probe: BatchProbe) {
        let pays = probe.pays();
        probe.speculating = pays;
        if pays != self.speculating {
            // Speculation runs without flash attention (verification must round like one-token
            // passes); plain decoding takes it back.
            let flash = !pays && self.config.flash_attention;
            let ctx = backend().and_then(|b| {
                self.model
                    .new_context(b, context_params(&self.config, flash))
                    .map_err(|e| EngineError::Load(e.to_string()))
            });
            match ctx {
                Ok(c) => {
                    self.target = KvSeq::new(c);
                    self.speculating = pays;
                    self.exact_batches = probe.exact;
                    if pays {
                        // Prompt lookup only: the draft model is loaded at start-up alone.
                        self.policy.record_batch(1, probe.one_ms);
                        self.policy.record_batch(3, probe.three_ms);
                    } else {
                        self.draft = None;
                        self.policy.draft_available = false;
                    }
                    tracing::info!(speculating = pays, "decoding mode switched");
                }
                Err(e) => tracing::warn!("cannot switch the decoding mode: {e}"),
            }
        }
        if let Some(path) = &self.probe_file {
            save_probe(path, &probe);
        }
    }
}
