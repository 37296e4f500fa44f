-- The fallback client's suggestions (Neovim 0.7 to 0.11): requests `textDocument/inlineCompletion`
-- after typing (debounced), cancels superseded requests, drops stale answers, keeps the ghost
-- text in step with typing, and accepts or dismisses it. setup() wires it to autocommands and
-- keys; the drawing is in suggestion/ghost.lua, the server lifecycle in client.lua.
local api = vim.api
local uv = vim.uv or vim.loop
local client_mod = require('inkling.client')
local config = require('inkling.config')
local ghost = require('inkling.suggestion.ghost')
local state = require('inkling.state')
local util = require('inkling.util')

local clear = ghost.clear
local render = ghost.render
local client_call = util.client_call

local M = {}

-- The public module; autocommands and keys go through it (it routes to the native path when
-- that is active).
local function inkling()
  return require('inkling')
end

local function cancel_request()
  local r = state.req
  state.req = nil
  if r then
    local client = vim.lsp.get_client_by_id(r.client_id)
    if client and r.id then
      pcall(client_call, client, 'cancel_request', r.id)
    end
  end
end

--- Hide the suggestion and cancel the request in flight.
function M.reset()
  clear()
  cancel_request()
end

-- Turn an InlineCompletionItem into a suggestion at the cursor, or nil when it does not fit.
local function resolve(item, bufnr, row, col, enc)
  if type(item) ~= 'table' then
    return nil
  end
  local text = item.insertText
  if type(text) == 'table' then
    text = text.value -- StringValue (snippet): shown and inserted as plain text
  end
  if type(text) ~= 'string' or text == '' then
    return nil
  end
  local line = api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
  local s_col, e_col = col, col
  local r = item.range
  if type(r) == 'table' and r.start and r['end'] then
    -- Only ranges on the cursor line that contain the cursor.
    if r.start.line ~= row or r['end'].line ~= row then
      return nil
    end
    s_col = util.byte_index(line, r.start.character, enc)
    e_col = util.byte_index(line, r['end'].character, enc)
    if s_col > col or e_col < col then
      return nil
    end
  end
  local typed = line:sub(s_col + 1, col)
  if text:sub(1, #typed) ~= typed then
    return nil
  end
  local ghost_text = text:sub(#typed + 1)
  if ghost_text == '' then
    return nil
  end
  return {
    bufnr = bufnr,
    row = row,
    col = col,
    s_col = s_col,
    e_col = e_col,
    text = text,
    ghost = ghost_text,
    tick = api.nvim_buf_get_changedtick(bufnr),
  }
end

local function cursor()
  local pos = api.nvim_win_get_cursor(0)
  return pos[1] - 1, pos[2]
end

local function in_insert()
  return api.nvim_get_mode().mode:sub(1, 1) == 'i'
end

function M.is_visible()
  local s = state.suggestion
  if not s or s.bufnr ~= api.nvim_get_current_buf() then
    return false
  end
  local row, col = cursor()
  return s.row == row and s.col == col and s.tick == api.nvim_buf_get_changedtick(s.bufnr)
end

function M.get_suggestion()
  return M.is_visible() and state.suggestion.ghost or nil
end

function M.accept()
  if not M.is_visible() then
    return false
  end
  local s = state.suggestion
  clear()
  cancel_request()
  local lines = util.split_lines(s.text)
  api.nvim_buf_set_text(s.bufnr, s.row, s.s_col, s.row, s.e_col, lines)
  local end_row = s.row + #lines - 1
  local end_col = (#lines == 1) and (s.s_col + #lines[1]) or #lines[#lines]
  pcall(api.nvim_win_set_cursor, 0, { end_row + 1, end_col })
  return true
end

function M.dismiss()
  local visible = M.is_visible()
  if visible then
    -- An inkling/suggestionGrown for this spot must not bring it back.
    local s = state.suggestion
    state.dismissed = { bufnr = s.bufnr, tick = s.tick, row = s.row, col = s.col }
  end
  clear()
  cancel_request()
  return visible
end

----------------------------------------------------------------------------------------------
-- Requests

--- See require('inkling').request().
function M.request(opts)
  opts = opts or {}
  local manual = opts.manual ~= false
  local on_done = opts.on_done or function() end
  local client = client_mod.get()
  local bufnr = api.nvim_get_current_buf()
  if not client or not client.server_capabilities or not state.enabled then
    return on_done(nil)
  end
  if not vim.lsp.buf_is_attached(bufnr, client.id) then
    return on_done(nil)
  end
  cancel_request()
  local row, col = cursor()
  local line = api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
  local enc = util.offset_encoding(client)
  local tick = api.nvim_buf_get_changedtick(bufnr)
  state.asked = { bufnr = bufnr, tick = tick, row = row, col = col }
  state.seq = state.seq + 1
  local seq = state.seq
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    position = { line = row, character = util.char_index(line, col, enc) },
    context = { triggerKind = manual and 1 or 2 },
  }
  local ok, id = client_call(client, 'request', 'textDocument/inlineCompletion', params, function(err, result)
    if seq ~= state.seq then
      return -- superseded
    end
    state.req = nil
    if err or type(result) ~= 'table' then
      return on_done(nil)
    end
    -- Stale: the user typed, moved or left the buffer meanwhile.
    local r2, c2 = cursor()
    if
      api.nvim_get_current_buf() ~= bufnr
      or api.nvim_buf_get_changedtick(bufnr) ~= tick
      or r2 ~= row
      or c2 ~= col
      or (not manual and not in_insert())
    then
      return on_done(nil)
    end
    local items = result.items or result
    local s
    for _, item in ipairs(items) do
      s = resolve(item, bufnr, row, col, enc)
      if s then
        break
      end
    end
    clear()
    if s then
      state.suggestion = s
      render(s)
    end
    on_done(s)
  end, bufnr)
  if ok then
    state.req = { client_id = client.id, id = id }
  else
    on_done(nil)
  end
end

local function schedule_request()
  if not config.options.auto_trigger or not state.enabled then
    return
  end
  if not state.timer then
    state.timer = uv.new_timer()
  end
  state.timer:stop()
  state.timer:start(
    config.options.debounce_ms,
    0,
    vim.schedule_wrap(function()
      if in_insert() then
        inkling().request({ manual = false })
      end
    end)
  )
end

-- After typing: keep the suggestion when the typed text matches it, then ask again.
local function on_text_changed()
  local s = state.suggestion
  if s and s.bufnr == api.nvim_get_current_buf() then
    local row, col = cursor()
    local line = api.nvim_buf_get_lines(s.bufnr, row, row + 1, false)[1] or ''
    local typed = (row == s.row and col > s.col) and line:sub(s.col + 1, col) or nil
    if typed and s.ghost:sub(1, #typed) == typed and #typed < #s.ghost then
      s.ghost = s.ghost:sub(#typed + 1)
      s.e_col = s.e_col + #typed
      s.col = col
      s.tick = api.nvim_buf_get_changedtick(s.bufnr)
      render(s)
    else
      clear()
    end
  end
  cancel_request()
  schedule_request()
end

local function on_cursor_moved()
  local s = state.suggestion
  if not s then
    return
  end
  if s.bufnr ~= api.nvim_get_current_buf() then
    return clear()
  end
  -- A text change also moves the cursor; TextChangedI (after this) handles that case.
  if api.nvim_buf_get_changedtick(s.bufnr) ~= s.tick then
    return
  end
  local row, col = cursor()
  if row ~= s.row or col ~= s.col then
    clear()
  end
end

----------------------------------------------------------------------------------------------
-- Setup

local function map_key(key, fn)
  vim.keymap.set('i', key, function()
    if not fn() then
      api.nvim_feedkeys(api.nvim_replace_termcodes(key, true, false, true), 'n', false)
    end
  end, { silent = true, desc = 'inkling' })
end

--- Create the autocommands and key mappings of the fallback client.
function M.setup()
  local group = api.nvim_create_augroup('inkling', { clear = true })
  api.nvim_create_autocmd({ 'BufEnter', 'FileType' }, {
    group = group,
    callback = function(args)
      inkling().attach(args.buf)
    end,
  })
  api.nvim_create_autocmd('InsertEnter', { group = group, callback = schedule_request })
  api.nvim_create_autocmd('TextChangedI', { group = group, callback = on_text_changed })
  api.nvim_create_autocmd('CursorMovedI', { group = group, callback = on_cursor_moved })
  api.nvim_create_autocmd({ 'InsertLeave', 'BufLeave' }, {
    group = group,
    callback = function()
      clear()
      cancel_request()
      if state.timer then
        state.timer:stop()
      end
    end,
  })
  api.nvim_create_autocmd('VimLeavePre', { group = group, callback = client_mod.stop_on_exit })
  if config.options.accept_key then
    map_key(config.options.accept_key, inkling().accept)
  end
  if config.options.dismiss_key then
    map_key(config.options.dismiss_key, inkling().dismiss)
  end
end

return M
