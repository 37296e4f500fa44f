//! Syntax layer: shape and fit on `$0` fixtures per language, tags and context, query files,
//! incremental parsing against fresh parses.

use inkling::prompt::split_cursor;
use inkling::syntax::{
    Lang, QueryKind, Shape, Syntax, compile_query, context_symbols, fit, shape, tags, text_object,
};
use ropey::Rope;

fn doc(lang: Lang, fixture: &str) -> (Syntax, Rope, usize) {
    let (text, cursor) = split_cursor(fixture);
    let rope = Rope::from_str(&text);
    (Syntax::new(lang, &rope), rope, cursor)
}

fn shape_of(lang: Lang, fixture: &str) -> Shape {
    let (syntax, rope, cursor) = doc(lang, fixture);
    shape(Some(&syntax), &rope, cursor)
}

fn fit_of(lang: Lang, fixture: &str, suggestion: &str) -> Option<String> {
    let (syntax, rope, cursor) = doc(lang, fixture);
    fit(Some(&syntax), &rope, cursor, suggestion)
}

#[track_caller]
fn check_shapes(lang: Lang, cases: &[(&str, Shape)]) {
    for (fixture, want) in cases {
        assert_eq!(
            shape_of(lang, fixture),
            *want,
            "{lang:?} shape of:\n{fixture}"
        );
    }
}

#[track_caller]
fn check_fits(lang: Lang, cases: &[(&str, &str, Option<&str>)]) {
    for (fixture, suggestion, want) in cases {
        let got = fit_of(lang, fixture, suggestion);
        assert_eq!(
            got.as_deref(),
            *want,
            "{lang:?} fit of {suggestion:?} at:\n{fixture}"
        );
    }
}

// ---------------------------------------------------------------- shape

#[test]
fn shape_rust() {
    use Shape::*;
    check_shapes(
        Lang::Rust,
        &[
            ("fn main() {\n    let va$0lue = 1;\n}\n", Nothing),
            ("fn main() {\n    $0let value = compute(1);\n}\n", Nothing),
            ("fn main() {\n    let x = $0\n}\n", Line),
            ("fn main() {\n    foo(a, $0);\n}\n", Line),
            ("fn main() {\n    let x = 1;\n    $0\n}\n", Block),
            ("fn main() {$0\n}\n", Block),
            ("fn main() {$0}\n", Block),
            ("fn add(a: u32, b: u32) -> u32 $0\n", Block),
            ("impl A {\n    fn get(&self) -> u32$0\n}\n", Block),
            (
                "fn main() {\n    let v = vec![\n        $0\n    ];\n}\n",
                Line,
            ),
            ("fn main() {\n    call(\n        $0\n    );\n}\n", Line),
            ("fn main() {\n    let s = \"abc $0\";\n}\n", Line),
            ("fn main() {\n    let m = match x {$0\n}\n", Block),
            ("$0\n", Block),
            ("fn main() {\n    // TODO: fix {$0\n}\n", Line),
            ("/// Returns the answer:$0\nfn f() {}\n", Line),
        ],
    );
}

#[test]
fn shape_python() {
    use Shape::*;
    check_shapes(
        Lang::Python,
        &[
            ("def f(x):\n    ret$0urn x\n", Nothing),
            ("def f(x):$0\n", Block),
            ("def f(x):\n    $0\n", Block),
            (
                "class A:\n    def m(self):\n        pass\n\n    $0\n",
                Block,
            ),
            ("if x:\n    pass\nelse:$0\n", Block),
            ("x = foo($0)\n", Line),
            ("x = {\n    'a': 1,\n    $0\n}\n", Line),
            ("d = {'a':$0\n", Line),
            ("print(x)$0\n", Line),
            ("def f(x)$0\n", Block),
            ("def f(x):\n    # if x:$0\n    pass\n", Line),
            ("def f(x):\n    \"\"\"Docs.\n\n    $0\n    \"\"\"\n", Line),
        ],
    );
}

#[test]
fn shape_typescript() {
    use Shape::*;
    check_shapes(
        Lang::TypeScript,
        &[
            ("function f(a: number): number {$0}\n", Block),
            ("function f(a: number): number $0\n", Block),
            ("const x = {$0};\n", Line),
            ("const x = {$0\n", Block),
            ("class A {\n  m() {\n    return 1;\n  }\n  $0\n}\n", Block),
            ("foo(\n  $0\n);\n", Line),
            ("const s = `a ${b} $0`;\n", Line),
            ("const f = () =>$0\n", Block),
            ("cons$0t x = 1;\n", Nothing),
            ("if (x > 0$0) {\n}\n", Line),
        ],
    );
}

#[test]
fn shape_go() {
    use Shape::*;
    check_shapes(
        Lang::Go,
        &[
            ("package main\n\nfunc main() {$0\n}\n", Block),
            ("package main\n\nfunc add(a int, b int) int $0\n", Block),
            ("package main\n\nfunc main() {\n\tx := 1\n\t$0\n}\n", Block),
            (
                "package main\n\nfunc main() {\n\tfmt.Prin$0tln(x)\n}\n",
                Nothing,
            ),
            (
                "package main\n\nfunc main() {\n\tx := []int{\n\t\t$0\n\t}\n}\n",
                Line,
            ),
            (
                "package main\n\nfunc main() {\n\tswitch x {\n\tcase 1:$0\n\t}\n}\n",
                Block,
            ),
            ("package main\n\nfunc main() {\n\tx := $0\n}\n", Line),
        ],
    );
}

#[test]
fn shape_other_languages() {
    use Shape::*;
    check_shapes(Lang::C, &[("int add(int a, int b)$0\n", Block)]);
    check_shapes(Lang::Cpp, &[("class A {\n  int f(int a)$0\n};\n", Block)]);
    check_shapes(
        Lang::Java,
        &[
            ("class A {\n  int f(int a) $0\n}\n", Block),
            ("class A {\n  int f(int a) {\n    $0\n  }\n}\n", Block),
            ("class A {\n  void f() {\n    g(1, $0);\n  }\n}\n", Line),
        ],
    );
    check_shapes(
        Lang::JavaScript,
        &[
            ("const a = [\n  1,\n  $0\n];\n", Line),
            ("function f() {$0}\n", Block),
        ],
    );
}

#[test]
fn shape_without_grammar_uses_text_rules() {
    let case = |fixture: &str| {
        let (text, cursor) = split_cursor(fixture);
        shape(None, &Rope::from_str(&text), cursor)
    };
    assert_eq!(case("let va$0lue = 1\n"), Shape::Nothing);
    assert_eq!(case("x = $0 + compute(a, b)\n"), Shape::Nothing);
    assert_eq!(case("x = $0\n"), Shape::Line);
    assert_eq!(case("foo($0)\n"), Shape::Line);
    assert_eq!(case("  $0\n"), Shape::Block);
    assert_eq!(case("if x then {$0\n"), Shape::Block);
    assert_eq!(case("fn f(a) -> b$0\n"), Shape::Block);
    assert_eq!(case("$0"), Shape::Block);
}

// ---------------------------------------------------------------- fit

#[test]
fn fit_rust() {
    check_fits(
        Lang::Rust,
        &[
            // The suffix already closes the body: stop before the model's closer and what follows.
            (
                "fn main() {\n    $0\n}\n",
                "let x = 1;\n    println!(\"{x}\");\n}\n\nfn other() {}\n",
                Some("let x = 1;\n    println!(\"{x}\");"),
            ),
            // `{|}`: the closer is on the cursor line; the suggestion ends where its own closer was.
            (
                "fn main() {$0}\n",
                "\n    run();\n}",
                Some("\n    run();\n"),
            ),
            // Unclosed body: keep the closer, stop after it.
            (
                "fn main() {$0",
                "\n    run();\n}\n\nfn next() {\n}\n",
                Some("\n    run();\n}"),
            ),
            // Signature completed, then a second definition: cut before it and its attribute.
            (
                "fn add(a: u32, b: u32) -> u32 $0\n",
                "{\n    a + b\n}\n\n#[test]\nfn t() {}\n",
                Some("{\n    a + b\n}"),
            ),
            // A new definition on a blank top-level line, then a sibling: keep the first.
            (
                "use std::fmt;\n\n$0\n",
                "fn one() -> u32 {\n    1\n}\n\n/// Two.\nfn two() -> u32 {\n    2\n}\n",
                Some("fn one() -> u32 {\n    1\n}"),
            ),
            // Closers already after the cursor are not repeated.
            (
                "fn main() {\n    println!($0);\n}\n",
                "\"hi\");",
                Some("\"hi\""),
            ),
            (
                "fn main() {\n    foo(bar($0));\n}\n",
                "1, 2));",
                Some("1, 2"),
            ),
            // ... but the suggestion's own balanced closers stay.
            ("fn main() {\n    foo($0);\n}\n", "bar()", Some("bar()")),
            // A clean tree made broken: dropped.
            (
                "fn main() {\n    let x = 1;\n    $0\n}\n",
                "let y = foo(x;",
                None,
            ),
            // Already broken (typing in progress): kept.
            (
                "fn main() {\n    let x = $0\n}\n",
                "compute(1);",
                Some("compute(1);"),
            ),
            // Nothing left.
            ("fn main() {\n    $0\n}\n", "\n}\n", None),
            ("fn main() {\n    $0\n}\n", "   ", None),
        ],
    );
}

#[test]
fn fit_python() {
    check_fits(
        Lang::Python,
        &[
            // Dedent out of the body ends the suggestion.
            (
                "def add(a, b):\n    $0\n",
                "return a + b\n\n\nprint(add(1, 2))\n",
                Some("return a + b"),
            ),
            (
                "def f(x):$0\n",
                "\n    if x:\n        return 1\n    else:\n        return 2\n\ndef g():\n    pass\n",
                Some("\n    if x:\n        return 1\n    else:\n        return 2"),
            ),
            // Method written on a blank class-body line; the next method is a sibling.
            (
                "class A:\n    def a(self):\n        return 1\n\n    $0\n",
                "def b(self):\n        return 2\n\n    @property\n    def c(self):\n        return 3\n",
                Some("def b(self):\n        return 2"),
            ),
            // Brackets keep continuation lines whatever their indentation.
            (
                "def f():\n    $0\n",
                "x = call(\n  1,\n)\n    return x\nprint(1)",
                Some("x = call(\n  1,\n)\n    return x"),
            ),
            ("print($0)\n", "'hello')", Some("'hello'")),
            ("x = foo($0)\n", "a, b)", Some("a, b")),
            ("def f():\n    return 1\n$0\n", "x = (1,", None),
        ],
    );
}

#[test]
fn fit_typescript() {
    check_fits(
        Lang::TypeScript,
        &[
            (
                "function f(a: number): number {\n  $0\n}\n",
                "const b = a * 2;\n  return b;\n}\n\nfunction g() {}\n",
                Some("const b = a * 2;\n  return b;"),
            ),
            (
                "class A {\n  m(): number {\n    return 1;\n  }\n  $0\n}\n",
                "n(): number {\n    return 2;\n  }\n\n  o(): number {\n    return 3;\n  }\n}\n",
                Some("n(): number {\n    return 2;\n  }"),
            ),
            ("const s = foo(\"$0\");\n", "abc\");", Some("abc")),
            ("const s = [1, $0];\n", "2, 3];", Some("2, 3")),
            ("const x = {$0};\n", " a: 1 }", Some(" a: 1 ")),
            (
                "export function a(): number {\n  return 1;\n}\n\n$0\n",
                "export function b(): number {\n  return 2;\n}\n\nexport function c(): number {\n  return 3;\n}\n",
                Some("export function b(): number {\n  return 2;\n}"),
            ),
            (
                "function f(a: number): number {\n  return a;\n}\n$0\n",
                "const y = f(1",
                None,
            ),
        ],
    );
}

#[test]
fn fit_go() {
    check_fits(
        Lang::Go,
        &[
            (
                "package main\n\nfunc main() {\n\t$0\n}\n",
                "x := 1\n\tfmt.Println(x)\n}\n\nfunc other() {\n}\n",
                Some("x := 1\n\tfmt.Println(x)"),
            ),
            (
                "package main\n\nfunc add(a, b int) int $0\n",
                "{\n\treturn a + b\n}\n\nfunc sub(a, b int) int {\n\treturn a - b\n}\n",
                Some("{\n\treturn a + b\n}"),
            ),
            (
                "package main\n\nfunc main() {\n\tfmt.Println($0)\n}\n",
                "\"hi\")",
                Some("\"hi\""),
            ),
            (
                "package main\n\nfunc main() {\n\tif x > 0 {$0\n\t}\n}\n",
                "\n\t\treturn\n\t}\n\treturn\n}\n",
                Some("\n\t\treturn"),
            ),
        ],
    );
}

#[test]
fn fit_without_grammar_is_identity() {
    let rope = Rope::from_str("fn main() {\n    \n}\n");
    let s = "x();\n}\n\nfn f() {}";
    assert_eq!(fit(None, &rope, 16, s).as_deref(), Some(s));
}

// ---------------------------------------------------------------- fixtures on disk

/// `tests/fixtures/syntax/<name>`: a source file with a `$0` cursor; `<name>.suggestion` and
/// `<name>.expected` (absent: the suggestion is dropped) next to it.
#[test]
fn fit_fixture_files() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/syntax");
    let mut seen = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        let name = path.to_string_lossy().to_string();
        let Some(lang) = Lang::from_path(&name) else {
            continue;
        };
        let fixture = std::fs::read_to_string(&path).unwrap();
        let suggestion = std::fs::read_to_string(format!("{name}.suggestion")).unwrap();
        let expected = std::fs::read_to_string(format!("{name}.expected")).ok();
        let got = fit_of(lang, &fixture, &suggestion);
        assert_eq!(got, expected, "fixture {name}");
        seen += 1;
    }
    assert!(seen >= 4, "fixtures found: {seen}");
}

// ---------------------------------------------------------------- tags and context

#[test]
fn tags_rust() {
    let src = "mod util;\nstruct S;\ntrait T { fn t(&self); }\nimpl S {\n    fn m(&self) -> u32 { helper(1) }\n}\nfn helper(x: u32) -> u32 { x.max(2) }\n";
    let found: Vec<(String, String, usize)> = tags(Lang::Rust, src)
        .into_iter()
        .map(|t| (t.kind, t.name, t.line))
        .collect();
    let has = |kind: &str, name: &str| found.iter().any(|(k, n, _)| k == kind && n == name);
    assert!(has("definition.module", "util"), "{found:?}");
    assert!(has("definition.class", "S"), "{found:?}");
    assert!(has("definition.interface", "T"), "{found:?}");
    assert!(has("definition.method", "m"), "{found:?}");
    assert!(has("definition.function", "helper"), "{found:?}");
    assert!(!has("definition.function", "m"), "{found:?}");
    assert!(has("reference.call", "helper"), "{found:?}");
    assert!(has("reference.call", "max"), "{found:?}");
    let helper = tags(Lang::Rust, src)
        .into_iter()
        .find(|t| t.kind == "definition.function")
        .unwrap();
    assert_eq!(helper.line, 6);
    assert!(src[helper.start_byte..helper.end_byte].starts_with("fn helper"));
}

#[test]
fn tags_every_language() {
    let cases: &[(Lang, &str, &str, &str)] = &[
        (
            Lang::Python,
            "class A:\n    def m(self):\n        return f(1)\n\ndef f(x):\n    return x\n",
            "definition.method",
            "m",
        ),
        (
            Lang::Python,
            "def f(x):\n    return g(x)\n",
            "reference.call",
            "g",
        ),
        (
            Lang::JavaScript,
            "class A { m() { return f(); } }\nfunction f() {}\n",
            "definition.method",
            "m",
        ),
        (
            Lang::JavaScript,
            "const f = () => g();\n",
            "definition.function",
            "f",
        ),
        (
            Lang::TypeScript,
            "interface I { x: number }\nfunction f(i: I) { return g(i); }\n",
            "definition.interface",
            "I",
        ),
        (
            Lang::Tsx,
            "function App() { return <div>{f()}</div>; }\n",
            "reference.call",
            "f",
        ),
        (
            Lang::Go,
            "package main\n\ntype S struct{}\n\nfunc (s S) M() int { return f() }\n",
            "definition.method",
            "M",
        ),
        (
            Lang::Go,
            "package main\n\ntype I interface{ M() }\n",
            "definition.interface",
            "I",
        ),
        (
            Lang::C,
            "struct P { int x; };\nint f(int a) { return g(a); }\n",
            "definition.function",
            "f",
        ),
        (
            Lang::Cpp,
            "namespace n { class A { int m(); }; }\nint A::m() { return f(); }\n",
            "definition.class",
            "A",
        ),
        (
            Lang::Cpp,
            "namespace n { class A { int m(); }; }\nint A::m() { return f(); }\n",
            "definition.module",
            "n",
        ),
        (
            Lang::Java,
            "interface I {}\nclass A implements I { int m() { return f(); } }\n",
            "definition.method",
            "m",
        ),
        (
            Lang::Java,
            "class A { int m() { return f(); } }\n",
            "reference.call",
            "f",
        ),
    ];
    for (lang, src, kind, name) in cases {
        let found = tags(*lang, src);
        assert!(
            found.iter().any(|t| t.kind == *kind && t.name == *name),
            "{lang:?}: no {kind} {name} in {found:?}"
        );
    }
}

#[test]
fn context_symbols_rust_and_python() {
    let (syntax, rope, cursor) = doc(
        Lang::Rust,
        "use crate::engine::{Engine, Job};\nuse std::sync::Arc;\nmod worker;\n\nfn far() {}\n\nfn run(e: &Engine) -> Arc<Job> {\n    let j = build_job(e);\n    $0\n    spawn(j)\n}\n",
    );
    let ctx = context_symbols(&syntax, &rope, cursor);
    assert_eq!(ctx.imports, ["worker", "std::sync::Arc", "crate::engine"]);
    assert_eq!(&ctx.references[..2], ["spawn", "build_job"]);
    assert!(!ctx.references.contains(&"run".to_string()));

    let (syntax, rope, cursor) = doc(
        Lang::Python,
        "import os.path\nfrom .models import User\nimport numpy as np\n\ndef f(u: User):\n    p = os.path.join(u.home, 'x')\n    $0\n",
    );
    let ctx = context_symbols(&syntax, &rope, cursor);
    assert_eq!(ctx.imports, ["numpy", ".models", "os.path"]);
    assert_eq!(ctx.references.first().map(String::as_str), Some("join"));
    assert!(ctx.references.contains(&"User".to_string()), "{ctx:?}");
}

#[test]
fn context_symbols_imports_other_languages() {
    let cases: &[(Lang, &str, &[&str])] = &[
        (
            Lang::TypeScript,
            "import { a } from './a';\nimport * as b from \"b\";\nconst c = require('c');\n$0\n",
            &["c", "b", "./a"],
        ),
        (
            Lang::JavaScript,
            "import x from './x.js';\nexport { y } from './y.js';\n$0\n",
            &["./y.js", "./x.js"],
        ),
        (
            Lang::Go,
            "package main\n\nimport (\n\t\"fmt\"\n\tio \"io/fs\"\n)\n\nfunc main() {\n\t$0\n}\n",
            &["io/fs", "fmt"],
        ),
        (
            Lang::C,
            "#include <stdio.h>\n#include \"util.h\"\n$0\n",
            &["util.h", "stdio.h"],
        ),
        (
            Lang::Cpp,
            "#include <vector>\nusing namespace std;\n$0\n",
            &["std", "vector"],
        ),
        (
            Lang::Java,
            "import java.util.List;\nimport java.io.*;\nclass A {\n  $0\n}\n",
            &["java.io", "java.util.List"],
        ),
    ];
    for (lang, fixture, want) in cases {
        let (syntax, rope, cursor) = doc(*lang, fixture);
        assert_eq!(
            context_symbols(&syntax, &rope, cursor).imports,
            *want,
            "{lang:?}"
        );
    }
}

#[test]
fn text_objects_find_the_enclosing_function() {
    let (syntax, rope, cursor) = doc(
        Lang::Rust,
        "fn a() {}\n\nimpl S {\n    fn b(&self) {\n        let x = $01;\n    }\n}\n",
    );
    let f = text_object(&syntax, &rope, cursor, "function.around").unwrap();
    assert!(rope.slice(f).to_string().starts_with("fn b(&self)"));
    let c = text_object(&syntax, &rope, cursor, "class.around").unwrap();
    assert!(rope.slice(c).to_string().starts_with("impl S"));
}

// ---------------------------------------------------------------- queries

#[test]
fn every_query_file_compiles_against_its_grammar() {
    for lang in Lang::ALL {
        for kind in QueryKind::ALL {
            let query = compile_query(lang, kind)
                .unwrap_or_else(|e| panic!("{lang:?} {}: {e}", kind.file_name()));
            let names = query.capture_names();
            match kind {
                QueryKind::Tags => {
                    assert!(names.contains(&"name"), "{lang:?} tags");
                    assert!(names.contains(&"reference.call"), "{lang:?} tags");
                    assert!(
                        names.iter().any(|n| n.starts_with("definition.")),
                        "{lang:?}"
                    );
                }
                QueryKind::TextObjects => {
                    assert!(names.contains(&"function.around"), "{lang:?} textobjects");
                    assert!(names.contains(&"class.around"), "{lang:?} textobjects");
                }
                QueryKind::Imports => assert!(names.contains(&"import"), "{lang:?} imports"),
            }
        }
    }
}

#[test]
fn syntax_is_send_and_sync() {
    fn check<T: Send + Sync + Clone>() {}
    check::<Syntax>();
}

#[test]
fn languages_from_ids_and_paths() {
    assert_eq!(Lang::from_language_id("typescriptreact"), Some(Lang::Tsx));
    assert_eq!(
        Lang::from_language_id("javascriptreact"),
        Some(Lang::JavaScript)
    );
    assert_eq!(Lang::from_language_id("markdown"), None);
    assert_eq!(Lang::from_path("src/main.rs"), Some(Lang::Rust));
    assert_eq!(Lang::from_path("file:///a/b/App.TSX"), Some(Lang::Tsx));
    assert_eq!(Lang::from_path("x.hpp"), Some(Lang::Cpp));
    assert_eq!(Lang::from_path("Makefile"), None);
    assert_eq!(Lang::from_path("dir.d/README"), None);
}

// ---------------------------------------------------------------- cost

/// `fit` and `shape` on a 2,000-line file stay well inside a keystroke's budget.
#[test]
fn fit_cost_on_a_large_file() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/syntax/cache_body.rs"
    ))
    .unwrap();
    let (body, _) = split_cursor(&unit);
    let mut text = String::new();
    let mut copy = 0;
    while text.lines().count() < 2000 {
        text.push_str(&body.replace("Lru", &format!("Lru{copy}")));
        copy += 1;
    }
    // The cursor in the middle copy, on the blank line of `get`.
    let cursor_line = text.lines().count() / 2;
    let line = (cursor_line..)
        .find(|l| {
            text.lines()
                .nth(*l)
                .is_some_and(|t| t.trim().is_empty() && t.len() == 8)
        })
        .unwrap();
    let rope = Rope::from_str(&text);
    let cursor = rope.line_to_char(line) + 8;
    let start = std::time::Instant::now();
    let syntax = Syntax::new(Lang::Rust, &rope);
    let parse = start.elapsed();
    let suggestion = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/syntax/cache_body.rs.suggestion"
    ))
    .unwrap();
    let runs = 20;
    let start = std::time::Instant::now();
    for _ in 0..runs {
        let out = fit(Some(&syntax), &rope, cursor, &suggestion).unwrap();
        assert!(out.ends_with("None => None,\n        }"));
    }
    let per_fit = start.elapsed() / runs;
    let start = std::time::Instant::now();
    for _ in 0..runs {
        assert_eq!(shape(Some(&syntax), &rope, cursor), Shape::Block);
    }
    let per_shape = start.elapsed() / runs;
    let start = std::time::Instant::now();
    for _ in 0..runs {
        let ctx = context_symbols(&syntax, &rope, cursor);
        assert!(
            ctx.imports
                .contains(&"std::collections::HashMap".to_string())
        );
    }
    let per_context = start.elapsed() / runs;
    eprintln!(
        "{} lines: parse {parse:?}, fit {per_fit:?}, shape {per_shape:?}, context_symbols {per_context:?}",
        rope.len_lines()
    );
    assert!(per_fit.as_millis() < 100, "fit took {per_fit:?}");
}
