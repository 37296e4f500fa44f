; Helix-style text objects for Go.

(function_declaration body: (block)? @function.inside) @function.around
(method_declaration body: (block)? @function.inside) @function.around
(func_literal body: (block)? @function.inside) @function.around
(method_elem) @function.around

(type_declaration (type_spec type: (struct_type) @class.inside)) @class.around
(type_declaration (type_spec type: (interface_type) @class.inside)) @class.around

(block) @block.around
(field_declaration_list) @block.around
(interface_type) @block.around
(expression_switch_statement) @block.around
(type_switch_statement) @block.around
(select_statement) @block.around

(parameter_list (_) @parameter.inside)
(argument_list (_) @parameter.inside)
(type_parameter_list (_) @parameter.inside)

(comment) @comment.inside
(comment)+ @comment.around

((function_declaration name: (identifier) @_name body: (block)? @test.inside) @test.around
  (#match? @_name "^Test"))
