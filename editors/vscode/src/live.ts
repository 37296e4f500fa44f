// Follow-ups while the user edits, between the server's two custom notifications and the editor:
// re-asking when the server says the suggestion on screen has grown (`inkling/suggestionGrown`,
// server -> client), and telling the server where the cursor came to rest (`inkling/cursor`,
// client -> server) so it can evaluate that spot's prompt ahead of time.
// No `vscode` import here: this module is unit-tested under plain node.

export const SUGGESTION_GROWN = 'inkling/suggestionGrown';
export const CURSOR = 'inkling/cursor';

/** How long the cursor must rest before `inkling/cursor` is sent. */
export const CURSOR_DEBOUNCE_MS = 200;

/**
 * How long a re-ask counts as a request in flight before its request shows up (VS Code runs
 * the trigger command asynchronously, or not at all when inline suggestions are off).
 */
export const REASK_GRACE_MS = 1000;

export interface LspPosition {
  line: number;
  character: number;
}

/** Where the user is: the active editor's document (as the server knows it) and cursor. */
export interface Spot {
  uri: string;
  version: number;
  position: LspPosition;
  /** One cursor, nothing selected. */
  emptySelection: boolean;
}

export interface SuggestionGrownParams {
  textDocument: { uri: string; version: number };
  position: LspPosition;
  chars: number;
  final: boolean;
}

export interface CursorParams {
  textDocument: { uri: string };
  position: LspPosition;
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

function asPosition(v: unknown): LspPosition | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const p = v as Record<string, unknown>;
  return isInt(p.line) && isInt(p.character) ? { line: p.line, character: p.character } : undefined;
}

/** The params of `inkling/suggestionGrown`, or undefined when malformed. */
export function parseSuggestionGrown(params: unknown): SuggestionGrownParams | undefined {
  if (typeof params !== 'object' || params === null) return undefined;
  const p = params as Record<string, unknown>;
  const doc = p.textDocument as Record<string, unknown> | undefined;
  if (typeof doc !== 'object' || doc === null || typeof doc.uri !== 'string' || !isInt(doc.version)) return undefined;
  const position = asPosition(p.position);
  if (position === undefined) return undefined;
  return {
    textDocument: { uri: doc.uri, version: doc.version },
    position,
    chars: isInt(p.chars) ? p.chars : 0,
    final: p.final === true,
  };
}

/** Whether the grown suggestion is the one the user is looking at: same document, version and cursor, no selection. */
export function grownApplies(grown: SuggestionGrownParams, spot: Spot | undefined): boolean {
  return (
    spot !== undefined &&
    spot.emptySelection &&
    spot.uri === grown.textDocument.uri &&
    spot.version === grown.textDocument.version &&
    spot.position.line === grown.position.line &&
    spot.position.character === grown.position.character
  );
}

export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const realTimers: Timers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/**
 * Re-asks for the inline completion when `inkling/suggestionGrown` describes what is on screen:
 * at most once per notification, and once for all the notifications that arrive while a
 * request is in flight (checked again when it ends).
 */
export class Reasker {
  private inFlight = 0;
  private pending: SuggestionGrownParams[] = [];
  private grace: unknown;
  private epoch = 0; // bumped by reset(), so that requests of an old client end harmlessly

  constructor(
    private readonly spot: () => Spot | undefined,
    private readonly reask: () => void,
    private readonly timers: Timers = realTimers,
    private readonly graceMs = REASK_GRACE_MS,
  ) {}

  /** An `inkling/suggestionGrown` notification arrived. */
  grown(params: unknown): void {
    const g = parseSuggestionGrown(params);
    if (g === undefined) return;
    if (this.busy()) {
      this.pending.push(g);
      if (this.pending.length > 8) this.pending.shift();
      return;
    }
    this.fire([g]);
  }

  /** An inline completion request is being sent; pass the result to requestEnded(). */
  requestStarted(): number {
    if (this.grace !== undefined) {
      // The re-ask's own request: it takes over from the grace period.
      this.timers.clear(this.grace);
      this.grace = undefined;
    }
    this.inFlight++;
    return this.epoch;
  }

  /** An inline completion request got its answer (or failed, or was cancelled). */
  requestEnded(started: number): void {
    if (started !== this.epoch) return; // sent before reset()
    this.inFlight = Math.max(0, this.inFlight - 1);
    this.flush();
  }

  /** Forget everything (the server restarted). */
  reset(): void {
    if (this.grace !== undefined) this.timers.clear(this.grace);
    this.grace = undefined;
    this.inFlight = 0;
    this.pending = [];
    this.epoch++;
  }

  private busy(): boolean {
    return this.inFlight > 0 || this.grace !== undefined;
  }

  private flush(): void {
    if (this.busy() || this.pending.length === 0) return;
    const pending = this.pending;
    this.pending = [];
    this.fire(pending);
  }

  private fire(candidates: SuggestionGrownParams[]): void {
    const spot = this.spot();
    if (!candidates.some((g) => grownApplies(g, spot))) return;
    this.grace = this.timers.set(() => {
      this.grace = undefined;
      this.flush();
    }, this.graceMs);
    this.reask();
  }
}

function spotKey(s: Spot): string {
  return `${s.version}:${s.position.line}:${s.position.character}:${s.uri}`;
}

/**
 * Sends `inkling/cursor` once the cursor has rested for `delayMs`, with an empty selection,
 * unless that spot was just sent or an inline completion was already asked for there.
 */
export class CursorWarmer {
  private timer: unknown;
  private lastSent: string | undefined;
  private lastAsked: string | undefined;

  /** `spot()` returns undefined where nothing should be sent (not a server document, warming off, ...). */
  constructor(
    private readonly spot: () => Spot | undefined,
    private readonly send: (params: CursorParams) => void,
    private readonly timers: Timers = realTimers,
    private readonly delayMs = CURSOR_DEBOUNCE_MS,
  ) {}

  /** The cursor or selection moved (or another editor became active). */
  moved(): void {
    this.cancel();
    this.timer = this.timers.set(() => {
      this.timer = undefined;
      this.fire();
    }, this.delayMs);
  }

  /** An inline completion request is being sent for `spot`: no need to warm it as well. */
  asked(spot: Spot): void {
    this.lastAsked = spotKey(spot);
  }

  cancel(): void {
    if (this.timer !== undefined) this.timers.clear(this.timer);
    this.timer = undefined;
  }

  /** Forget what was sent (the server restarted). */
  reset(): void {
    this.cancel();
    this.lastSent = undefined;
    this.lastAsked = undefined;
  }

  private fire(): void {
    const s = this.spot();
    if (s === undefined || !s.emptySelection) return;
    const key = spotKey(s);
    if (key === this.lastSent || key === this.lastAsked) return;
    this.lastSent = key;
    this.send({ textDocument: { uri: s.uri }, position: { line: s.position.line, character: s.position.character } });
  }
}
