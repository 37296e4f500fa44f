; Definitions and references for Rust, in the standard tags vocabulary.

(struct_item name: (type_identifier) @name) @definition.class
(enum_item name: (type_identifier) @name) @definition.class
(union_item name: (type_identifier) @name) @definition.class
(type_item name: (type_identifier) @name) @definition.class

; Functions inside impl or trait blocks are methods; the rest are functions.
(declaration_list
  (function_item name: (identifier) @name) @definition.method)
(declaration_list
  (function_signature_item name: (identifier) @name) @definition.method)
(source_file
  (function_item name: (identifier) @name) @definition.function)
(block
  (function_item name: (identifier) @name) @definition.function)

(trait_item name: (type_identifier) @name) @definition.interface
(mod_item name: (identifier) @name) @definition.module
(macro_definition name: (identifier) @name) @definition.macro
(const_item name: (identifier) @name) @definition.constant
(static_item name: (identifier) @name) @definition.constant

(call_expression function: (identifier) @name) @reference.call
(call_expression function: (field_expression field: (field_identifier) @name)) @reference.call
(call_expression function: (scoped_identifier name: (identifier) @name)) @reference.call
(call_expression
  function: (generic_function function: (identifier) @name)) @reference.call
(call_expression
  function: (generic_function
    function: (scoped_identifier name: (identifier) @name))) @reference.call
(call_expression
  function: (generic_function
    function: (field_expression field: (field_identifier) @name))) @reference.call
(macro_invocation macro: (identifier) @name) @reference.call

(impl_item trait: (type_identifier) @name) @reference.implementation
(impl_item type: (type_identifier) @name !trait) @reference.implementation
(struct_expression name: (type_identifier) @name) @reference.class
(scoped_identifier path: (identifier) @name) @reference.module
