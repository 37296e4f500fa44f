-- The fallback path's language-server client (Neovim 0.7 to 0.11): starts one `inkling lsp`
-- for the whole session, attaches it to file buffers and stops it. (On 0.12+ with `native`,
-- vim.lsp.enable manages the client instead; see native.lua.)
local api = vim.api
local config = require('inkling.config')
local ghost = require('inkling.suggestion.ghost')
local handlers = require('inkling.handlers')
local live = require('inkling.live')
local state = require('inkling.state')
local status = require('inkling.status')
local util = require('inkling.util')

local has = util.has
local client_call = util.client_call

local M = {}

--- The running client, or nil.
function M.get()
  if not state.client_id then
    return nil
  end
  local client = vim.lsp.get_client_by_id(state.client_id)
  if not client or client_call(client, 'is_stopped') then
    return nil
  end
  return client
end
local get_client = M.get

--- Whether inkling should attach to `bufnr`: a normal file buffer of a configured filetype.
function M.wanted(bufnr)
  if not api.nvim_buf_is_valid(bufnr) or vim.bo[bufnr].buftype ~= '' or api.nvim_buf_get_name(bufnr) == '' then
    return false
  end
  local fts = config.options.filetypes
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
    cmd = config.server_cmd(),
    root_dir = vim.fn.getcwd(),
    init_options = vim.deepcopy(config.server_options()),
    capabilities = caps,
    handlers = handlers,
    on_attach = function(_, bufnr)
      live.attach(bufnr)
    end,
    on_init = function()
      if state.status.state == 'starting' then
        state.status = { state = 'loading', message = nil }
      end
    end,
    on_exit = function(code, signal, client_id)
      if state.client_id == client_id then
        state.client_id = nil
        vim.schedule(function()
          ghost.clear()
          if code ~= 0 and state.status.state ~= 'stopped' then
            status.set('error', ('server exited with code %d'):format(code))
          else
            status.set('stopped', nil)
          end
        end)
      end
    end,
  }
end

--- Start the server if needed and attach it to `bufnr` (a buffer M.wanted() accepts).
function M.attach(bufnr)
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
    status.set('error', ('`%s` not found: put inkling on PATH or set cmd / g:inkling_server_path'):format(cfg.cmd[1]))
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

--- The buffers the running client is attached to.
function M.attached_buffers()
  local bufs = {}
  local client = get_client()
  for _, b in ipairs(api.nvim_list_bufs()) do
    if client and vim.lsp.buf_is_attached(b, client.id) then
      bufs[#bufs + 1] = b
    end
  end
  return bufs
end

--- Stop the server and mark the status stopped.
function M.stop()
  local client = get_client()
  state.client_id = nil
  state.status = { state = 'stopped', message = nil }
  if client then
    client_call(client, 'stop')
  end
end

--- Stop the server without touching the state (Neovim is exiting).
function M.stop_on_exit()
  local client = get_client()
  if client then
    client_call(client, 'stop')
  end
end

return M
