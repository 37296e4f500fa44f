; Helix-style text objects for Python.

(function_definition body: (block)? @function.inside) @function.around
(decorated_definition definition: (function_definition)) @function.around
(lambda body: (_) @function.inside) @function.around

(class_definition body: (block)? @class.inside) @class.around
(decorated_definition definition: (class_definition)) @class.around

(block) @block.inside
(if_statement) @block.around
(for_statement) @block.around
(while_statement) @block.around
(with_statement) @block.around
(try_statement) @block.around
(match_statement) @block.around

(parameters (_) @parameter.inside)
(lambda_parameters (_) @parameter.inside)
(argument_list (_) @parameter.inside)

(comment) @comment.inside
(comment)+ @comment.around

((function_definition name: (identifier) @_name body: (block)? @test.inside) @test.around
  (#match? @_name "^test_"))
