; Module paths a Rust file imports: `use` paths and out-of-line `mod foo;`.

(use_declaration argument: (scoped_identifier) @import)
(use_declaration argument: (identifier) @import)
(use_declaration argument: (scoped_use_list path: (_) @import))
(use_declaration argument: (use_as_clause path: (_) @import))
(use_declaration argument: (use_wildcard (_) @import))
(use_declaration argument: (use_list (_) @import))
(mod_item !body name: (identifier) @import)
(extern_crate_declaration name: (identifier) @import)
