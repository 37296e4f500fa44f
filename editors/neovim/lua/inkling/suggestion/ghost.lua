-- Ghost text of the fallback client (Neovim 0.7 to 0.11): draws the suggestion at the cursor
-- with extmarks (first line inline or at the end of the line, the rest as virtual lines) and
-- clears it.
local api = vim.api
local config = require('inkling.config')
local state = require('inkling.state')
local util = require('inkling.util')

local M = {}

-- The extmark namespace the ghost text is drawn in.
M.ns = api.nvim_create_namespace('inkling')
local ns = M.ns

--- Forget the current suggestion and erase its ghost text.
function M.clear()
  local s = state.suggestion
  state.suggestion = nil
  if s and api.nvim_buf_is_valid(s.bufnr) then
    api.nvim_buf_clear_namespace(s.bufnr, ns, 0, -1)
  end
end

--- Draw suggestion `s` (see suggestion/init.lua) in its buffer, replacing what was drawn.
function M.render(s)
  api.nvim_buf_clear_namespace(s.bufnr, ns, 0, -1)
  local ts = vim.bo[s.bufnr].tabstop
  local function expand(l)
    return (l:gsub('\t', string.rep(' ', ts)))
  end
  local lines = util.split_lines(s.ghost)
  local hl = config.options.hl_group
  local line = api.nvim_buf_get_lines(s.bufnr, s.row, s.row + 1, false)[1] or ''
  local opts = { virt_text = { { expand(lines[1]), hl } }, hl_mode = 'combine' }
  if util.has('0.10') then
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

return M
