import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import {
  StatusEvent,
  StatusModel,
  formatLatency,
  formatStatus,
  initialStatus,
  parseCompletionStats,
  parseStatusParams,
  reduceStatus,
} from '../status';

function run(...events: StatusEvent[]): StatusModel {
  return events.reduce(reduceStatus, initialStatus);
}

describe('status parsing', () => {
  it('accepts the inkling/status shapes', () => {
    assert.deepEqual(parseStatusParams({ state: 'ready', message: null }), { state: 'ready', message: null });
    assert.deepEqual(parseStatusParams({ state: 'error', message: 'no model' }), { state: 'error', message: 'no model' });
    assert.deepEqual(parseStatusParams({ state: 'disabled' }), { state: 'disabled', message: null });
  });
  it('rejects unknown states', () => {
    assert.equal(parseStatusParams({ state: 'sleeping' }), undefined);
    assert.equal(parseStatusParams(null), undefined);
    assert.equal(parseStatusParams('ready'), undefined);
  });
  it('accepts inkling/completionStats', () => {
    assert.deepEqual(parseCompletionStats({ latencyMs: 12.5, source: 'prefetch', generatedTokens: 3 }), {
      latencyMs: 12.5,
      source: 'prefetch',
      generatedTokens: 3,
    });
    assert.equal(parseCompletionStats({ latencyMs: -1, source: 'model', generatedTokens: 1 }), undefined);
    assert.equal(parseCompletionStats({ latencyMs: 5, source: 'cache', generatedTokens: 1 }), undefined);
  });
});

describe('reduceStatus', () => {
  it('follows the model load: progress, then ready', () => {
    let m = run({ kind: 'status', params: { state: 'loading', message: null } });
    assert.equal(m.state, 'loading');
    m = reduceStatus(m, { kind: 'progress', value: { kind: 'begin', title: 'Loading model', percentage: 0 } });
    m = reduceStatus(m, { kind: 'progress', value: { kind: 'report', message: 'qwen 0.5b', percentage: 41.6 } });
    assert.equal(m.progress, 42);
    assert.equal(m.message, 'qwen 0.5b');
    assert.equal(formatStatus(m).text, '$(loading~spin) inkling 42%');
    m = reduceStatus(m, { kind: 'progress', value: { kind: 'end' } });
    m = reduceStatus(m, { kind: 'status', params: { state: 'ready', message: null } });
    assert.equal(m.state, 'ready');
    assert.equal(m.progress, null);
    assert.equal(formatStatus(m).text, '$(check) inkling');
  });

  it('progress arriving before the first status still reads as loading', () => {
    const m = run({ kind: 'starting' }, { kind: 'progress', value: { kind: 'begin', title: 'x', percentage: 150 } });
    assert.equal(m.state, 'loading');
    assert.equal(m.progress, 100);
  });

  it('a late progress report does not turn ready back into loading', () => {
    const m = run(
      { kind: 'status', params: { state: 'ready', message: null } },
      { kind: 'progress', value: { kind: 'report', percentage: 99 } },
    );
    assert.equal(m.state, 'ready');
  });

  it('ignores malformed notifications', () => {
    const m = run({ kind: 'status', params: { state: 'ready' } }, { kind: 'status', params: 7 }, { kind: 'stats', params: {} });
    assert.equal(m.state, 'ready');
    assert.equal(m.last, null);
  });

  it('keeps the last completion across restarts', () => {
    const m = run(
      { kind: 'stats', params: { latencyMs: 80, source: 'model', generatedTokens: 9 } },
      { kind: 'stopped' },
      { kind: 'starting' },
    );
    assert.equal(m.state, 'starting');
    assert.equal(m.last?.latencyMs, 80);
  });
});

describe('formatStatus', () => {
  it('shows the last latency and source when ready', () => {
    const m = run(
      { kind: 'status', params: { state: 'ready', message: null } },
      { kind: 'stats', params: { latencyMs: 123.4, source: 'model', generatedTokens: 17 } },
    );
    const v = formatStatus(m);
    assert.equal(v.text, '$(check) inkling 123 ms · model');
    assert.equal(v.severity, 'normal');
    assert.match(v.tooltip, /Last completion: 123 ms, model, 17 tokens generated/);
  });

  it('labels the other sources', () => {
    const ready = run({ kind: 'status', params: { state: 'ready', message: null } });
    const withSource = (source: string, latencyMs = 2) =>
      formatStatus(reduceStatus(ready, { kind: 'stats', params: { latencyMs, source, generatedTokens: 1 } }));
    assert.equal(withSource('typed-through').text, '$(check) inkling 2 ms · typed-through');
    assert.equal(withSource('prefetch').text, '$(check) inkling 2 ms · prefetch');
    assert.equal(withSource('none', 1500).text, '$(check) inkling 1.5 s · no suggestion');
    assert.match(withSource('prefetch').tooltip, /1 token generated/);
  });

  it('shows errors with their message', () => {
    const v = formatStatus(run({ kind: 'status', params: { state: 'error', message: 'model not found: /x.gguf' } }));
    assert.equal(v.text, '$(error) inkling');
    assert.equal(v.severity, 'error');
    assert.match(v.tooltip, /model not found: \/x\.gguf/);
  });

  it('shows a client-side start failure as an error', () => {
    const v = formatStatus(run({ kind: 'clientError', message: 'spawn inkling ENOENT' }));
    assert.equal(v.severity, 'error');
    assert.match(v.tooltip, /ENOENT/);
  });

  it('shows disabled, starting, stopped and plain loading', () => {
    assert.equal(formatStatus(run({ kind: 'status', params: { state: 'disabled', message: null } })).text, '$(circle-slash) inkling');
    assert.equal(formatStatus(initialStatus).text, '$(sync~spin) inkling');
    assert.equal(formatStatus(run({ kind: 'stopped' })).severity, 'warning');
    assert.equal(formatStatus(run({ kind: 'status', params: { state: 'loading', message: null } })).text, '$(loading~spin) inkling');
  });
});

describe('formatLatency', () => {
  it('rounds milliseconds and switches to seconds at 1000', () => {
    assert.equal(formatLatency(0.4), '0 ms');
    assert.equal(formatLatency(999.4), '999 ms');
    assert.equal(formatLatency(1000), '1.0 s');
    assert.equal(formatLatency(12345), '12.3 s');
  });
});
