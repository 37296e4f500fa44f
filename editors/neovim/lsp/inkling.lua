-- inkling for vim.lsp.config / vim.lsp.enable (Neovim 0.11+):
--
--   vim.lsp.enable('inkling')                                  -- uses this file from 'runtimepath'
--   vim.lsp.config('inkling', { init_options = { model = '/path/to/model.gguf' } })   -- optional
--
-- On Neovim 0.12+ the suggestion shows as ghost text through vim.lsp.inline_completion; map a
-- key to vim.lsp.inline_completion.get() to accept it (see editors/neovim/README.md). On 0.11 the
-- server still serves textDocument/completion (one item with the whole suggestion); for ghost
-- text there, use require('inkling').setup() instead.

local ok, inkling = pcall(require, 'inkling')

---@type vim.lsp.Config
return {
  cmd = { vim.g.inkling_server_path or 'inkling', 'lsp' },
  -- No `filetypes`: every normal file buffer. No root markers: one server (one loaded model)
  -- for the whole session, whatever the project.
  reuse_client = function(client, config)
    return client.name == config.name
  end,
  -- Server options, camelCase, all optional: model, draftModel, threads, contextSize, maxTokens,
  -- enable, debounceMs, speculation ('off'|'lookup'|'draft'|'auto'), disabledLanguages,
  -- streaming, answerDeadlineMs, warmCursor.
  init_options = {},
  handlers = ok and inkling.handlers or nil,
  on_attach = function(client, bufnr)
    if ok then
      require('inkling.live').attach(bufnr) -- inkling/cursor while the cursor moves here
    end
    if vim.lsp.inline_completion and vim.g.inkling_inline_completion ~= false then
      local supports = client.supports_method and client:supports_method('textDocument/inlineCompletion', bufnr)
      if supports then
        vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
      end
    end
  end,
}
