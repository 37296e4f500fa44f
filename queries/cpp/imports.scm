; Headers a C++ file includes (quotes and angle brackets are cut in Rust), and `using namespace`.

(preproc_include path: (string_literal) @import)
(preproc_include path: (system_lib_string) @import)
(using_declaration "namespace" [(identifier) (qualified_identifier)] @import)
