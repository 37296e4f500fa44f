// Small protocol fix-ups between VS Code and LSP. No `vscode` import: unit-tested under node.

/**
 * vscode.InlineCompletionTriggerKind (Invoke = 0, Automatic = 1) -> LSP 3.18
 * InlineCompletionTriggerKind (Invoked = 1, Automatic = 2).
 * vscode-languageclient 9.0.1 copies the VS Code value into the request unchanged
 * (10.x maps it), so the extension maps it in middleware.
 */
export function lspInlineTriggerKind(vscodeKind: number): 1 | 2 {
  return vscodeKind === 0 ? 1 : 2;
}
