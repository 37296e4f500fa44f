// Checks package.json against the code: every setting is mapped or known client-only,
// and the contributed commands are the ones extension.ts registers.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { RAW_SETTING_KEYS, SPECULATION_MODES } from '../config';

const root = join(__dirname, '..', '..');
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const extensionSource = readFileSync(join(root, 'src', 'extension.ts'), 'utf8');
const CLIENT_ONLY = ['showInSuggestWidget', 'trace.server'];

describe('package.json', () => {
  const props: Record<string, { default?: unknown; enum?: string[] }> = manifest.contributes.configuration.properties;
  const keys = Object.keys(props).map((k) => k.replace(/^inkling\./, ''));

  it('declares exactly the settings the extension reads', () => {
    assert.deepEqual([...keys].sort(), [...RAW_SETTING_KEYS, ...CLIENT_ONLY].sort());
  });

  it('offers the server speculation modes', () => {
    assert.deepEqual([...(props['inkling.speculation'].enum ?? [])].sort(), [...SPECULATION_MODES].sort());
  });

  it('registers every contributed command', () => {
    for (const c of manifest.contributes.commands as { command: string }[]) {
      assert.ok(extensionSource.includes(`registerCommand('${c.command}'`), `${c.command} is not registered`);
    }
    for (const c of ['inkling.toggle', 'inkling.restart']) {
      assert.ok(manifest.contributes.commands.some((x: { command: string }) => x.command === c), `${c} missing`);
    }
  });

  it('points main at the esbuild bundle', () => {
    assert.equal(manifest.main, './dist/extension.js');
  });
});
