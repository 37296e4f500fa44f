; Headers a C file includes: the path without quotes or angle brackets is cut in Rust.

(preproc_include path: (string_literal) @import)
(preproc_include path: (system_lib_string) @import)
