-- Server status: the inkling/status, inkling/completionStats and model-load $/progress handlers
-- (used by both clients and by lsp/inkling.lua on 0.11+), and the status() and statusline()
-- views of what they record.
local api = vim.api
local state = require('inkling.state')

local M = {}

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
M.set = set_status

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
function M.get()
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

return M
