-- Follow-ups while editing, for both clients (and lsp/inkling.lua):
--
-- `inkling/suggestionGrown` (server -> client): the suggestion the server showed at a document
-- version and position has grown (the model kept writing); asking again there gets the longer
-- text at once. When that is still what the user looks at (current buffer, the version the
-- client last sent, cursor at that position, insert mode), ask again: the plugin's own request
-- on 0.7 - 0.11, vim.lsp.inline_completion's on 0.12+. At most once per notification; the
-- notifications that arrive while an inline completion request is in flight wait for it to end
-- and then make one re-ask at most.
--
-- `inkling/cursor` (client -> server): where the cursor rests, sent 200 ms after it stops moving
-- in an attached buffer (normal or insert mode, no visual selection), so that the server can
-- evaluate that spot's prompt ahead of time. Skipped where an inline completion was just asked
-- for, and when the server option `warmCursor` is false.
local api = vim.api
local uv = vim.uv or vim.loop
local state = require('inkling.state')
local util = require('inkling.util')

local M = {}

M.CURSOR_DEBOUNCE_MS = 200

local INLINE = 'textDocument/inlineCompletion'
local AUTOMATIC = 2 -- lsp.InlineCompletionTriggerKind.Automatic

-- The inkling client attached to `bufnr`, if any.
local function inkling_client(bufnr)
  local get = vim.lsp.get_clients or vim.lsp.get_active_clients
  for _, c in ipairs(get()) do
    if c.name == 'inkling' and vim.lsp.buf_is_attached(bufnr, c.id) then
      return c
    end
  end
  return nil
end

-- A server option as this client last sent it (settings pushed by configure(), else init_options).
local function server_option(client, key)
  local cfg = client.config or {}
  local settings = type(cfg.settings) == 'table' and cfg.settings.inkling
  if type(settings) == 'table' and settings[key] ~= nil then
    return settings[key]
  end
  if type(cfg.init_options) == 'table' then
    return cfg.init_options[key]
  end
  return nil
end

local function in_flight(client)
  for _, r in pairs(client.requests or {}) do
    if r.type == 'pending' and r.method == INLINE then
      return true
    end
  end
  return false
end

-- The document version the client sent last (vim.lsp's own count, the changedtick).
local function buf_version(bufnr)
  return vim.lsp.util.buf_versions[bufnr] or api.nvim_buf_get_changedtick(bufnr)
end

local function cursor()
  local pos = api.nvim_win_get_cursor(0)
  return pos[1] - 1, pos[2]
end

-- vim.lsp.inline_completion (0.12+) asks by itself in insert mode in this buffer.
local function native_asks(bufnr)
  local ic = vim.lsp.inline_completion
  if not ic or not ic.is_enabled then
    return false
  end
  local ok, on = pcall(ic.is_enabled, { bufnr = bufnr })
  return ok and on
end

----------------------------------------------------------------------------------------------
-- inkling/suggestionGrown

local pending = {} -- { params, client_id } waiting for the request in flight

-- Whether the grown suggestion is the one on screen now.
local function applies(params, client)
  if not state.enabled or type(params.textDocument) ~= 'table' or type(params.position) ~= 'table' then
    return false
  end
  local bufnr = api.nvim_get_current_buf()
  if params.textDocument.uri ~= vim.uri_from_bufnr(bufnr) or not vim.lsp.buf_is_attached(bufnr, client.id) then
    return false
  end
  if buf_version(bufnr) ~= params.textDocument.version then
    return false
  end
  if api.nvim_get_mode().mode:sub(1, 1) ~= 'i' then
    return false
  end
  local row, col = cursor()
  if row ~= params.position.line then
    return false
  end
  local line = api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
  if util.char_index(line, col, util.offset_encoding(client)) ~= params.position.character then
    return false
  end
  local d = state.dismissed -- the user dismissed the suggestion here: leave it dismissed
  if d and d.bufnr == bufnr and d.tick == api.nvim_buf_get_changedtick(bufnr) and d.row == row and d.col == col then
    return false
  end
  return true
end

-- Ask for the inline completion at the cursor again and redraw it.
local function reask(client, bufnr)
  if not state.native and client.id == state.client_id then
    require('inkling.suggestion').request({ manual = false })
    return
  end
  -- vim.lsp.inline_completion has no public "ask again": use its completor for the buffer
  -- (asks at once), else fire the event it re-asks on (after its own 200 ms debounce).
  local ok, capability = pcall(require, 'vim.lsp._capability')
  local class = ok and type(capability) == 'table' and capability.all and capability.all.inline_completion
  local completor = class and class.active and class.active[bufnr]
  if completor and type(completor.request) == 'function' and pcall(completor.request, completor, AUTOMATIC) then
    return
  end
  pcall(api.nvim_exec_autocmds, 'CursorMovedI', { group = 'nvim.lsp.inline_completion:' .. bufnr, modeline = false })
end

-- Re-ask once if any of `list` (params of one client) applies.
local function fire(list, client)
  for _, params in ipairs(list) do
    if applies(params, client) then
      reask(client, api.nvim_get_current_buf())
      return
    end
  end
end

--- Handler of `inkling/suggestionGrown`.
function M.on_grown(params, ctx)
  if type(params) ~= 'table' then
    return
  end
  local client = ctx and vim.lsp.get_client_by_id(ctx.client_id)
  if not client then
    return
  end
  if in_flight(client) then
    pending[#pending + 1] = { params = params, client_id = client.id }
    if #pending > 8 then
      table.remove(pending, 1)
    end
    return
  end
  fire({ params }, client)
end

--- An inline completion request ended (answered, failed or cancelled): the notifications that
--- waited for it re-ask now (once), when they still apply.
function M.settled()
  if #pending == 0 then
    return
  end
  local keep, ready = {}, {}
  for _, p in ipairs(pending) do
    local client = vim.lsp.get_client_by_id(p.client_id)
    if client and in_flight(client) then
      keep[#keep + 1] = p
    elseif client then
      ready[client.id] = ready[client.id] or { client = client, list = {} }
      table.insert(ready[client.id].list, p.params)
    end
  end
  pending = keep
  for _, r in pairs(ready) do
    fire(r.list, r.client)
  end
end

M.handlers = {
  ['inkling/suggestionGrown'] = function(_, params, ctx)
    M.on_grown(params, ctx)
  end,
}

----------------------------------------------------------------------------------------------
-- inkling/cursor

local timer
local last_sent -- bufnr:changedtick:row:col of the last inkling/cursor

local function spot_key(bufnr, tick, row, col)
  return table.concat({ bufnr, tick, row, col }, ':')
end

local function send_cursor()
  local bufnr = api.nvim_get_current_buf()
  local client = inkling_client(bufnr)
  if not client or not state.enabled or server_option(client, 'warmCursor') == false then
    return
  end
  local mode = api.nvim_get_mode().mode:sub(1, 1)
  if mode ~= 'n' and mode ~= 'i' then
    return -- a visual selection, the command line, ...
  end
  if mode == 'i' and native_asks(bufnr) then
    return -- vim.lsp.inline_completion asks there itself
  end
  local row, col = cursor()
  local tick = api.nvim_buf_get_changedtick(bufnr)
  local key = spot_key(bufnr, tick, row, col)
  local asked = state.asked
  if key == last_sent or (asked and key == spot_key(asked.bufnr, asked.tick, asked.row, asked.col)) then
    return
  end
  last_sent = key
  local line = api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
  util.client_call(client, 'notify', 'inkling/cursor', {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    position = { line = row, character = util.char_index(line, col, util.offset_encoding(client)) },
  })
end

--- The cursor moved in an attached buffer: send inkling/cursor once it rests.
function M.cursor_moved()
  if not timer then
    timer = uv.new_timer()
  end
  timer:stop()
  timer:start(M.CURSOR_DEBOUNCE_MS, 0, vim.schedule_wrap(send_cursor))
end

local group

--- Follow the cursor in `bufnr` (an inkling client was attached to it) and re-check the waiting
--- inkling/suggestionGrown notifications when requests end. Safe to call again.
function M.attach(bufnr)
  if not group then
    group = api.nvim_create_augroup('inkling_live', { clear = true })
    local on_request = function()
      if #pending > 0 then
        vim.schedule(M.settled)
      end
    end
    if vim.fn.exists('##LspRequest') == 1 then
      api.nvim_create_autocmd('LspRequest', { group = group, callback = on_request })
    else -- Neovim 0.7 - 0.9
      api.nvim_create_autocmd('User', { group = group, pattern = 'LspRequest', callback = on_request })
    end
  end
  api.nvim_clear_autocmds({ group = group, buffer = bufnr })
  api.nvim_create_autocmd({ 'CursorMoved', 'CursorMovedI' }, { group = group, buffer = bufnr, callback = M.cursor_moved })
end

return M
