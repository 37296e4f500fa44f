//! The decode loop on a table-driven fake model: token healing, stop tokens and rules, and
//! speculative acceptance (which must give exactly the plain greedy text).

use std::time::Instant;

use llama_cpp_2::token::LlamaToken;

use super::{Decoding, Drafter, Roles, Rows, Start, decode};
use crate::engine::tokens::TokenTable;
use crate::engine::{CancelToken, EngineError, GenerateRequest, StopReason, Timings};
use crate::prompt::Prompt;
use crate::speculative::{Policy, PromptLookup, Speculation};
use crate::stop::StopRules;

const EOT: i32 = 0;
const RE: i32 = 1;
const RETURN: i32 = 2;
const X: i32 = 3;
const NL: i32 = 4;
const TU: i32 = 5;
const RET: i32 = 6;
const A: i32 = 7;
const B: i32 = 8;
const C: i32 = 9;
const D: i32 = 10;

fn table() -> TokenTable {
    let pieces = [
        "<eot>", "re", "return", " x", "\n", "tu", "ret", "a", "b", "c", "d",
    ];
    TokenTable {
        pieces: pieces.iter().map(|p| p.as_bytes().to_vec()).collect(),
        stops: (0..pieces.len()).map(|i| i == EOT as usize).collect(),
    }
}

/// Logits that rank `order` first to last, every other token far below.
fn ranked(order: &[i32]) -> Vec<f32> {
    let mut l = vec![-10.0; table().pieces.len()];
    for (i, t) in order.iter().enumerate() {
        l[*t as usize] = 5.0 - i as f32;
    }
    l
}

/// A model whose logits depend on the context through a function; it counts what it evaluates.
struct Fake {
    cached: Vec<LlamaToken>,
    rows: Vec<Vec<f32>>,
    next: fn(&[LlamaToken]) -> Vec<f32>,
    evaluated: usize,
    passes: usize,
}

impl Fake {
    fn new(prompt: &[i32], next: fn(&[LlamaToken]) -> Vec<f32>) -> Self {
        let mut f = Fake {
            cached: Vec::new(),
            rows: Vec::new(),
            next,
            evaluated: 0,
            passes: 0,
        };
        let p: Vec<LlamaToken> = prompt.iter().map(|t| LlamaToken(*t)).collect();
        f.eval_rows(&p, &|i| i + 1 == p.len()).unwrap();
        f
    }
}

impl Rows for Fake {
    fn eval_rows(
        &mut self,
        tokens: &[LlamaToken],
        logits: &dyn Fn(usize) -> bool,
    ) -> Result<(), EngineError> {
        self.rows.clear();
        for (i, t) in tokens.iter().enumerate() {
            self.cached.push(*t);
            let row = if logits(i) {
                (self.next)(&self.cached)
            } else {
                Vec::new()
            };
            self.rows.push(row);
        }
        self.evaluated += tokens.len();
        self.passes += 1;
        Ok(())
    }
    fn logits(&self, row: i32) -> &[f32] {
        &self.rows[row as usize]
    }
    fn last_row(&self) -> i32 {
        self.rows.len() as i32 - 1
    }
    fn len(&self) -> usize {
        self.cached.len()
    }
    fn truncate(&mut self, n: usize) {
        self.cached.truncate(n);
    }
}

/// "return x\n" then end of text; anything else prefers " x", then "return", "ret", "re".
fn code_model(ctx: &[LlamaToken]) -> Vec<f32> {
    match ctx.last().map(|t| t.0) {
        Some(RETURN) => ranked(&[X]),
        Some(X) => ranked(&[NL]),
        Some(NL) => ranked(&[EOT]),
        Some(RE) => ranked(&[X, TU]),
        Some(TU) => ranked(&[RE, X]),
        _ => ranked(&[X, RETURN, RET, RE]),
    }
}

/// a → b → c → d → a ..., whatever came before.
fn cycle_model(ctx: &[LlamaToken]) -> Vec<f32> {
    match ctx.last().map(|t| t.0) {
        Some(A) => ranked(&[B]),
        Some(B) => ranked(&[C]),
        Some(C) => ranked(&[D]),
        _ => ranked(&[A]),
    }
}

fn request(max_tokens: usize, stop: StopRules) -> GenerateRequest {
    GenerateRequest::new(Prompt::default(), stop, max_tokens)
}

/// Plain decoding of at most `max` tokens with `stop` rules after `prompt`, healing `heal`.
fn plain(
    model: fn(&[LlamaToken]) -> Vec<f32>,
    prompt: &[i32],
    max: usize,
    stop: StopRules,
    heal: Option<&str>,
) -> (Fake, Decoding, Timings) {
    decode_on(model, prompt, Speculation::Off, &request(max, stop), heal)
}

/// Decodes after `prompt` on a fresh fake of `model`; returns the fake (what it evaluated).
fn decode_on(
    model: fn(&[LlamaToken]) -> Vec<f32>,
    prompt: &[i32],
    mode: Speculation,
    req: &GenerateRequest,
    heal: Option<&str>,
) -> (Fake, Decoding, Timings) {
    let run = Run {
        policy: Policy::new(mode, false),
        ..Run::new(prompt, heal)
    };
    let (fake, d, t) = run.decode(model, None, req);
    (fake, d.expect("decodes"), t)
}

/// One decoding run's set-up, for the tests that need more than [`decode_on`].
struct Run {
    prompt: Vec<i32>,
    heal: Option<Vec<u8>>,
    policy: Policy,
    cancel: CancelToken,
}

impl Run {
    fn new(prompt: &[i32], heal: Option<&str>) -> Self {
        Run {
            prompt: prompt.to_vec(),
            heal: heal.map(|h| h.as_bytes().to_vec()),
            policy: Policy::new(Speculation::Off, false),
            cancel: CancelToken::new(),
        }
    }

    fn decode(
        mut self,
        model: fn(&[LlamaToken]) -> Vec<f32>,
        drafter: Option<&mut CycleDrafter>,
        req: &GenerateRequest,
    ) -> (Fake, Result<Decoding, EngineError>, Timings) {
        let mut fake = Fake::new(&self.prompt, model);
        let lookup = PromptLookup::default();
        let mut roles = Roles {
            policy: &mut self.policy,
            lookup: &lookup,
            drafter: drafter.map(|d| d as &mut dyn Drafter),
            exact_batches: true,
            abandoned: &|| false,
        };
        let mut timings = Timings::default();
        let start = Start {
            context: self.prompt.iter().map(|t| LlamaToken(*t)).collect(),
            heal: self.heal,
            t0: Instant::now(),
        };
        let d = decode(
            &mut fake,
            &table(),
            &mut roles,
            req,
            &self.cancel,
            start,
            &mut timings,
        );
        (fake, d, timings)
    }
}

#[test]
fn healing_makes_the_first_token_agree_with_the_typed_text() {
    // The prompt ended in "re" (dropped for healing): " x" is the model's favourite, but only
    // tokens that agree with "re" may come first; "return" is the best of those, and its first
    // two bytes are already typed.
    let (_, d, _) = plain(code_model, &[A], 16, StopRules::default(), Some("re"));
    assert_eq!(d.out.text, "turn x\n");
    assert_eq!(d.stop, StopReason::EndOfText);
    assert_eq!(d.out.generated, 3, "the stop token is not counted");
}

#[test]
fn a_shorter_token_carries_the_healing_constraint_to_the_next() {
    // Healing "ret": "re" covers two bytes, so the next token must start with "t".
    fn model(ctx: &[LlamaToken]) -> Vec<f32> {
        match ctx.last().map(|t| t.0) {
            Some(RE) => ranked(&[X, TU]),
            Some(TU) => ranked(&[EOT]),
            _ => ranked(&[RE, RETURN]),
        }
    }
    let (_, d, _) = plain(model, &[NL], 16, StopRules::default(), Some("ret"));
    assert_eq!(
        d.out.text, "u",
        "\"re\" and the \"t\" of \"tu\" were typed already"
    );
    assert_eq!(d.out.bytes, b"u");
}

#[test]
fn a_stop_rule_cuts_the_text_and_the_token_is_not_evaluated() {
    let single_line = StopRules {
        single_line: true,
        ..StopRules::default()
    };
    let (fake, d, _) = plain(code_model, &[A], 16, single_line, Some("re"));
    assert_eq!(d.stop, StopReason::StopRule);
    assert_eq!(d.keep, Some("turn x".len()));
    // The prompt, "return" and " x" were evaluated; the newline that stopped it was not.
    assert_eq!(fake.evaluated, 3);
}

#[test]
fn max_tokens_ends_decoding() {
    let (_, d, t) = plain(cycle_model, &[A], 5, StopRules::default(), None);
    assert_eq!(d.out.text, "bcdab");
    assert_eq!(d.stop, StopReason::MaxTokens);
    assert_eq!(t.draft_proposed, 0);
}

#[test]
fn accepted_lookup_drafts_give_the_plain_text_in_fewer_passes() {
    // The prompt repeats the cycle, so prompt lookup proposes what the model would say.
    let prompt = [A, B, C, D, A, B, C, D, A];
    let req = request(12, StopRules::default());
    let (plain_model, plain, _) = decode_on(cycle_model, &prompt, Speculation::Off, &req, None);
    let (spec_model, spec, t) = decode_on(cycle_model, &prompt, Speculation::Lookup, &req, None);
    assert_eq!(spec.out.text, plain.out.text);
    assert_eq!(spec.stop, plain.stop);
    assert!(
        t.draft_proposed > 0 && t.draft_accepted == t.draft_proposed,
        "{t:?}"
    );
    // The cache holds exactly what plain decoding evaluated.
    assert_eq!(spec_model.cached, plain_model.cached);
}

#[test]
fn rejected_lookup_drafts_are_rolled_back() {
    // The prompt says "a b a b a": after the model's "b", lookup proposes "a b", but the model
    // continues "c".
    let prompt = [A, B, A, B, A];
    let req = request(10, StopRules::default());
    let (plain_model, plain, _) = decode_on(cycle_model, &prompt, Speculation::Off, &req, None);
    let (spec_model, spec, t) = decode_on(cycle_model, &prompt, Speculation::Lookup, &req, None);
    assert_eq!(spec.out.text, plain.out.text);
    assert!(t.draft_accepted < t.draft_proposed, "{t:?}");
    assert_eq!(spec_model.cached, plain_model.cached);
}

/// A drafter that always guesses the cycle, to check the draft role's bookkeeping.
struct CycleDrafter;

impl Drafter for CycleDrafter {
    fn lag(&self, _: &[LlamaToken]) -> usize {
        0
    }
    fn propose(
        &mut self,
        context: &[LlamaToken],
        k: usize,
        _: &CancelToken,
    ) -> Result<Vec<LlamaToken>, EngineError> {
        let mut last = context.last().map_or(A, |t| t.0);
        Ok((0..k)
            .map(|_| {
                last = match last {
                    A => B,
                    B => C,
                    C => D,
                    _ => A,
                };
                LlamaToken(last)
            })
            .collect())
    }
}

#[test]
fn draft_model_proposals_are_verified_like_lookup() {
    let prompt = [A];
    let req = request(9, StopRules::default());
    let (plain_model, plain, _) = decode_on(cycle_model, &prompt, Speculation::Off, &req, None);
    let mut drafter = CycleDrafter;
    let run = Run {
        policy: Policy::new(Speculation::Draft, true),
        ..Run::new(&prompt, None)
    };
    let (fake, d, t) = run.decode(cycle_model, Some(&mut drafter), &req);
    let d = d.unwrap();
    assert_eq!(d.out.text, plain.out.text);
    assert!(
        t.draft_accepted > 0 && t.draft_accepted == t.draft_proposed,
        "{t:?}"
    );
    assert!(
        fake.passes < plain_model.passes,
        "{} passes with drafts, {} without",
        fake.passes,
        plain_model.passes
    );
}

#[test]
fn a_cancel_stops_between_steps() {
    let run = Run::new(&[A], None);
    run.cancel.cancel();
    let (_, r, _) = run.decode(cycle_model, None, &request(50, StopRules::default()));
    assert!(matches!(r, Err(EngineError::Cancelled)));
}
