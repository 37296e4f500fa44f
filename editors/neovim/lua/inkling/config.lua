-- Options of require('inkling').setup(): the defaults, merging the user's options over them, and
-- the server command and server options that follow from them.
local state = require('inkling.state')

local M = {}

M.defaults = {
  -- Command that starts the server; default `{vim.g.inkling_server_path or 'inkling', 'lsp'}`.
  cmd = nil,
  -- Server options (camelCase, all optional; the server has the defaults): model, draftModel,
  -- threads, contextSize, maxTokens, enable, debounceMs, speculation, disabledLanguages,
  -- streaming, answerDeadlineMs, warmCursor.
  server = {},
  -- Filetypes to attach to; nil = every normal file buffer.
  filetypes = nil,
  -- Insert-mode key that accepts the suggestion (falls back to the key itself); false = no mapping.
  accept_key = '<Tab>',
  -- Insert-mode key that dismisses the suggestion; false = no mapping.
  dismiss_key = '<C-]>',
  -- Client-side wait after the last keystroke before asking (the server debounces too).
  debounce_ms = 75,
  -- Ask automatically while typing; false = only on require('inkling').request().
  auto_trigger = true,
  -- Highlight group of the ghost text.
  hl_group = 'InklingSuggestion',
  -- On Neovim 0.12+, use vim.lsp.inline_completion instead of this plugin's ghost text.
  native = true,
}

-- The options in effect; require('inkling').config is this same table.
M.options = vim.deepcopy(M.defaults)

--- Merge `opts` over the defaults and make the result the options in effect.
function M.setup(opts)
  M.options = vim.tbl_deep_extend('force', vim.deepcopy(M.defaults), opts or {})
  return M.options
end

function M.server_cmd()
  if M.options.cmd then
    return M.options.cmd
  end
  return { vim.g.inkling_server_path or 'inkling', 'lsp' }
end

--- The server options in effect (config.server with the current enable flag).
function M.server_options()
  local opts = vim.deepcopy(M.options.server or {})
  if not state.enabled then
    opts.enable = false
  end
  return opts
end

return M
