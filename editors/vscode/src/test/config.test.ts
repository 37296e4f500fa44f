import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { didChangeConfigurationParams, expandHome, serverCommand, toServerOptions } from '../config';

describe('toServerOptions', () => {
  it('maps the defaults to enable, disabledLanguages and the values the server would pick anyway', () => {
    const raw = {
      serverPath: '',
      enable: true,
      model: '',
      draftModel: '',
      threads: 0,
      contextSize: 0,
      maxTokens: 0,
      debounceMs: -1,
      speculation: 'auto',
      disabledLanguages: [],
      streaming: true,
      answerDeadlineMs: 80,
      warmCursor: true,
    };
    assert.deepEqual(toServerOptions(raw), {
      enable: true,
      speculation: 'auto',
      disabledLanguages: [],
      streaming: true,
      answerDeadlineMs: 80,
      warmCursor: true,
    });
  });

  it('maps every setting to its camelCase server key', () => {
    const opts = toServerOptions(
      {
        serverPath: '/opt/inkling',
        enable: false,
        model: '/m/big.gguf',
        draftModel: '/m/small.gguf',
        threads: 4,
        contextSize: 4096,
        maxTokens: 64,
        debounceMs: 0,
        speculation: 'draft',
        disabledLanguages: ['markdown', 'plaintext'],
        streaming: false,
        answerDeadlineMs: 0,
        warmCursor: false,
      },
      '/home/u',
    );
    assert.deepEqual(opts, {
      model: '/m/big.gguf',
      draftModel: '/m/small.gguf',
      threads: 4,
      contextSize: 4096,
      maxTokens: 64,
      enable: false,
      debounceMs: 0,
      speculation: 'draft',
      disabledLanguages: ['markdown', 'plaintext'],
      streaming: false,
      answerDeadlineMs: 0,
      warmCursor: false,
    });
    assert.ok(!('serverPath' in opts), 'serverPath is a client setting, not a server option');
  });

  it('expands ~ in model paths and trims them', () => {
    const opts = toServerOptions({ model: '  ~/models/a.gguf ', draftModel: '~' }, '/home/u/');
    assert.equal(opts.model, '/home/u/models/a.gguf');
    assert.equal(opts.draftModel, '/home/u/');
  });

  it('drops malformed values instead of sending them', () => {
    const opts = toServerOptions({
      enable: 'yes',
      model: 42,
      threads: 2.5,
      contextSize: -1,
      maxTokens: '64',
      debounceMs: -5,
      speculation: 'fast',
      disabledLanguages: ['go', '', 'go', 3, ' rust '],
      streaming: 'no',
      answerDeadlineMs: -1,
      warmCursor: 1,
    });
    assert.deepEqual(opts, { enable: true, disabledLanguages: ['go', 'rust'] });
  });

  it('treats a missing settings object as all defaults', () => {
    assert.deepEqual(toServerOptions({}), { enable: true, disabledLanguages: [] });
  });

  it('wraps options for workspace/didChangeConfiguration', () => {
    assert.deepEqual(didChangeConfigurationParams({ enable: false }), { settings: { inkling: { enable: false } } });
  });
});

describe('expandHome', () => {
  it('leaves other paths alone', () => {
    assert.equal(expandHome('/abs/x', '/h'), '/abs/x');
    assert.equal(expandHome('~user/x', '/h'), '~user/x');
    assert.equal(expandHome('~/x', ''), '~/x');
  });
});

describe('serverCommand', () => {
  it('uses inkling from PATH when no path is set', () => {
    assert.deepEqual(serverCommand(''), { command: 'inkling', args: ['lsp'] });
    assert.deepEqual(serverCommand(undefined), { command: 'inkling', args: ['lsp'] });
  });
  it('uses the configured path, with ~ expanded', () => {
    assert.deepEqual(serverCommand('~/bin/inkling', '/home/u'), { command: '/home/u/bin/inkling', args: ['lsp'] });
  });
});
