; Definitions and references for Python, in the standard tags vocabulary.

(module
  (expression_statement
    (assignment left: (identifier) @name) @definition.constant))

; Functions directly in a class body are methods.
(class_definition
  body: (block
    [(function_definition name: (identifier) @name) @definition.method
     (decorated_definition
       definition: (function_definition name: (identifier) @name) @definition.method)]))

(module (function_definition name: (identifier) @name) @definition.function)
(module
  (decorated_definition
    definition: (function_definition name: (identifier) @name) @definition.function))
(block (function_definition name: (identifier) @name) @definition.function)

(class_definition name: (identifier) @name) @definition.class

(call function: (identifier) @name) @reference.call
(call function: (attribute attribute: (identifier) @name)) @reference.call
(class_definition superclasses: (argument_list (identifier) @name)) @reference.class
(type (identifier) @name) @reference.type
