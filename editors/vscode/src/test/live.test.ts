import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { CursorParams, CursorWarmer, Reasker, Spot, Timers, grownApplies, parseSuggestionGrown } from '../live';

/** Timers run by hand: `run()` fires the ones due, in order. */
class FakeTimers implements Timers {
  now = 0;
  private next = 1;
  private due = new Map<number, { at: number; fn: () => void }>();
  set(fn: () => void, ms: number): unknown {
    const id = this.next++;
    this.due.set(id, { at: this.now + ms, fn });
    return id;
  }
  clear(handle: unknown): void {
    this.due.delete(handle as number);
  }
  advance(ms: number): void {
    this.now += ms;
    for (;;) {
      const ready = [...this.due.entries()].filter(([, t]) => t.at <= this.now).sort((a, b) => a[1].at - b[1].at);
      if (ready.length === 0) return;
      const [id, t] = ready[0];
      this.due.delete(id);
      t.fn();
    }
  }
  get pending(): number {
    return this.due.size;
  }
}

const URI = 'file:///w/a.py';
const spotAt = (version: number, line: number, character: number, emptySelection = true): Spot => ({
  uri: URI,
  version,
  position: { line, character },
  emptySelection,
});
const grown = (version: number, line: number, character: number, uri = URI) => ({
  textDocument: { uri, version },
  position: { line, character },
  chars: 12,
  final: false,
});

describe('inkling/suggestionGrown params', () => {
  it('parses the notification', () => {
    assert.deepEqual(parseSuggestionGrown({ ...grown(3, 1, 4), final: true }), { ...grown(3, 1, 4), final: true });
  });
  it('rejects malformed params', () => {
    assert.equal(parseSuggestionGrown(null), undefined);
    assert.equal(parseSuggestionGrown({ textDocument: { uri: URI }, position: { line: 0, character: 0 } }), undefined);
    assert.equal(parseSuggestionGrown({ textDocument: { uri: URI, version: 1 }, position: { line: 0 } }), undefined);
    assert.equal(parseSuggestionGrown({ textDocument: { uri: 3, version: 1 }, position: { line: 0, character: 0 } }), undefined);
  });
  it('applies only to the same document, version and cursor, with nothing selected', () => {
    const g = parseSuggestionGrown(grown(3, 1, 4))!;
    assert.ok(grownApplies(g, spotAt(3, 1, 4)));
    assert.ok(!grownApplies(g, spotAt(4, 1, 4)), 'newer version');
    assert.ok(!grownApplies(g, spotAt(3, 1, 5)), 'cursor moved');
    assert.ok(!grownApplies(g, spotAt(3, 2, 4)), 'other line');
    assert.ok(!grownApplies(g, spotAt(3, 1, 4, false)), 'selection');
    assert.ok(!grownApplies(g, { ...spotAt(3, 1, 4), uri: 'file:///w/b.py' }), 'other document');
    assert.ok(!grownApplies(g, undefined), 'no editor');
  });
});

describe('Reasker', () => {
  function setup(spot: Spot | undefined) {
    const timers = new FakeTimers();
    const calls: number[] = [];
    const state = { spot };
    const r = new Reasker(() => state.spot, () => calls.push(timers.now), timers, 1000);
    return { r, calls, timers, state };
  }

  it('re-asks once for a notification that matches', () => {
    const { r, calls } = setup(spotAt(3, 1, 4));
    r.grown(grown(3, 1, 4));
    assert.equal(calls.length, 1);
  });

  it('ignores a stale version, another position or malformed params', () => {
    const { r, calls } = setup(spotAt(3, 1, 4));
    r.grown(grown(2, 1, 4));
    r.grown(grown(3, 1, 3));
    r.grown({ nonsense: true });
    assert.equal(calls.length, 0);
  });

  it('coalesces the notifications that arrive while a request is in flight into one re-ask', () => {
    const { r, calls } = setup(spotAt(3, 1, 4));
    const started = r.requestStarted();
    r.grown(grown(3, 1, 4));
    r.grown(grown(3, 1, 4));
    r.grown(grown(3, 1, 4));
    assert.equal(calls.length, 0, 'waits for the request in flight');
    r.requestEnded(started);
    assert.equal(calls.length, 1);
  });

  it('checks pending notifications again when the request ends', () => {
    const { r, calls, state } = setup(spotAt(3, 1, 4));
    const started = r.requestStarted();
    r.grown(grown(3, 1, 4));
    state.spot = spotAt(4, 1, 5); // the user typed meanwhile
    r.requestEnded(started);
    assert.equal(calls.length, 0);
  });

  it('treats its own re-ask as in flight until the request shows up', () => {
    const { r, calls, timers } = setup(spotAt(3, 1, 4));
    r.grown(grown(3, 1, 4));
    r.grown(grown(3, 1, 4)); // before VS Code has sent the re-ask's request
    assert.equal(calls.length, 1);
    r.requestEnded(r.requestStarted());
    assert.equal(calls.length, 2, 'the second notification re-asks after the first re-ask');
    // A re-ask whose request never comes (inline suggestions off) frees the gate after the grace period.
    r.grown(grown(3, 1, 4)); // pending behind the second re-ask's grace period
    assert.equal(calls.length, 2);
    timers.advance(1000);
    assert.equal(calls.length, 3);
    timers.advance(1000);
    assert.equal(calls.length, 3);
  });

  it('forgets everything on reset', () => {
    const { r, calls } = setup(spotAt(3, 1, 4));
    const old = r.requestStarted();
    r.grown(grown(3, 1, 4));
    r.reset();
    assert.equal(calls.length, 0);
    const current = r.requestStarted();
    r.requestEnded(old); // the old client's request ending late does not end the new one
    r.grown(grown(3, 1, 4));
    assert.equal(calls.length, 0, 'still waiting for the new request');
    r.requestEnded(current);
    assert.equal(calls.length, 1);
  });
});

describe('CursorWarmer', () => {
  function setup(spot: Spot | undefined) {
    const timers = new FakeTimers();
    const sent: CursorParams[] = [];
    const state = { spot };
    const w = new CursorWarmer(() => state.spot, (p) => sent.push(p), timers, 200);
    return { w, sent, timers, state };
  }

  it('sends once, 200 ms after the cursor stops moving', () => {
    const { w, sent, timers, state } = setup(spotAt(1, 0, 0));
    w.moved();
    timers.advance(150);
    state.spot = spotAt(1, 2, 5);
    w.moved();
    timers.advance(150);
    assert.equal(sent.length, 0, 'still moving');
    timers.advance(50);
    assert.deepEqual(sent, [{ textDocument: { uri: URI }, position: { line: 2, character: 5 } }]);
    timers.advance(1000);
    assert.equal(sent.length, 1);
  });

  it('skips a selection, no spot, the spot just sent and the spot just asked for', () => {
    const { w, sent, timers, state } = setup(spotAt(1, 0, 0, false));
    w.moved();
    timers.advance(200);
    state.spot = undefined;
    w.moved();
    timers.advance(200);
    assert.equal(sent.length, 0);
    state.spot = spotAt(1, 3, 1);
    w.moved();
    timers.advance(200);
    w.moved(); // e.g. a focus change without a move
    timers.advance(200);
    assert.equal(sent.length, 1);
    state.spot = spotAt(2, 3, 2);
    w.asked(spotAt(2, 3, 2));
    w.moved();
    timers.advance(200);
    assert.equal(sent.length, 1, 'an inline completion request already covers it');
  });

  it('cancel() drops the pending send', () => {
    const { w, sent, timers } = setup(spotAt(1, 0, 0));
    w.moved();
    w.cancel();
    timers.advance(500);
    assert.equal(sent.length, 0);
    assert.equal(timers.pending, 0);
  });
});
