//! The pipeline's phases on a fake generator: refusals as data, shaping, fitting, prefetch input.

use std::sync::{Arc, Mutex};

use ropey::Rope;
use tokio::sync::oneshot;

use super::*;
use crate::engine::{StopReason, Timings};
use crate::syntax::Lang;

/// Answers every request with a fixed text and remembers the requests.
struct Fixed {
    text: &'static str,
    seen: Mutex<Vec<GenerateRequest>>,
}

impl Generator for Fixed {
    fn submit(
        &self,
        request: GenerateRequest,
        _: CancelToken,
    ) -> oneshot::Receiver<Result<Generation, EngineError>> {
        self.seen.lock().unwrap().push(request);
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(Ok(Generation {
            text: self.text.into(),
            raw: self.text.into(),
            stop_reason: StopReason::EndOfText,
            timings: Timings::default(),
        }));
        rx
    }
    fn name(&self) -> String {
        "fixed".into()
    }
}

fn completer(text: &'static str, settings: Settings) -> (Completer, Arc<Fixed>) {
    let g = Arc::new(Fixed {
        text,
        seen: Mutex::default(),
    });
    (Completer::new(g.clone(), settings), g)
}

/// An input from fixture text with a `$0` cursor, with a syntax tree for `path`'s language.
fn input(fixture: &str, path: &str) -> Input {
    let (text, cursor) = prompt::split_cursor(fixture);
    let rope = Rope::from_str(&text);
    let syntax = Lang::from_path(path).map(|l| Syntax::new(l, &rope));
    Input {
        syntax,
        language: "python".into(),
        ..Input::new(rope, cursor, path, "demo")
    }
}

#[test]
fn refusals_are_data() {
    let (c, g) = completer("x", Settings::default());
    let off = Completer {
        settings: Settings {
            enable: false,
            ..Settings::default()
        },
        ..c.clone()
    };
    let i = input("x = $0\n", "a.py");
    assert_eq!(off.prepare(&i).unwrap_err(), Skip::Disabled);
    let no_python = Completer {
        settings: Settings {
            disabled_languages: vec!["python".into()],
            ..Settings::default()
        },
        ..c.clone()
    };
    assert_eq!(
        no_python.prepare(&i).unwrap_err(),
        Skip::LanguageDisabled("python".into())
    );
    let binary = input("ab\u{0}c$0", "blob.bin");
    assert!(matches!(
        c.prepare(&binary),
        Err(Skip::NotCompletable(TextError::Binary(2)))
    ));
    // Secrets never become a prompt: by name, or because the file links to one.
    assert_eq!(
        c.prepare(&input("KEY=$0\n", ".env")).unwrap_err(),
        Skip::Secret
    );
    assert_eq!(
        c.prepare(&input("KEY=$0\n", "config/app.env")).unwrap_err(),
        Skip::Secret
    );
    let linked = Input {
        secret: true,
        ..input("x = $0\n", "notes.py")
    };
    assert_eq!(c.prepare(&linked).unwrap_err(), Skip::Secret);
    // A minified line: too long to build prompts from at every keystroke.
    let long = format!("x = [{}$0]\n", "1,".repeat(MAX_LINE_CHARS));
    assert!(matches!(
        c.prepare(&input(&long, "a.py")),
        Err(Skip::LineTooLong(_))
    ));
    // Inside a word: nothing fits.
    let mid = input("value = compu$0ted\n", "a.py");
    assert_eq!(c.prepare(&mid).unwrap_err(), Skip::NothingFits);
    match c.complete(&mid, CancelToken::new()).unwrap() {
        Outcome::Skipped(s) => assert_eq!(s, Skip::NothingFits),
        Outcome::Suggested(_) => panic!("asked the model"),
    }
    assert!(
        g.seen.lock().unwrap().is_empty(),
        "no skipped request reached the model"
    );
}

#[test]
fn the_shape_decides_single_line() {
    let (c, _) = completer("x", Settings::default());
    let line = c.prepare(&input("total = $0\n", "a.py")).unwrap();
    assert!(line.request.stop.single_line);
    let block = c.prepare(&input("def f(a):\n    $0\n", "a.py")).unwrap();
    assert!(!block.request.stop.single_line);
    assert_eq!(block.request.max_tokens, Settings::default().max_tokens);
}

#[test]
fn finish_fits_the_suggestion_to_the_code_around_it() {
    // The model repeats a closing parenthesis that already follows the cursor.
    let (c, _) = completer("a, b)", Settings::default());
    let i = input("print(add($0))\n", "a.py");
    let Outcome::Suggested(s) = c.complete(&i, CancelToken::new()).unwrap() else {
        panic!("skipped")
    };
    let Suggestion { generation, plan } = *s;
    assert_eq!(generation.text, "a, b");
    assert!(
        plan.prompt
            .render_qwen()
            .contains("<|fim_middle|>print(add(")
    );
    // Without the syntax rules the text stays as the engine finished it.
    let (plain, _) = completer(
        "a, b)",
        Settings {
            syntax: false,
            ..Settings::default()
        },
    );
    let Outcome::Suggested(s) = plain.complete(&i, CancelToken::new()).unwrap() else {
        panic!("skipped")
    };
    let generation = s.generation;
    assert_eq!(generation.text, "a, b)");
}

#[test]
fn the_prefetch_input_is_the_state_after_accepting() {
    let i = input("x = [$0\n", "a.py");
    let (c, _) = completer("1, 2", Settings::default());
    let plan = c.plan(&i);
    let next = i.accepted("1, 2", plan.anchor);
    assert_eq!(next.rope.to_string(), "x = [1, 2\n");
    assert_eq!(next.cursor, 9);
    assert!(
        next.syntax.is_none(),
        "the old tree does not match the new text"
    );
    assert_eq!(next.anchor, Some(plan.anchor));
    // Typing forward keeps the anchor: the prompt only grows.
    let after = c.plan(&next).prompt.render_qwen();
    assert!(after.starts_with(&plan.prompt.render_qwen()), "{after}");
}

#[test]
fn warm_up_evaluates_the_stable_prefix_only() {
    let (c, g) = completer("", Settings::default());
    let mut i = input("x = $0\n", "src/a.py");
    i.context = Arc::new(vec![ContextFile {
        path: "b.py".into(),
        content: "def b(): pass".into(),
    }]);
    drop(c.warm_up(&i, CancelToken::new()));
    let seen = g.seen.lock().unwrap();
    let r = &seen[0];
    assert!(r.persist && r.max_tokens == 0);
    assert_eq!(
        r.prompt.render_qwen(),
        "<|repo_name|>demo\n<|file_sep|>b.py\ndef b(): pass\n<|file_sep|>src/a.py\n"
    );
    assert_eq!(r.prompt, prefix_of(&i));
}

#[test]
fn streamed_pieces_only_grow_and_end_as_the_finished_text() {
    // A block suggestion in Python and a line inside a call in Rust: the raw text arrives a few
    // bytes at a time (as tokens would); every piece shown must extend the last one shown, and
    // the fitted finished text must extend the last piece (or be cut shorter, never different).
    let cases = [
        (
            "def area(w, h):\n    $0\n\nprint(area(3, 4))\n",
            "a.py",
            "result = w * h\n    return result\n\ndef other():\n    pass\n",
        ),
        (
            "fn main() {\n    let v = compute($0);\n}\n",
            "a.rs",
            "a, b);\n    println!(\"{v}\");\n}\n",
        ),
    ];
    for (fixture, path, raw) in cases {
        let (c, _) = completer("", Settings::default());
        let input = input(fixture, path);
        let prepared = c.prepare(&input).expect("a completion fits here");
        let stop = prepared.request.stop.clone();
        let mut shown = String::new();
        let mut cut = raw.len();
        for end in (1..=raw.len()).filter(|e| raw.is_char_boundary(*e)) {
            let partial = &raw[..end];
            let piece = c.piece(&input, &stop, partial);
            if piece.len() > shown.len() && piece.starts_with(&shown) {
                shown = piece;
            } else {
                assert!(
                    shown.starts_with(&piece),
                    "{path}: {piece:?} contradicts {shown:?}"
                );
            }
            if let Some(k) = stop.check(partial) {
                cut = k;
                break;
            }
        }
        let finished = c.finish(
            &input,
            Generation {
                text: stop.finish(&raw[..cut]),
                raw: raw[..cut].to_string(),
                stop_reason: StopReason::StopRule,
                timings: Timings::default(),
            },
        );
        assert!(!shown.is_empty(), "{path}: something was shown");
        assert!(
            finished.text.starts_with(&shown) || shown.starts_with(&finished.text),
            "{path}: shown {shown:?}, finished {:?}",
            finished.text
        );
    }
}
