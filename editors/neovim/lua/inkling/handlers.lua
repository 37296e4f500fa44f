-- The handlers of the server's own notifications, for both clients and lsp/inkling.lua:
-- inkling/status, inkling/completionStats and the model-load $/progress (status.lua), and
-- inkling/suggestionGrown (live.lua).
local handlers = {}
for method, fn in pairs(require('inkling.status').handlers) do
  handlers[method] = fn
end
for method, fn in pairs(require('inkling.live').handlers) do
  handlers[method] = fn
end
return handlers
