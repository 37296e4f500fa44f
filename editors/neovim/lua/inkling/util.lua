-- Small compatibility helpers (Neovim 0.7 .. 0.12): version checks, LSP offset encodings and
-- the client method-call style.
local M = {}

function M.has(v)
  return vim.fn.has('nvim-' .. v) == 1
end
local has = M.has

function M.split_lines(s)
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
function M.char_index(line, byte_col, enc)
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
function M.byte_index(line, character, enc)
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
function M.client_call(client, name, ...)
  if has('0.11') then
    return client[name](client, ...)
  end
  return client[name](...)
end

function M.offset_encoding(client)
  return client.offset_encoding or 'utf-16'
end

return M
