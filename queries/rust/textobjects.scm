; Helix-style text objects for Rust.

(function_item body: (_) @function.inside) @function.around
(function_signature_item) @function.around
(closure_expression body: (_) @function.inside) @function.around

(struct_item body: (_) @class.inside) @class.around
(enum_item body: (_) @class.inside) @class.around
(union_item body: (_) @class.inside) @class.around
(trait_item body: (_) @class.inside) @class.around
(impl_item body: (_) @class.inside) @class.around
(mod_item body: (_) @class.inside) @class.around

(block) @block.around
(declaration_list) @block.around
(field_declaration_list) @block.around
(enum_variant_list) @block.around
(match_block) @block.around

(parameters (_) @parameter.inside)
(type_parameters (_) @parameter.inside)
(arguments (_) @parameter.inside)

(line_comment) @comment.inside
(line_comment)+ @comment.around
(block_comment) @comment.inside
(block_comment) @comment.around

(mod_item name: (identifier) @_name body: (_) @test.inside (#eq? @_name "tests")) @test.around
