-- The Neovim 0.12+ path (`native = true`): registers the `inkling` config for
-- vim.lsp.config/vim.lsp.enable, turns on vim.lsp.inline_completion and maps the accept key to
-- vim.lsp.inline_completion.get(). The ghost text is Neovim's own; this module only reads it.
local api = vim.api
local config = require('inkling.config')
local handlers = require('inkling.handlers')
local live = require('inkling.live')
local state = require('inkling.state')
local util = require('inkling.util')

local M = {}

--- Whether this Neovim has what the native path needs.
function M.available()
  return vim.lsp.inline_completion and vim.lsp.config and vim.lsp.enable
end

-- Native (0.12+) ghost text lives in the extmarks of vim.lsp.inline_completion.
local function native_marks()
  local nsid = api.nvim_get_namespaces()['nvim.lsp.inline_completion']
  if not nsid then
    return {}
  end
  return api.nvim_buf_get_extmarks(0, nsid, 0, -1, { details = true })
end

function M.namespace()
  return api.nvim_get_namespaces()['nvim.lsp.inline_completion'] or -1
end

function M.is_visible()
  return #native_marks() > 0
end

function M.get_suggestion()
  local m = native_marks()[1]
  if not m then
    return nil
  end
  local function text(chunks)
    local t = {}
    for _, c in ipairs(chunks or {}) do
      if c[2] ~= 'ComplHintMore' then -- the " (1/3)" item counter
        t[#t + 1] = c[1]
      end
    end
    return table.concat(t)
  end
  local lines = { text(m[4].virt_text) }
  for _, vl in ipairs(m[4].virt_lines or {}) do
    lines[#lines + 1] = text(vl)
  end
  return table.concat(lines, '\n')
end

function M.accept()
  return vim.lsp.inline_completion.get() and true or false
end

function M.request(opts)
  opts = opts or {}
  local on_done = opts.on_done or function() end
  -- vim.lsp.inline_completion asks by itself while typing; it has no explicit trigger.
  return on_done(nil)
end

--- The running inkling clients (started by vim.lsp.enable).
function M.clients()
  return vim.lsp.get_clients({ name = 'inkling' })
end

function M.enable(on)
  vim.lsp.inline_completion.enable(on)
end

function M.stop()
  for _, c in ipairs(M.clients()) do
    util.client_call(c, 'stop')
  end
end

--- After stop(): enable the config again a little later, which starts a server and
--- re-attaches the open buffers.
function M.restart_later()
  vim.defer_fn(function()
    vim.lsp.enable('inkling', false)
    vim.lsp.enable('inkling') -- re-attaches the open buffers
  end, 500)
end

function M.setup()
  state.native = true
  vim.lsp.config('inkling', {
    cmd = config.server_cmd(),
    filetypes = config.options.filetypes,
    init_options = vim.deepcopy(config.server_options()),
    handlers = handlers,
  })
  -- inkling/cursor from the buffers the client attaches to (lsp/inkling.lua's on_attach does
  -- the same; live.attach() is idempotent).
  api.nvim_create_autocmd('LspAttach', {
    group = api.nvim_create_augroup('inkling_native', { clear = true }),
    callback = function(args)
      local c = vim.lsp.get_client_by_id(args.data.client_id)
      if c and c.name == 'inkling' then
        live.attach(args.buf)
      end
    end,
  })
  vim.lsp.enable('inkling')
  vim.lsp.inline_completion.enable(state.enabled)
  if config.options.accept_key then
    local key = config.options.accept_key
    vim.keymap.set('i', key, function()
      if not vim.lsp.inline_completion.get() then
        return key
      end
    end, { expr = true, replace_keycodes = true, silent = true, desc = 'inkling: accept' })
  end
end

return M
