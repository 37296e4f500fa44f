import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { lspInlineTriggerKind } from '../lsp';

describe('lspInlineTriggerKind', () => {
  it('maps VS Code Invoke (0) to LSP Invoked (1) and Automatic (1) to LSP Automatic (2)', () => {
    assert.equal(lspInlineTriggerKind(0), 1);
    assert.equal(lspInlineTriggerKind(1), 2);
  });
});
