; Helix-style text objects for TypeScript (and TSX).

(function_declaration body: (_) @function.inside) @function.around
(generator_function_declaration body: (_) @function.inside) @function.around
(function_expression body: (_) @function.inside) @function.around
(generator_function body: (_) @function.inside) @function.around
(arrow_function body: (_) @function.inside) @function.around
(method_definition body: (_) @function.inside) @function.around
(function_signature) @function.around
(method_signature) @function.around
(abstract_method_signature) @function.around

(class_declaration body: (_) @class.inside) @class.around
(abstract_class_declaration body: (_) @class.inside) @class.around
(class body: (_) @class.inside) @class.around
(interface_declaration body: (_) @class.inside) @class.around
(enum_declaration body: (_) @class.inside) @class.around
(internal_module body: (_) @class.inside) @class.around
(module body: (_) @class.inside) @class.around
(type_alias_declaration value: (_) @class.inside) @class.around

(statement_block) @block.around
(class_body) @block.around
(interface_body) @block.around
(enum_body) @block.around
(switch_body) @block.around

(formal_parameters (_) @parameter.inside)
(type_parameters (_) @parameter.inside)
(arguments (_) @parameter.inside)

(comment) @comment.inside
(comment)+ @comment.around
