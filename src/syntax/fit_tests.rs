//! Unit tests of `fit` on small fixtures.
use super::super::Lang;
use super::*;

#[test]
fn errors_are_counted() {
    let rope = Rope::from_str("fn f() { let x = ; }\n");
    let syntax = Syntax::new(Lang::Rust, &rope);
    assert!(count_errors(syntax.tree().root_node()) >= 1);
    let clean = Syntax::new(Lang::Rust, &Rope::from_str("fn f() {}\n"));
    assert_eq!(count_errors(clean.tree().root_node()), 0);
}

#[test]
fn leaves_overlapping_a_range() {
    let rope = Rope::from_str("fn f() { g(1); }\n");
    let syntax = Syntax::new(Lang::Rust, &rope);
    let kinds: Vec<&str> = leaves_in(syntax.tree().root_node(), 9, 14)
        .iter()
        .map(|n| n.kind())
        .collect();
    assert_eq!(kinds, ["identifier", "(", "integer_literal", ")", ";"]);
}

#[test]
fn enclosing_brackets_innermost_first() {
    let rope = Rope::from_str("fn f() {\n    g(1, \n}\n");
    let syntax = Syntax::new(Lang::Rust, &rope);
    let fitter = Fitter::new(&syntax, &rope, 19);
    let found: Vec<(&str, bool)> = fitter
        .enclosing()
        .iter()
        .map(|e| (e.closer, e.closed_at.is_some()))
        .collect();
    assert_eq!(found.first(), Some(&(")", false)));
    assert!(found.contains(&("}", true)), "{found:?}");
}
