-- inkling: offline code completion for Neovim.
--
-- Neovim 0.12+ (with `native = true`, the default): registers the `inkling` config for
-- vim.lsp.config/vim.lsp.enable and turns on vim.lsp.inline_completion; the accept key calls
-- vim.lsp.inline_completion.get().
--
-- Older Neovim (0.7 to 0.11): this module is the client. It starts one `inkling lsp` for the
-- whole session, attaches it to file buffers, requests `textDocument/inlineCompletion` after
-- typing (debounced), shows the suggestion as virtual text (extmarks) and inserts it on the
-- accept key.
local M = {}

local api = vim.api
local uv = vim.uv or vim.loop

local has = function(v)
  return vim.fn.has('nvim-' .. v) == 1
end

local ns = api.nvim_create_namespace('inkling')

local defaults = {
  -- Command that starts the server; default `{vim.g.inkling_server_path or 'inkling', 'lsp'}`.
  cmd = nil,
  -- Server options (camelCase, all optional): model, draftModel, threads, contextSize,
  -- maxTokens, enable, debounceMs, speculation, disabledLanguages.
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

M.config = vim.deepcopy(defaults)

local state = {
  client_id = nil,
  enabled = true,
  status = { state = 'stopped', message = nil },
  progress = nil, -- model-load percentage while loading
  stats = nil, -- last inkling/completionStats params
  timer = nil,
  req = nil, -- { client_id, id }
  seq = 0,
  suggestion = nil,
  native = false,
}
M._state = state

----------------------------------------------------------------------------------------------
-- Small compatibility helpers (0.7 .. 0.12)

local function split_lines(s)
  local out, start = {}, 1
  while true do
    local i = s:find('\n', start, true)
    if not i then
      out[#out + 1] = s:sub(start)
      return out
    end
    out[#out + 1] = s:sub(start, i - 1)
    start = i + 1
  end
end

-- Byte column -> LSP character offset in `enc`.
local function char_index(line, byte_col, enc)
  if enc == 'utf-8' then
    return byte_col
  end
  if has('0.11') then
    return vim.str_utfindex(line, enc, byte_col, false)
  end
  local u32, u16 = vim.str_utfindex(line, byte_col)
  return enc == 'utf-32' and u32 or u16
end

-- LSP character offset in `enc` -> byte column (clamped to the line).
local function byte_index(line, character, enc)
  if enc == 'utf-8' then
    return math.min(character, #line)
  end
  if has('0.11') then
    return vim.str_byteindex(line, enc, character, false)
  end
  local ok, idx = pcall(vim.str_byteindex, line, character, enc ~= 'utf-32')
  return ok and idx or #line
end

-- client.request(...) before 0.11, client:request(...) from 0.11 on.
local function client_call(client, name, ...)
  if has('0.11') then
    return client[name](client, ...)
  end
  return client[name](...)
end

local function offset_encoding(client)
  return client.offset_encoding or 'utf-16'
end

local function get_client()
  if not state.client_id then
    return nil
  end
  local client = vim.lsp.get_client_by_id(state.client_id)
  if not client or client_call(client, 'is_stopped') then
    return nil
  end
  return client
end

local function server_cmd()
  if M.config.cmd then
    return M.config.cmd
  end
  return { vim.g.inkling_server_path or 'inkling', 'lsp' }
end

----------------------------------------------------------------------------------------------
-- Status (also used by lsp/inkling.lua on 0.11+)

local function set_status(s, message)
  local changed = state.status.state ~= s or state.status.message ~= message
  state.status = { state = s, message = message }
  if s ~= 'loading' then
    state.progress = nil
  end
  if changed and s == 'error' then
    vim.notify('inkling: ' .. (message or 'server error'), vim.log.levels.ERROR)
  end
  if changed then
    pcall(api.nvim_exec_autocmds, 'User', { pattern = 'InklingStatus', modeline = false })
  end
end

M.handlers = {
  ['inkling/status'] = function(_, params)
    if type(params) == 'table' and type(params.state) == 'string' then
      set_status(params.state, type(params.message) == 'string' and params.message or nil)
    end
  end,
  ['inkling/completionStats'] = function(_, params)
    if type(params) == 'table' then
      state.stats = params
    end
  end,
  ['$/progress'] = function(err, params, ctx, config)
    if type(params) == 'table' and params.token == 'inkling/load' and type(params.value) == 'table' then
      local v = params.value
      if v.kind == 'end' then
        state.progress = nil
      else
        if state.status.state == 'starting' or state.status.state == 'stopped' then
          state.status = { state = 'loading', message = nil }
        end
        if type(v.percentage) == 'number' then
          state.progress = math.floor(v.percentage + 0.5)
        end
      end
      pcall(api.nvim_exec_autocmds, 'User', { pattern = 'InklingStatus', modeline = false })
    end
    local default = vim.lsp.handlers['$/progress']
    if default then
      return default(err, params, ctx, config)
    end
  end,
}

--- Current state: { state = 'stopped'|'starting'|'loading'|'ready'|'error'|'disabled',
--- message, progress, stats = { latencyMs, source, generatedTokens } | nil, enabled }.
function M.status()
  return {
    state = state.status.state,
    message = state.status.message,
    progress = state.progress,
    stats = state.stats,
    enabled = state.enabled,
  }
end

--- One short line for a statusline, e.g. `inkling 120ms model`, `inkling 40%`, `inkling off`.
function M.statusline()
  local s = state.status.state
  if not state.enabled or s == 'disabled' then
    return 'inkling off'
  elseif s == 'loading' then
    return state.progress and ('inkling ' .. state.progress .. '%') or 'inkling loading'
  elseif s == 'error' then
    return 'inkling error'
  elseif s == 'ready' then
    local st = state.stats
    if type(st) == 'table' and type(st.latencyMs) == 'number' then
      return ('inkling %dms %s'):format(math.floor(st.latencyMs + 0.5), tostring(st.source))
    end
    return 'inkling'
  end
  return 'inkling ' .. s
end

----------------------------------------------------------------------------------------------
-- Ghost text

local function clear()
  local s = state.suggestion
  state.suggestion = nil
  if s and api.nvim_buf_is_valid(s.bufnr) then
    api.nvim_buf_clear_namespace(s.bufnr, ns, 0, -1)
  end
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

local function render(s)
  api.nvim_buf_clear_namespace(s.bufnr, ns, 0, -1)
  local ts = vim.bo[s.bufnr].tabstop
  local function expand(l)
    return (l:gsub('\t', string.rep(' ', ts)))
  end
  local lines = split_lines(s.ghost)
  local hl = M.config.hl_group
  local line = api.nvim_buf_get_lines(s.bufnr, s.row, s.row + 1, false)[1] or ''
  local opts = { virt_text = { { expand(lines[1]), hl } }, hl_mode = 'combine' }
  if has('0.10') then
    opts.virt_text_pos = 'inline'
  elseif s.col >= #line then
    opts.virt_text_pos = 'overlay'
  else
    opts.virt_text_pos = 'eol'
  end
  if #lines > 1 then
    local vl = {}
    for i = 2, #lines do
      vl[#vl + 1] = { { expand(lines[i]) ~= '' and expand(lines[i]) or ' ', hl } }
    end
    opts.virt_lines = vl
  end
  s.extmark = api.nvim_buf_set_extmark(s.bufnr, ns, s.row, s.col, opts)
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
    s_col = byte_index(line, r.start.character, enc)
    e_col = byte_index(line, r['end'].character, enc)
    if s_col > col or e_col < col then
      return nil
    end
  end
  local typed = line:sub(s_col + 1, col)
  if text:sub(1, #typed) ~= typed then
    return nil
  end
  local ghost = text:sub(#typed + 1)
  if ghost == '' then
    return nil
  end
  return {
    bufnr = bufnr,
    row = row,
    col = col,
    s_col = s_col,
    e_col = e_col,
    text = text,
    ghost = ghost,
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

-- Native (0.12+) ghost text lives in the extmarks of vim.lsp.inline_completion.
local function native_marks()
  local nsid = api.nvim_get_namespaces()['nvim.lsp.inline_completion']
  if not nsid then
    return {}
  end
  return api.nvim_buf_get_extmarks(0, nsid, 0, -1, { details = true })
end

--- The extmark namespace the ghost text is drawn in.
function M.namespace()
  if state.native then
    return api.nvim_get_namespaces()['nvim.lsp.inline_completion'] or -1
  end
  return ns
end

--- Whether a suggestion is showing in the current buffer at the cursor.
function M.is_visible()
  if state.native then
    return #native_marks() > 0
  end
  local s = state.suggestion
  if not s or s.bufnr ~= api.nvim_get_current_buf() then
    return false
  end
  local row, col = cursor()
  return s.row == row and s.col == col and s.tick == api.nvim_buf_get_changedtick(s.bufnr)
end

--- The suggestion text still to be inserted (nil when none is showing).
function M.get_suggestion()
  if state.native then
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
  return M.is_visible() and state.suggestion.ghost or nil
end

--- Insert the visible suggestion. Returns true when it did.
function M.accept()
  if state.native then
    return vim.lsp.inline_completion.get() and true or false
  end
  if not M.is_visible() then
    return false
  end
  local s = state.suggestion
  clear()
  cancel_request()
  local lines = split_lines(s.text)
  api.nvim_buf_set_text(s.bufnr, s.row, s.s_col, s.row, s.e_col, lines)
  local end_row = s.row + #lines - 1
  local end_col = (#lines == 1) and (s.s_col + #lines[1]) or #lines[#lines]
  pcall(api.nvim_win_set_cursor, 0, { end_row + 1, end_col })
  return true
end

--- Hide the suggestion. Returns true when one was showing.
function M.dismiss()
  if state.native then
    return false -- leaving insert mode or moving the cursor hides it
  end
  local visible = M.is_visible()
  clear()
  cancel_request()
  return visible
end

----------------------------------------------------------------------------------------------
-- Requests

--- Ask the server for a suggestion at the cursor now. `opts.manual` (default true) sends
--- triggerKind Invoked and shows the result in any mode; automatic requests show only in
--- insert mode. `opts.on_done(suggestion_or_nil)` is called when the answer was handled.
function M.request(opts)
  opts = opts or {}
  local manual = opts.manual ~= false
  local on_done = opts.on_done or function() end
  if state.native then
    -- vim.lsp.inline_completion asks by itself while typing; it has no explicit trigger.
    return on_done(nil)
  end
  local client = get_client()
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
  local enc = offset_encoding(client)
  local tick = api.nvim_buf_get_changedtick(bufnr)
  state.seq = state.seq + 1
  local seq = state.seq
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    position = { line = row, character = char_index(line, col, enc) },
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
  if not M.config.auto_trigger or not state.enabled then
    return
  end
  if not state.timer then
    state.timer = uv.new_timer()
  end
  state.timer:stop()
  state.timer:start(
    M.config.debounce_ms,
    0,
    vim.schedule_wrap(function()
      if in_insert() then
        M.request({ manual = false })
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
-- Client lifecycle (fallback path)

local function wanted(bufnr)
  if not api.nvim_buf_is_valid(bufnr) or vim.bo[bufnr].buftype ~= '' or api.nvim_buf_get_name(bufnr) == '' then
    return false
  end
  local fts = M.config.filetypes
  if fts then
    return vim.tbl_contains(fts, vim.bo[bufnr].filetype)
  end
  return true
end

local function client_config()
  local caps = vim.lsp.protocol.make_client_capabilities()
  caps.textDocument = caps.textDocument or {}
  caps.textDocument.inlineCompletion = { dynamicRegistration = false }
  return {
    name = 'inkling',
    cmd = server_cmd(),
    root_dir = vim.fn.getcwd(),
    init_options = vim.deepcopy(M.server_options()),
    capabilities = caps,
    handlers = M.handlers,
    on_init = function()
      if state.status.state == 'starting' then
        state.status = { state = 'loading', message = nil }
      end
    end,
    on_exit = function(code, signal, client_id)
      if state.client_id == client_id then
        state.client_id = nil
        vim.schedule(function()
          clear()
          if code ~= 0 and state.status.state ~= 'stopped' then
            set_status('error', ('server exited with code %d'):format(code))
          else
            set_status('stopped', nil)
          end
        end)
      end
    end,
  }
end

--- Start the server if needed and attach it to `bufnr` (default: current buffer).
function M.attach(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and api.nvim_get_current_buf() or bufnr
  if not wanted(bufnr) then
    return nil
  end
  if state.native then
    return nil
  end
  local client = get_client()
  if client then
    if not vim.lsp.buf_is_attached(bufnr, client.id) then
      vim.lsp.buf_attach_client(bufnr, client.id)
    end
    return client.id
  end
  state.status = { state = 'starting', message = nil }
  local cfg = client_config()
  if vim.fn.executable(cfg.cmd[1]) ~= 1 then
    set_status('error', ('`%s` not found: put inkling on PATH or set cmd / g:inkling_server_path'):format(cfg.cmd[1]))
    return nil
  end
  local id
  if has('0.10') then
    id = vim.lsp.start(cfg, {
      bufnr = bufnr,
      reuse_client = function(c)
        return c.name == 'inkling'
      end,
    })
  else
    id = vim.lsp.start_client(cfg)
    if id then
      vim.lsp.buf_attach_client(bufnr, id)
    end
  end
  state.client_id = id
  return id
end

--- The server options in effect (config.server with the current enable flag).
function M.server_options()
  local opts = vim.deepcopy(M.config.server or {})
  if not state.enabled then
    opts.enable = false
  end
  return opts
end

--- Merge `server_opts` into the server options and push them (workspace/didChangeConfiguration).
function M.configure(server_opts)
  M.config.server = vim.tbl_deep_extend('force', M.config.server or {}, server_opts or {})
  local settings = { inkling = M.server_options() }
  local clients = {}
  if state.native then
    clients = vim.lsp.get_clients({ name = 'inkling' })
  else
    clients = { get_client() }
  end
  for _, client in ipairs(clients) do
    client.config.settings = settings
    client_call(client, 'notify', 'workspace/didChangeConfiguration', { settings = settings })
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
    vim.lsp.inline_completion.enable(on)
  end
  vim.notify('inkling: completions ' .. (on and 'on' or 'off'))
end

--- Stop the server.
function M.stop()
  clear()
  cancel_request()
  if state.native then
    for _, c in ipairs(vim.lsp.get_clients({ name = 'inkling' })) do
      client_call(c, 'stop')
    end
    return
  end
  local client = get_client()
  state.client_id = nil
  state.status = { state = 'stopped', message = nil }
  if client then
    client_call(client, 'stop')
  end
end

--- Restart the server and re-attach the buffers.
function M.restart()
  local bufs = {}
  local client = get_client()
  if state.native then
    M.stop()
    vim.defer_fn(function()
      vim.lsp.enable('inkling', false)
      vim.lsp.enable('inkling') -- re-attaches the open buffers
    end, 500)
    return
  end
  for _, b in ipairs(api.nvim_list_bufs()) do
    if client and vim.lsp.buf_is_attached(b, client.id) then
      bufs[#bufs + 1] = b
    end
  end
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

local function map_key(key, fn)
  vim.keymap.set('i', key, function()
    if not fn() then
      api.nvim_feedkeys(api.nvim_replace_termcodes(key, true, false, true), 'n', false)
    end
  end, { silent = true, desc = 'inkling' })
end

local function setup_native()
  state.native = true
  vim.lsp.config('inkling', {
    cmd = server_cmd(),
    filetypes = M.config.filetypes,
    init_options = vim.deepcopy(M.server_options()),
    handlers = M.handlers,
  })
  vim.lsp.enable('inkling')
  vim.lsp.inline_completion.enable(state.enabled)
  if M.config.accept_key then
    local key = M.config.accept_key
    vim.keymap.set('i', key, function()
      if not vim.lsp.inline_completion.get() then
        return key
      end
    end, { expr = true, replace_keycodes = true, silent = true, desc = 'inkling: accept' })
  end
end

--- Configure and start. See `defaults` above for the options.
function M.setup(opts)
  M.config = vim.tbl_deep_extend('force', vim.deepcopy(defaults), opts or {})
  if M.config.server and M.config.server.enable == false then
    state.enabled = false
  end
  vim.cmd('highlight default link InklingSuggestion Comment')

  if M.config.native and vim.lsp.inline_completion and vim.lsp.config and vim.lsp.enable then
    return setup_native()
  end

  local group = api.nvim_create_augroup('inkling', { clear = true })
  api.nvim_create_autocmd({ 'BufEnter', 'FileType' }, {
    group = group,
    callback = function(args)
      M.attach(args.buf)
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
  api.nvim_create_autocmd('VimLeavePre', {
    group = group,
    callback = function()
      local client = get_client()
      if client then
        client_call(client, 'stop')
      end
    end,
  })
  if M.config.accept_key then
    map_key(M.config.accept_key, M.accept)
  end
  if M.config.dismiss_key then
    map_key(M.config.dismiss_key, M.dismiss)
  end
  M.attach(api.nvim_get_current_buf())
end

return M
