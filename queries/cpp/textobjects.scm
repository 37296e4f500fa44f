; Helix-style text objects for C++.

(function_definition body: (_) @function.inside) @function.around
(lambda_expression body: (_) @function.inside) @function.around
(template_declaration (function_definition)) @function.around

(class_specifier body: (_) @class.inside) @class.around
(struct_specifier body: (_) @class.inside) @class.around
(union_specifier body: (_) @class.inside) @class.around
(enum_specifier body: (_) @class.inside) @class.around
(namespace_definition body: (_) @class.inside) @class.around
(template_declaration [(class_specifier) (struct_specifier)]) @class.around

(compound_statement) @block.around
(field_declaration_list) @block.around
(declaration_list) @block.around
(enumerator_list) @block.around
(initializer_list) @block.around

(parameter_list (_) @parameter.inside)
(template_parameter_list (_) @parameter.inside)
(argument_list (_) @parameter.inside)

(comment) @comment.inside
(comment)+ @comment.around
