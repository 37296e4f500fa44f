; Helix-style text objects for C.

(function_definition body: (_) @function.inside) @function.around

(struct_specifier body: (_) @class.inside) @class.around
(union_specifier body: (_) @class.inside) @class.around
(enum_specifier body: (_) @class.inside) @class.around

(compound_statement) @block.around
(field_declaration_list) @block.around
(enumerator_list) @block.around
(initializer_list) @block.around

(parameter_list (_) @parameter.inside)
(argument_list (_) @parameter.inside)

(comment) @comment.inside
(comment)+ @comment.around
