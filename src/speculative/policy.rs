//! The policy: which proposer, how many tokens, or plain decoding — from measured costs and
//! recent acceptance, so that speculation is used only where it pays on this machine.

use super::Speculation;

/// What to do for the next decoding step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Plain,
    /// Draft up to this many tokens by prompt lookup.
    Lookup(usize),
    /// Draft this many tokens with the draft model.
    Draft(usize),
}

/// Exponential moving average with a prior.
#[derive(Debug, Clone, Copy)]
struct Ema {
    value: f64,
    n: u32,
}

impl Ema {
    fn new(prior: f64) -> Self {
        Ema { value: prior, n: 0 }
    }
    fn add(&mut self, x: f64) {
        self.n = self.n.saturating_add(1);
        // Fast at first, then a window of about 20 observations.
        let alpha = (1.0 / f64::from(self.n)).max(0.05);
        self.value += alpha * (x - self.value);
    }
}

/// At most two drafted tokens: with llama.cpp's CPU kernels (built without llamafile) a batch of
/// up to three rows takes the same one-row (GEMV, vec_dot) paths as plain decoding, so
/// verification is bit-identical to it; from four rows on, the repacked Q4_K weights go through
/// GEMM, which rounds differently, and near-ties could flip.
pub const MAX_K: usize = 2;

/// Per-token acceptance that prompt lookup reaches on good stretches (measured: 78% of proposed
/// tokens over 104 completions); used to judge the best case before any request.
const OPTIMISTIC_ACCEPT: f64 = 0.8;

/// In `auto` speculation's best case must make decoding this much cheaper per token (at most 60%
/// of plain's cost) to be switched on: it runs without flash attention (slower prompts), lookup
/// proposes only where the text repeats, and the probe's short context flatters batches. The
/// margin keeps the choice stable against timing noise: on 2-core CPUs a three-token pass was
/// measured at 1.8 to 2.3 one-token passes (threshold 1.46), on GPUs it is near 1.
const REQUIRED_SAVING: f64 = 0.6;

/// Whether speculation can pay on this machine, from the measured cost of a one-token and of a
/// three-token pass: even drafts that cost nothing (prompt lookup) at an optimistic acceptance
/// must beat plain decoding by a margin. On a 2-core CPU a three-token pass costs about 2.3
/// one-token passes (no); on a GPU about one (yes).
pub fn speculation_pays(one_ms: f64, three_ms: f64) -> bool {
    let a = OPTIMISTIC_ACCEPT;
    let tokens_per_pass = 1.0 + a + a * a;
    one_ms > 0.0 && three_ms / tokens_per_pass < REQUIRED_SAVING * one_ms
}

/// Costs and acceptance learned while decoding.
#[derive(Debug, Clone)]
pub struct Policy {
    pub mode: Speculation,
    pub draft_available: bool,
    /// Target: ms for a batch of `b` tokens, b = 1..=MAX_K+1.
    batch_ms: Vec<Ema>,
    draft_token_ms: Ema,
    lookup_accept: Ema,
    draft_accept: Ema,
    steps: u64,
}

impl Policy {
    pub fn new(mode: Speculation, draft_available: bool) -> Self {
        // Priors from a 2-core CPU (1.5B target): batches cost about b^0.8 times one token.
        let batch_ms = (1..=MAX_K + 1)
            .map(|b| Ema::new(50.0 * (b as f64).powf(0.8)))
            .collect();
        Policy {
            mode,
            draft_available,
            batch_ms,
            draft_token_ms: Ema::new(25.0),
            lookup_accept: Ema::new(0.6),
            draft_accept: Ema::new(0.6),
            steps: 0,
        }
    }

    /// Records how long a target pass over `batch` tokens took.
    pub fn record_batch(&mut self, batch: usize, ms: f64) {
        if (1..=MAX_K + 1).contains(&batch) {
            self.batch_ms[batch - 1].add(ms);
        }
    }

    /// Live cost of a pass over `batch` tokens, once at least `min_samples` were measured while
    /// decoding.
    pub fn live_cost(&self, batch: usize, min_samples: u32) -> Option<f64> {
        let e = self.batch_ms.get(batch.checked_sub(1)?)?;
        (e.n >= min_samples).then_some(e.value)
    }

    pub fn record_draft_token(&mut self, ms: f64) {
        self.draft_token_ms.add(ms);
    }

    /// Per-token acceptance from one verification (`accepted` of `proposed`).
    pub fn record_accept(&mut self, choice: Choice, proposed: usize, accepted: usize) {
        if proposed == 0 {
            return;
        }
        // Per-token rate p with p^accepted... estimated by accepted/(accepted + miss).
        let miss = usize::from(accepted < proposed);
        let rate = accepted as f64 / (accepted + miss).max(1) as f64;
        match choice {
            Choice::Lookup(_) => self.lookup_accept.add(rate),
            Choice::Draft(_) => self.draft_accept.add(rate),
            Choice::Plain => {}
        }
    }

    /// Expected ms per produced token for `k` drafted tokens at acceptance `a`, plus draft cost.
    fn cost_per_token(&self, k: usize, a: f64, draft_ms: f64) -> f64 {
        let expected: f64 = (0..=k).map(|i| a.powi(i as i32)).sum();
        (self.batch_ms[k].value + draft_ms * k as f64) / expected
    }

    fn best(&self, a: f64, draft_ms: f64, max_k: usize) -> (usize, f64) {
        (1..=max_k.min(MAX_K))
            .map(|k| (k, self.cost_per_token(k, a, draft_ms)))
            .min_by(|x, y| x.1.total_cmp(&y.1))
            .unwrap_or((0, f64::INFINITY))
    }

    /// Whether the draft model is expected to beat plain decoding (worth warming its cache).
    pub fn draft_pays(&self) -> bool {
        match self.mode {
            Speculation::Draft => self.draft_available,
            Speculation::Auto => {
                self.draft_available
                    && self
                        .best(self.draft_accept.value, self.draft_token_ms.value, MAX_K)
                        .1
                        < self.batch_ms[0].value
            }
            _ => false,
        }
    }

    /// Decides the next step; `lookup_len` is how many tokens prompt lookup can propose now.
    pub fn choose(&mut self, lookup_len: usize) -> Choice {
        self.steps += 1;
        let plain = self.batch_ms[0].value;
        let lookup = || self.best(self.lookup_accept.value, 0.0, lookup_len);
        let draft = || self.best(self.draft_accept.value, self.draft_token_ms.value, MAX_K);
        match self.mode {
            Speculation::Off => Choice::Plain,
            Speculation::Lookup if lookup_len > 0 => Choice::Lookup(lookup().0.max(1)),
            Speculation::Lookup => Choice::Plain,
            Speculation::Draft if self.draft_available => Choice::Draft(draft().0.max(1)),
            Speculation::Draft => Choice::Plain,
            Speculation::Auto => {
                let (lk, lc) = if lookup_len > 0 {
                    lookup()
                } else {
                    (0, f64::INFINITY)
                };
                let (dk, dc) = if self.draft_available {
                    draft()
                } else {
                    (0, f64::INFINITY)
                };
                // Keep a little exploration so a changed acceptance rate is noticed.
                let explore = self.steps % 16 == 0;
                if dc < lc && (dc < plain * 0.95 || (explore && self.draft_available)) {
                    Choice::Draft(dk.max(1))
                } else if lk > 0 && (lc < plain * 0.95 || explore) {
                    Choice::Lookup(lk)
                } else {
                    Choice::Plain
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speculation_pays_only_where_batches_are_cheap() {
        // Measured on 2-core CPUs: a three-token pass costs 1.8 to 2.3 one-token passes.
        assert!(!speculation_pays(45.0, 2.3 * 45.0));
        assert!(!speculation_pays(94.0, 171.6));
        // GPU-like: three tokens cost about one.
        assert!(speculation_pays(8.0, 9.0));
        // The break-even: 2.44 tokens per pass at 80%, at most 60% of plain's cost per token.
        assert!(speculation_pays(10.0, 14.0));
        assert!(!speculation_pays(10.0, 15.0));
        assert!(!speculation_pays(0.0, 1.0));
    }

    #[test]
    fn off_and_forced_modes() {
        assert_eq!(Policy::new(Speculation::Off, true).choose(4), Choice::Plain);
        assert!(
            matches!(Policy::new(Speculation::Lookup, false).choose(3), Choice::Lookup(k) if (1..=3).contains(&k))
        );
        assert_eq!(
            Policy::new(Speculation::Lookup, false).choose(0),
            Choice::Plain
        );
        assert!(matches!(
            Policy::new(Speculation::Draft, true).choose(0),
            Choice::Draft(_)
        ));
        assert_eq!(
            Policy::new(Speculation::Draft, false).choose(0),
            Choice::Plain
        );
    }

    #[test]
    fn auto_uses_lookup_only_when_it_pays() {
        // CPU-like costs: batches nearly linear, acceptance poor -> plain.
        let mut p = Policy::new(Speculation::Auto, false);
        for _ in 0..30 {
            p.record_accept(Choice::Lookup(4), 4, 0);
        }
        let picks: Vec<Choice> = (0..15).map(|_| p.choose(4)).collect();
        assert!(picks.iter().all(|c| *c == Choice::Plain), "{picks:?}");
        // GPU-like costs: a batch costs as much as one token -> lookup pays even at 60%.
        let mut g = Policy::new(Speculation::Auto, false);
        for b in 1..=3 {
            for _ in 0..30 {
                g.record_batch(b, 10.0);
            }
        }
        assert!(matches!(g.choose(4), Choice::Lookup(2)));
    }

    #[test]
    fn auto_picks_the_draft_model_when_cheap_and_accurate() {
        let mut p = Policy::new(Speculation::Auto, true);
        for b in 1..=3 {
            for _ in 0..30 {
                p.record_batch(b, 20.0);
            }
        }
        for _ in 0..30 {
            p.record_draft_token(2.0);
            p.record_accept(Choice::Draft(4), 4, 4);
        }
        assert!(matches!(p.choose(0), Choice::Draft(2)));
        // Expensive drafts on a CPU: back to plain.
        let mut c = Policy::new(Speculation::Auto, true);
        for _ in 0..30 {
            c.record_draft_token(25.0);
            c.record_accept(Choice::Draft(4), 4, 1);
        }
        assert_eq!(c.choose(0), Choice::Plain);
    }
}
