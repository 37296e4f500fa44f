//! The query files under `queries/<lang>/`, embedded at build time and compiled once per language.
//!
//! They stay plain `.scm` data files (the usual tree-sitter vocabularies) so they can be read,
//! diffed and fixed without touching Rust; `include_str!` only saves a run-time lookup. TSX reuses
//! TypeScript's files: its grammar is a superset.

use std::sync::OnceLock;

use tree_sitter::{Query, QueryError};

use super::Lang;

/// Which query file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueryKind {
    /// `tags.scm`: `@definition.*`, `@reference.*` and `@name`.
    Tags,
    /// `textobjects.scm`: `@function.inside/around`, `@class.inside/around`, `@block.*`, ...
    TextObjects,
    /// `imports.scm`: `@import`, the module path of an import.
    Imports,
}

impl QueryKind {
    pub const ALL: [QueryKind; 3] = [QueryKind::Tags, QueryKind::TextObjects, QueryKind::Imports];

    pub fn file_name(self) -> &'static str {
        match self {
            QueryKind::Tags => "tags.scm",
            QueryKind::TextObjects => "textobjects.scm",
            QueryKind::Imports => "imports.scm",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

macro_rules! files {
    ($dir:literal) => {
        [
            include_str!(concat!("../../queries/", $dir, "/tags.scm")),
            include_str!(concat!("../../queries/", $dir, "/textobjects.scm")),
            include_str!(concat!("../../queries/", $dir, "/imports.scm")),
        ]
    };
}

/// The text of a query file.
pub fn query_source(lang: Lang, kind: QueryKind) -> &'static str {
    let files: [&'static str; 3] = match lang {
        Lang::Rust => files!("rust"),
        Lang::Python => files!("python"),
        Lang::JavaScript => files!("javascript"),
        Lang::TypeScript | Lang::Tsx => files!("typescript"),
        Lang::Go => files!("go"),
        Lang::C => files!("c"),
        Lang::Cpp => files!("cpp"),
        Lang::Java => files!("java"),
    };
    files[kind.index()]
}

/// Compiles a query file against its grammar (what the compile test checks).
pub fn compile_query(lang: Lang, kind: QueryKind) -> Result<Query, QueryError> {
    Query::new(&lang.language(), query_source(lang, kind))
}

type Slot = OnceLock<Option<Query>>;

/// The compiled query, built on first use; `None` if the file does not compile (the compile test
/// rules that out, and callers then behave as if the query found nothing).
pub fn query(lang: Lang, kind: QueryKind) -> Option<&'static Query> {
    static SLOTS: [[Slot; 3]; 9] = [const { [const { OnceLock::new() }; 3] }; 9];
    let lang_index = Lang::ALL.iter().position(|l| *l == lang).unwrap_or(0);
    SLOTS[lang_index][kind.index()]
        .get_or_init(|| match compile_query(lang, kind) {
            Ok(q) => Some(q),
            Err(e) => {
                tracing::warn!(lang = lang.name(), file = kind.file_name(), error = %e, "query does not compile");
                None
            }
        })
        .as_ref()
}
