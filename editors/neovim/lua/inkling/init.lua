-- inkling: offline code completion for Neovim. This module is the public API: setup() and the
-- functions below, each routed to one of two clients:
--
-- Neovim 0.12+ (with `native = true`, the default): native.lua registers the `inkling` config
-- for vim.lsp.config/vim.lsp.enable and turns on vim.lsp.inline_completion; the accept key calls
-- vim.lsp.inline_completion.get().
--
-- Older Neovim (0.7 to 0.11): the plugin is the client. client.lua starts one `inkling lsp` for
-- the whole session and attaches it to file buffers; suggestion/ requests
-- `textDocument/inlineCompletion` after typing (debounced), shows the suggestion as virtual text
-- (extmarks, suggestion/ghost.lua) and inserts it on the accept key.
--
-- Shared: config.lua (options), status.lua (server status, statusline), live.lua (re-asking on
-- inkling/suggestionGrown, sending inkling/cursor), handlers.lua (the notification handlers),
-- state.lua (runtime state), util.lua (compatibility helpers).
local M = {}

local api = vim.api

local client = require('inkling.client')
local config = require('inkling.config')
local ghost = require('inkling.suggestion.ghost')
local native = require('inkling.native')
local state = require('inkling.state')
local status = require('inkling.status')
local suggestion = require('inkling.suggestion')
local util = require('inkling.util')

M.config = config.options
M._state = state

----------------------------------------------------------------------------------------------
-- Status (the handlers are also used by lsp/inkling.lua on 0.11+)

M.handlers = require('inkling.handlers')

--- Current state: { state = 'stopped'|'starting'|'loading'|'ready'|'error'|'disabled',
--- message, progress, stats = { latencyMs, source, generatedTokens } | nil, enabled }.
M.status = status.get

--- One short line for a statusline, e.g. `inkling 120ms model`, `inkling 40%`, `inkling off`.
M.statusline = status.statusline

----------------------------------------------------------------------------------------------
-- Suggestion

--- The extmark namespace the ghost text is drawn in.
function M.namespace()
  if state.native then
    return native.namespace()
  end
  return ghost.ns
end

--- Whether a suggestion is showing in the current buffer at the cursor.
function M.is_visible()
  if state.native then
    return native.is_visible()
  end
  return suggestion.is_visible()
end

--- The suggestion text still to be inserted (nil when none is showing).
function M.get_suggestion()
  if state.native then
    return native.get_suggestion()
  end
  return suggestion.get_suggestion()
end

--- Insert the visible suggestion. Returns true when it did.
function M.accept()
  if state.native then
    return native.accept()
  end
  return suggestion.accept()
end

--- Hide the suggestion. Returns true when one was showing.
function M.dismiss()
  if state.native then
    return false -- leaving insert mode or moving the cursor hides it
  end
  return suggestion.dismiss()
end

--- Ask the server for a suggestion at the cursor now. `opts.manual` (default true) sends
--- triggerKind Invoked and shows the result in any mode; automatic requests show only in
--- insert mode. `opts.on_done(suggestion_or_nil)` is called when the answer was handled.
function M.request(opts)
  if state.native then
    return native.request(opts)
  end
  return suggestion.request(opts)
end

----------------------------------------------------------------------------------------------
-- Server

--- Start the server if needed and attach it to `bufnr` (default: current buffer).
function M.attach(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and api.nvim_get_current_buf() or bufnr
  if not client.wanted(bufnr) then
    return nil
  end
  if state.native then
    return nil
  end
  return client.attach(bufnr)
end

--- The server options in effect (config.server with the current enable flag).
M.server_options = config.server_options

--- Merge `server_opts` into the server options and push them (workspace/didChangeConfiguration).
function M.configure(server_opts)
  config.options.server = vim.tbl_deep_extend('force', config.options.server or {}, server_opts or {})
  local settings = { inkling = config.server_options() }
  local clients = {}
  if state.native then
    clients = native.clients()
  else
    clients = { client.get() }
  end
  for _, c in ipairs(clients) do
    c.config.settings = settings
    util.client_call(c, 'notify', 'workspace/didChangeConfiguration', { settings = settings })
  end
end

--- Turn completions on/off (client side and on the server through `enable`).
function M.toggle(on)
  if on == nil then
    on = not state.enabled
  end
  state.enabled = on
  if not on then
    M.dismiss()
  end
  M.configure({ enable = on })
  if state.native then
    native.enable(on)
  end
  vim.notify('inkling: completions ' .. (on and 'on' or 'off'))
end

--- Stop the server.
function M.stop()
  suggestion.reset()
  if state.native then
    native.stop()
    return
  end
  client.stop()
end

--- Restart the server and re-attach the buffers.
function M.restart()
  if state.native then
    M.stop()
    native.restart_later()
    return
  end
  local bufs = client.attached_buffers()
  M.stop()
  vim.defer_fn(function()
    local cur = api.nvim_get_current_buf()
    M.attach(cur)
    for _, b in ipairs(bufs) do
      if b ~= cur then
        M.attach(b)
      end
    end
  end, 300)
end

----------------------------------------------------------------------------------------------
-- Setup

--- Configure and start. See config.lua for the options.
function M.setup(opts)
  M.config = config.setup(opts)
  if M.config.server and M.config.server.enable == false then
    state.enabled = false
  end
  vim.cmd('highlight default link InklingSuggestion Comment')

  if M.config.native and native.available() then
    return native.setup()
  end

  suggestion.setup()
  M.attach(api.nvim_get_current_buf())
end

return M
