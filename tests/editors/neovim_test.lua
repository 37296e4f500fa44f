-- Headless Neovim test of editors/neovim (the fallback plugin path, as on Debian 12's Neovim 0.7).
--
--   nvim --headless --noplugin -u tests/editors/neovim_test.lua
--
-- Environment:
--   INKLING_NVIM_MOCK=1      run against tests/editors/mock_server.py (deterministic answers)
--   INKLING_BIN              the real server binary (when not mocking)
--   INKLING_TEST_MODEL       GGUF passed as `model` (the 0.5B one keeps it fast)
--   MOCK_LOG                 where the mock server logs what it received (the test sets
--                            MOCK_CONTROL itself, to cue the mock)
--   INKLING_TEST_TIMEOUT_S   how long to wait for the model to load / answer (default 180)
--
-- Keys are fed through the real typeahead (nvim_feedkeys without 'x') while the main loop
-- runs, so the plugin's autocommands, debounce timer, LSP traffic and <Tab> mapping are the
-- ones a user would exercise. Prints `ok - ...` / `not ok - ...` lines and exits non-zero on
-- any failure.

local api = vim.api
local repo = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p:h:h:h')
local mock = os.getenv('INKLING_NVIM_MOCK') == '1'
local timeout_ms = (tonumber(os.getenv('INKLING_TEST_TIMEOUT_S') or '') or 180) * 1000

vim.opt.runtimepath:prepend(repo .. '/editors/neovim')
vim.opt.swapfile = false
vim.opt.shortmess:append('F')
vim.opt.showmode = false
vim.notify = function(msg)
  io.stdout:write('# notify: ' .. tostring(msg) .. '\n')
end
vim.cmd('runtime plugin/inkling.lua')

local passed, failed = 0, 0
local function out(s)
  io.stdout:write(s .. '\n')
  io.stdout:flush()
end
local function ok(name)
  passed = passed + 1
  out('ok - ' .. name)
end
local function not_ok(name, why)
  failed = failed + 1
  out('not ok - ' .. name .. ': ' .. why)
end
local function check(cond, name, why)
  if cond then
    ok(name)
  else
    not_ok(name, why)
  end
  return cond
end

local function finish()
  out(('neovim (%s): %d passed, %d failed'):format(mock and 'mock server' or 'real server', passed, failed))
  pcall(function()
    require('inkling').stop()
  end)
  vim.defer_fn(function()
    vim.cmd(failed == 0 and 'qall!' or ('cquit ' .. math.min(failed, 100)))
  end, 100)
end

-- Coroutine driver: the test body yields while the main loop processes keys and messages.
local co
local function resume()
  local success, err = coroutine.resume(co)
  if not success then
    not_ok('test body', tostring(err) .. '\n' .. debug.traceback(co))
    finish()
  end
end
local function sleep(ms)
  vim.defer_fn(resume, ms)
  coroutine.yield()
end
local function wait_for(cond, ms)
  local deadline = vim.loop.now() + ms
  while true do
    local v = cond()
    if v then
      return v
    end
    if vim.loop.now() > deadline then
      return nil
    end
    sleep(20)
  end
end
local function feed(keys, remap)
  api.nvim_feedkeys(api.nvim_replace_termcodes(keys, true, false, true), remap and 'm' or 'n', false)
end
local function type_chars(s)
  for ch in s:gmatch('.') do
    feed(ch)
    sleep(5)
  end
end
local function line(n)
  return api.nvim_buf_get_lines(0, n - 1, n, false)[1]
end
local function leave_insert()
  feed('<Esc>')
  sleep(30)
end
-- The inkling client attached to `bufnr` (the plugin's own on 0.7-0.11, vim.lsp.enable's on 0.12+).
local function client_id(bufnr)
  local inkling = require('inkling')
  if inkling._state.native then
    local c = vim.lsp.get_clients({ bufnr = bufnr, name = 'inkling' })[1]
    return c and c.id
  end
  local id = inkling._state.client_id
  return id and vim.lsp.buf_is_attached(bufnr, id) and id or nil
end
local function skip(name, why)
  out('ok - ' .. name .. ' # SKIP ' .. why)
end

local function read_log()
  local path = os.getenv('MOCK_LOG')
  local msgs = {}
  if not path or vim.fn.filereadable(path) == 0 then
    return msgs
  end
  for _, l in ipairs(vim.fn.readfile(path)) do
    local success, m = pcall(vim.fn.json_decode, l)
    if success then
      msgs[#msgs + 1] = m
    end
  end
  return msgs
end

local function log_of(method)
  local out_ = {}
  for _, m in ipairs(read_log()) do
    if m.method == method then
      out_[#out_ + 1] = m
    end
  end
  return out_
end
local function count_log(method)
  return #log_of(method)
end

local tmp = vim.fn.tempname()
vim.fn.mkdir(tmp, 'p')

-- Cues for the mock server (see tests/editors/mock_server.py): one JSON object per line.
local control = tmp .. '/mock-control.jsonl'
local function cue(t)
  vim.fn.writefile({ vim.fn.json_encode(t) }, control, 'a')
end

local file = tmp .. '/fib.py'
vim.fn.writefile({
  'def fibonacci(n):',
  '    """Return the n-th Fibonacci number."""',
  '    if n < 2:',
  '        return n',
  '    return fibonacci(n - 1) + ',
  '',
  '',
  'def main():',
  '    print(fibonacci(10))',
  '',
}, file)

local function test_body()
  local inkling = require('inkling')
  local cmd
  if mock then
    cmd = { 'python3', repo .. '/tests/editors/mock_server.py' }
    vim.fn.writefile({}, control)
    vim.env.MOCK_CONTROL = control -- the mock server inherits it
  else
    local bin = os.getenv('INKLING_BIN')
    if not bin or bin == '' or vim.fn.executable(bin) ~= 1 then
      not_ok('server binary', 'INKLING_BIN is not set to an executable (got ' .. tostring(bin) .. ')')
      return finish()
    end
    cmd = { bin, 'lsp' }
  end
  local server = { maxTokens = 24 }
  local model = os.getenv('INKLING_TEST_MODEL')
  if model and model ~= '' then
    server.model = model
  elseif not mock then
    out('# INKLING_TEST_MODEL not set: the server uses its default model')
  end
  if mock then
    server.model = '/models/test.gguf'
  end

  inkling.setup({ cmd = cmd, server = server, debounce_ms = 20 })
  vim.cmd('edit ' .. vim.fn.fnameescape(file))
  local bufnr = api.nvim_get_current_buf()

  -- 1. The server starts, attaches and loads the model.
  out(('# Neovim %s, %s'):format(tostring(vim.version()), inkling._state.native and 'native vim.lsp.inline_completion' or 'plugin ghost text'))
  local native = inkling._state.native
  local attached = wait_for(function()
    return client_id(bufnr)
  end, 20000)
  if not check(attached, 'server starts and attaches to the buffer', 'no client attached within 20 s (status: ' .. vim.inspect(inkling.status()) .. ')') then
    return finish()
  end
  local ready = wait_for(function()
    local s = inkling.status().state
    return s == 'ready' or s == 'error'
  end, timeout_ms)
  if not check(ready and inkling.status().state == 'ready', 'inkling/status reaches ready', 'status: ' .. vim.inspect(inkling.status())) then
    return finish()
  end

  if mock then
    local init
    for _, m in ipairs(read_log()) do
      if m.method == 'initialize' then
        init = m.params
      end
    end
    check(
      init and init.initializationOptions and init.initializationOptions.model == '/models/test.gguf'
        and init.initializationOptions.maxTokens == 24,
      'initializationOptions carry the server options',
      'initialize params: ' .. vim.inspect(init and init.initializationOptions)
    )
    check(
      init and init.capabilities.textDocument.inlineCompletion ~= nil,
      'client announces textDocument.inlineCompletion',
      'capabilities.textDocument has no inlineCompletion'
    )
  end

  -- 2. Typing shows a suggestion as virtual text; <Tab> accepts it.
  local row = 5
  local before = line(row) -- '    return fibonacci(n - 1) + '
  api.nvim_win_set_cursor(0, { row, #before })
  feed('A')
  type_chars('fib')
  local typed = before .. 'fib'
  local visible = wait_for(function()
    return inkling.is_visible()
  end, mock and 5000 or timeout_ms)
  if not visible and not mock then
    -- The model may answer "nothing" for an automatic trigger; ask once explicitly.
    out('# no automatic suggestion; requesting explicitly')
    inkling.request()
    visible = wait_for(function()
      return inkling.is_visible()
    end, timeout_ms)
  end
  if
    not check(visible, 'a suggestion appears after typing', 'none within the timeout (line: ' .. vim.inspect(line(row)) .. ', status: ' .. vim.inspect(inkling.status()) .. ')')
  then
    leave_insert()
    return finish()
  end
  local ghost = inkling.get_suggestion()
  local marks = api.nvim_buf_get_extmarks(bufnr, inkling.namespace(), 0, -1, { details = true })
  local shown = marks[1] and marks[1][4] and marks[1][4].virt_text and marks[1][4].virt_text[1][1]
  check(
    #marks == 1 and marks[1][2] == row - 1 and shown == (vim.split(ghost, '\n', true)[1]:gsub('\t', string.rep(' ', vim.bo.tabstop))),
    'the suggestion is drawn as an extmark at the cursor',
    'extmarks: ' .. vim.inspect(marks)
  )
  if mock then
    check(ghost == '_mock', 'the suggestion is the rest of the item past the typed word', 'got ' .. vim.inspect(ghost))
  end
  check(line(row) == typed, 'showing the suggestion leaves the text alone', 'line is ' .. vim.inspect(line(row)))

  feed('<Tab>', true)
  sleep(50)
  local accepted = line(row)
  if
    check(
      accepted ~= typed and accepted:sub(1, #typed) == typed and accepted ~= typed .. '\t',
      '<Tab> inserts the suggestion',
      ('line before %s, after %s'):format(vim.inspect(typed), vim.inspect(accepted))
    )
  then
    local first = vim.split(typed .. ghost, '\n', true)[1]
    check(accepted == first, 'the inserted text is the suggestion shown', ('expected %s, got %s'):format(vim.inspect(first), vim.inspect(accepted)))
  end
  check(api.nvim_win_get_cursor(0)[2] == #accepted, 'the cursor ends after the accepted text', vim.inspect(api.nvim_win_get_cursor(0)))
  out('# accepted: ' .. vim.inspect(api.nvim_buf_get_lines(0, row - 1, row + 2, false)))
  leave_insert()
  check(api.nvim_get_mode().mode == 'n', 'back to normal mode', 'mode ' .. api.nvim_get_mode().mode)

  -- 3. textDocument/completion returns the suggestion as one item.
  if native then
    -- vim.lsp.inline_completion's debounce timer can still fire after InsertLeave; let it, so
    -- its request does not supersede this one on the server.
    sleep(400)
  end
  api.nvim_buf_set_lines(0, 9, 10, false, { 'result = fibo' })
  api.nvim_win_set_cursor(0, { 10, #'result = fibo' })
  -- (In normal mode the cursor sits on the last character, so build the position by hand.)
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    position = { line = 9, character = #'result = fibo' },
    context = { triggerKind = 1 },
  }
  local responses = vim.lsp.buf_request_sync(bufnr, 'textDocument/completion', params, timeout_ms)
  local item
  for _, r in pairs(responses or {}) do
    local res = r.result
    local items = res and (res.items or res) or {}
    item = item or items[1]
  end
  if check(item ~= nil and type(item.label) == 'string' and item.label ~= '', 'textDocument/completion returns an item', 'responses: ' .. vim.inspect(responses)) then
    local new_text = (item.textEdit and item.textEdit.newText) or item.insertText or item.label
    check(type(new_text) == 'string' and new_text ~= '', 'the completion item carries the suggestion text', vim.inspect(item))
    if mock then
      check(item.label == 'fibo_mock' and new_text == 'fibo_mock', 'completion item matches the suggestion', vim.inspect(item))
    end
    out('# completion item: ' .. vim.inspect({ label = item.label, text = new_text }))
  end

  if not mock then
    check(type(inkling.status().stats) == 'table', 'inkling/completionStats arrives', 'no stats')
    return finish()
  end

  -- Mock-only checks of the plugin's own logic.
  check(inkling.statusline() == 'inkling 2ms model', 'statusline shows the last latency and source', vim.inspect(inkling.statusline()))

  -- 4. UTF-16 columns: the range starts after non-ASCII text (é: 2 bytes/1 unit, 😀: 4 bytes/2 units).
  api.nvim_buf_set_lines(0, 5, 6, false, { 's = "héllo wörld 😀"; ' })
  api.nvim_win_set_cursor(0, { 6, 0 })
  feed('A')
  type_chars('pri')
  local enc_name = native and 'utf-8' or 'utf-16' -- what the mock negotiates with this client
  check(wait_for(function()
    return inkling.get_suggestion() == 'nt(s)'
  end, 3000), enc_name .. ' range maps to the right bytes', 'suggestion ' .. vim.inspect(inkling.get_suggestion()))
  -- Typing what the ghost text shows keeps it, shortened.
  type_chars('n')
  check(inkling.get_suggestion() == 't(s)', 'typing through the suggestion keeps the rest', 'suggestion ' .. vim.inspect(inkling.get_suggestion()))
  wait_for(inkling.is_visible, 3000)
  if native then
    -- vim.lsp.inline_completion keeps showing the old item (its range ends before the typed
    -- character) until its own 200 ms debounce re-asks; accept the fresh one.
    sleep(500)
  end
  feed('<Tab>', true)
  sleep(50)
  check(line(6) == 's = "héllo wörld 😀"; print(s)', 'accepting after non-ASCII text', vim.inspect(line(6)))
  check(api.nvim_win_get_cursor(0)[2] == #line(6), 'cursor ends after the inserted text', vim.inspect(api.nvim_win_get_cursor(0)))
  leave_insert()

  -- 5. Multi-line suggestion: shown with virt_lines, inserted as lines.
  api.nvim_buf_set_lines(0, 6, 7, false, { 'def total(xs)' })
  api.nvim_win_set_cursor(0, { 7, 0 })
  feed('A')
  type_chars(':')
  wait_for(inkling.is_visible, 3000)
  local marks2 = api.nvim_buf_get_extmarks(bufnr, inkling.namespace(), 0, -1, { details = true })
  check(marks2[1] and marks2[1][4].virt_lines and #marks2[1][4].virt_lines == 2, 'a multi-line suggestion uses virt_lines', vim.inspect(marks2))
  feed('<Tab>', true)
  sleep(50)
  local got = api.nvim_buf_get_lines(0, 6, 9, false)
  check(vim.deep_equal(got, { 'def total(xs):', '    total = 0', '    return total' }), 'a multi-line suggestion inserts lines', vim.inspect(got))
  check(api.nvim_win_get_cursor(0)[1] == 9 and api.nvim_win_get_cursor(0)[2] == #'    return total', 'cursor at the end of a multi-line insert', vim.inspect(api.nvim_win_get_cursor(0)))
  leave_insert()

  -- 6. <C-]> dismisses; <Tab> with nothing showing is a plain Tab.
  api.nvim_buf_set_lines(0, 9, 10, false, { 'x = fibo' })
  api.nvim_win_set_cursor(0, { 10, 0 })
  feed('A')
  type_chars('n')
  wait_for(inkling.is_visible, 3000)
  if native then
    skip('<C-]> dismisses the suggestion', 'no dismiss in vim.lsp.inline_completion')
    leave_insert()
    feed('A')
    sleep(30)
  else
    feed('<C-]>', true)
    sleep(30)
    check(not inkling.is_visible() and line(10) == 'x = fibon', '<C-]> dismisses the suggestion', vim.inspect(line(10)))
  end
  feed('<Tab>', true)
  sleep(30)
  check(line(10):match('^x = fibon%s+$') ~= nil, '<Tab> falls back to a tab when nothing is shown', vim.inspect(line(10)))
  leave_insert()

  -- 7. Moving the cursor hides a suggestion; a stale answer is not shown.
  api.nvim_win_set_cursor(0, { 10, 0 })
  feed('A<BS>')
  wait_for(inkling.is_visible, 3000)
  feed('<Left>')
  sleep(30)
  if native then
    skip('moving the cursor clears the suggestion', 'vim.lsp.inline_completion re-asks on CursorMovedI')
  else
    check(not inkling.is_visible() and #api.nvim_buf_get_extmarks(bufnr, inkling.namespace(), 0, -1, {}) == 0, 'moving the cursor clears the suggestion', 'still visible')
  end
  leave_insert()

  -- 8. inkling/suggestionGrown (the mock sends it on cue): a re-ask only when it describes the
  -- buffer version and cursor of now; the longer suggestion replaces the ghost text.
  local INLINE = 'textDocument/inlineCompletion'
  local uri = vim.uri_from_bufnr(bufnr)
  local function grown_at(version, character)
    return {
      send = {
        method = 'inkling/suggestionGrown',
        params = { textDocument = { uri = uri, version = version }, position = { line = 9, character = character }, chars = 14, final = false },
      },
    }
  end
  api.nvim_buf_set_lines(0, 9, 10, false, { 'y = fibo' })
  api.nvim_win_set_cursor(0, { 10, 0 })
  feed('A')
  type_chars('n')
  wait_for(function()
    return inkling.get_suggestion() == '_mock'
  end, 3000)
  sleep(400) -- (native: its debounced request has gone out and been answered)
  local col = #'y = fibon'
  local version = vim.lsp.util.buf_versions[bufnr]
  local before = count_log(INLINE)
  cue(grown_at(version - 1, col))
  cue(grown_at(version, col - 1))
  sleep(400)
  check(
    count_log(INLINE) == before and inkling.get_suggestion() == '_mock',
    'a stale inkling/suggestionGrown (old version, other position) is ignored',
    ('%d re-asks, suggestion %s'):format(count_log(INLINE) - before, vim.inspect(inkling.get_suggestion()))
  )
  cue({ suffix = '_grown' })
  cue(grown_at(version, col))
  local grew = wait_for(function()
    return inkling.get_suggestion() == '_mock_grown'
  end, 3000)
  sleep(300)
  check(
    grew and count_log(INLINE) == before + 1,
    'inkling/suggestionGrown at the cursor re-asks once and shows the longer suggestion',
    ('%d re-asks, suggestion %s'):format(count_log(INLINE) - before, vim.inspect(inkling.get_suggestion()))
  )
  -- Several notifications while a request is in flight: one re-ask, after it.
  cue({ delayMs = 1000 })
  sleep(100)
  before = count_log(INLINE)
  type_chars('a')
  wait_for(function()
    return count_log(INLINE) > before -- the mock holds the answer now
  end, 3000)
  local version2 = vim.lsp.util.buf_versions[bufnr]
  for _ = 1, 3 do
    cue(grown_at(version2, col + 1))
  end
  cue({ delayMs = 0 })
  wait_for(function()
    return count_log(INLINE) >= before + 2
  end, 3000)
  sleep(400)
  check(
    count_log(INLINE) == before + 2 and inkling.get_suggestion() == '_mock_grown',
    'notifications during a request in flight are coalesced into one re-ask',
    ('%d requests (1 typed + re-asks), suggestion %s'):format(count_log(INLINE) - before, vim.inspect(inkling.get_suggestion()))
  )
  cue({ suffix = '' })
  leave_insert()

  -- 9. inkling/cursor: once, 200 ms after the cursor stops moving, where it stopped; not in visual mode.
  sleep(400)
  local notes0 = count_log('inkling/cursor')
  local t0 = vim.loop.now()
  feed('0')
  sleep(50)
  feed('w')
  sleep(50)
  feed('w')
  sleep(50)
  -- (On a machine so busy that the moves were 200 ms apart, a note in between is right.)
  local quick = vim.loop.now() - t0 < 190
  if quick then
    check(count_log('inkling/cursor') == notes0, 'no inkling/cursor while the cursor keeps moving', vim.inspect(log_of('inkling/cursor')))
  else
    skip('no inkling/cursor while the cursor keeps moving', 'the moves took too long')
  end
  local rest = api.nvim_win_get_cursor(0)
  local function rested(m)
    return m.params.position.line == rest[1] - 1 and m.params.position.character == rest[2]
  end
  wait_for(function()
    local l = log_of('inkling/cursor')
    return #l > notes0 and rested(l[#l])
  end, 2000)
  sleep(400)
  local notes = { unpack(log_of('inkling/cursor'), notes0 + 1) }
  local last = notes[#notes]
  check(
    #notes == (quick and 1 or #notes) and last ~= nil and last.params.textDocument.uri == uri and rested(last) and rest[2] > 0,
    'inkling/cursor is sent once after the debounce, at the resting cursor',
    'cursor ' .. vim.inspect(rest) .. ', sent ' .. vim.inspect(notes)
  )
  feed('v')
  feed('b')
  sleep(500)
  check(count_log('inkling/cursor') == notes0 + #notes, 'no inkling/cursor with a visual selection', vim.inspect(log_of('inkling/cursor')))
  feed('<Esc>')
  sleep(30)

  -- 10. Toggle off: the server hears enable=false, and typing shows nothing.
  vim.cmd('InklingToggle')
  sleep(50)
  local conf
  for _, m in ipairs(read_log()) do
    if m.method == 'workspace/didChangeConfiguration' then
      conf = m.params
    end
  end
  check(conf and conf.settings and conf.settings.inkling and conf.settings.inkling.enable == false and conf.settings.inkling.model == '/models/test.gguf', ':InklingToggle pushes enable=false in settings.inkling', vim.inspect(conf))
  feed('o')
  type_chars('fib')
  sleep(200)
  check(not inkling.is_visible(), 'no suggestion while toggled off', vim.inspect(inkling.get_suggestion()))
  leave_insert()
  vim.cmd('InklingToggle')
  feed('A')
  type_chars('o')
  check(wait_for(inkling.is_visible, 3000) and inkling.get_suggestion() == '_mock', 'suggestions come back when toggled on', vim.inspect(inkling.get_suggestion()))
  leave_insert()

  -- 11. Restart: a new server process attaches to the buffer.
  local old = client_id(bufnr)
  vim.cmd('InklingRestart')
  local restarted = wait_for(function()
    local id = client_id(bufnr)
    return id and id ~= old and inkling.status().state == 'ready'
  end, 10000)
  check(restarted, ':InklingRestart starts a new server and re-attaches', vim.inspect(inkling.status()))

  finish()
end

co = coroutine.create(test_body)
-- A hard stop in case something hangs.
vim.defer_fn(function()
  not_ok('test run', 'timed out')
  finish()
end, timeout_ms * 3 + 60000)
vim.schedule(resume)
