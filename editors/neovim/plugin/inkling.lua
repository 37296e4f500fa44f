-- User commands for inkling. Nothing starts until require('inkling').setup() is called
-- (on Neovim 0.11+ you can instead use lsp/inkling.lua with vim.lsp.enable('inkling')).
if vim.g.loaded_inkling then
  return
end
vim.g.loaded_inkling = true

local function cmd(name, fn, desc)
  vim.api.nvim_create_user_command(name, fn, { desc = desc })
end

cmd('InklingToggle', function()
  require('inkling').toggle()
end, 'inkling: turn completions on/off')

cmd('InklingRestart', function()
  require('inkling').restart()
end, 'inkling: restart the server')

cmd('InklingStatus', function()
  local s = require('inkling').status()
  local msg = ('inkling: %s%s%s'):format(
    s.state,
    s.progress and (' ' .. s.progress .. '%') or '',
    s.message and (' - ' .. s.message) or ''
  )
  if type(s.stats) == 'table' then
    msg = msg
      .. ('\nlast completion: %s ms, %s, %s tokens'):format(
        tostring(s.stats.latencyMs),
        tostring(s.stats.source),
        tostring(s.stats.generatedTokens)
      )
  end
  print(msg)
end, 'inkling: show the server state and the last completion')
