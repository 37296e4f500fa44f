; Helix-style text objects for Java.

(method_declaration body: (_)? @function.inside) @function.around
(constructor_declaration body: (_) @function.inside) @function.around
(lambda_expression body: (_) @function.inside) @function.around

(class_declaration body: (_) @class.inside) @class.around
(record_declaration body: (_) @class.inside) @class.around
(enum_declaration body: (_) @class.inside) @class.around
(interface_declaration body: (_) @class.inside) @class.around
(annotation_type_declaration body: (_) @class.inside) @class.around

(block) @block.around
(constructor_body) @block.around
(class_body) @block.around
(interface_body) @block.around
(enum_body) @block.around
(switch_block) @block.around

(formal_parameters (_) @parameter.inside)
(type_parameters (_) @parameter.inside)
(argument_list (_) @parameter.inside)

(line_comment) @comment.inside
(line_comment)+ @comment.around
(block_comment) @comment.inside
(block_comment) @comment.around

((method_declaration (modifiers (marker_annotation name: (identifier) @_annotation))
  body: (_)? @test.inside) @test.around
  (#eq? @_annotation "Test"))
