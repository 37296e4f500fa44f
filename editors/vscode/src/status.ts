// Pure status-bar model: folds server events into a state and formats it.
// No `vscode` import here: this module is unit-tested under plain node.

export type ServerState = 'starting' | 'loading' | 'ready' | 'error' | 'disabled' | 'stopped';

export type CompletionSource = 'model' | 'typed-through' | 'prefetch' | 'none';

export interface CompletionStats {
  latencyMs: number;
  source: CompletionSource;
  generatedTokens: number;
}

export interface StatusModel {
  state: ServerState;
  message: string | null;
  /** Model-load percentage (0-100) while a `inkling/load` progress is running. */
  progress: number | null;
  last: CompletionStats | null;
}

export const LOAD_PROGRESS_TOKEN = 'inkling/load';

export const initialStatus: StatusModel = { state: 'starting', message: null, progress: null, last: null };

/** Work-done progress values as in LSP `$/progress`. */
export type WorkDoneProgressValue =
  | { kind: 'begin'; title?: string; message?: string; percentage?: number }
  | { kind: 'report'; message?: string; percentage?: number }
  | { kind: 'end'; message?: string };

export type StatusEvent =
  | { kind: 'starting' }
  | { kind: 'stopped'; message?: string | null }
  | { kind: 'clientError'; message: string }
  | { kind: 'status'; params: unknown }
  | { kind: 'stats'; params: unknown }
  | { kind: 'progress'; value: unknown };

const STATES: readonly string[] = ['loading', 'ready', 'error', 'disabled'];
const SOURCES: readonly string[] = ['model', 'typed-through', 'prefetch', 'none'];

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Validate `inkling/status` params; undefined when malformed. */
export function parseStatusParams(params: unknown): { state: ServerState; message: string | null } | undefined {
  if (!isObject(params) || typeof params.state !== 'string' || !STATES.includes(params.state)) return undefined;
  const message = typeof params.message === 'string' ? params.message : null;
  return { state: params.state as ServerState, message };
}

/** Validate `inkling/completionStats` params; undefined when malformed. */
export function parseCompletionStats(params: unknown): CompletionStats | undefined {
  if (!isObject(params)) return undefined;
  const { latencyMs, source, generatedTokens } = params;
  if (typeof latencyMs !== 'number' || !Number.isFinite(latencyMs) || latencyMs < 0) return undefined;
  if (typeof source !== 'string' || !SOURCES.includes(source)) return undefined;
  const tokens = typeof generatedTokens === 'number' && Number.isFinite(generatedTokens) ? generatedTokens : 0;
  return { latencyMs, source: source as CompletionSource, generatedTokens: tokens };
}

function clampPercent(p: unknown): number | null {
  if (typeof p !== 'number' || !Number.isFinite(p)) return null;
  return Math.max(0, Math.min(100, Math.round(p)));
}

/** Fold one event into the model (returns a new object). */
export function reduceStatus(model: StatusModel, event: StatusEvent): StatusModel {
  switch (event.kind) {
    case 'starting':
      return { ...model, state: 'starting', message: null, progress: null };
    case 'stopped':
      return { ...model, state: 'stopped', message: event.message ?? null, progress: null };
    case 'clientError':
      return { ...model, state: 'error', message: event.message, progress: null };
    case 'status': {
      const s = parseStatusParams(event.params);
      if (s === undefined) return model;
      return { ...model, state: s.state, message: s.message, progress: s.state === 'loading' ? model.progress : null };
    }
    case 'stats': {
      const stats = parseCompletionStats(event.params);
      return stats === undefined ? model : { ...model, last: stats };
    }
    case 'progress': {
      const v = event.value;
      if (!isObject(v)) return model;
      if (v.kind === 'begin' || v.kind === 'report') {
        const message = typeof v.message === 'string' ? v.message : model.message;
        const pct = clampPercent(v.percentage);
        // Progress only ever means "loading"; a ready/error state that raced ahead is kept.
        const state: ServerState = model.state === 'starting' || model.state === 'loading' ? 'loading' : model.state;
        return { ...model, state, message: state === 'loading' ? message : model.message, progress: pct ?? model.progress };
      }
      if (v.kind === 'end') return { ...model, progress: null };
      return model;
    }
  }
}

/** `123 ms` under a second, `1.4 s` above. */
export function formatLatency(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
}

export function sourceLabel(source: CompletionSource): string {
  switch (source) {
    case 'model':
      return 'model';
    case 'typed-through':
      return 'typed-through';
    case 'prefetch':
      return 'prefetch';
    case 'none':
      return 'no suggestion';
  }
}

export interface StatusView {
  /** Status-bar text, with `$(icon)` codicons. */
  text: string;
  tooltip: string;
  /** Drives the item's background colour. */
  severity: 'normal' | 'warning' | 'error';
}

/** Format the model for the status bar item. */
export function formatStatus(model: StatusModel): StatusView {
  const lines: string[] = [];
  let text: string;
  let severity: StatusView['severity'] = 'normal';
  switch (model.state) {
    case 'starting':
      text = '$(sync~spin) inkling';
      lines.push('inkling: starting the server');
      break;
    case 'loading':
      text = model.progress !== null ? `$(loading~spin) inkling ${model.progress}%` : '$(loading~spin) inkling';
      lines.push(model.progress !== null ? `inkling: loading model (${model.progress}%)` : 'inkling: loading model');
      break;
    case 'ready':
      text = '$(check) inkling';
      if (model.last !== null) text += ` ${formatLatency(model.last.latencyMs)} · ${sourceLabel(model.last.source)}`;
      lines.push('inkling: ready');
      break;
    case 'error':
      text = '$(error) inkling';
      severity = 'error';
      lines.push('inkling: error');
      break;
    case 'disabled':
      text = '$(circle-slash) inkling';
      severity = 'warning';
      lines.push('inkling: completions off');
      break;
    case 'stopped':
      text = '$(debug-stop) inkling';
      severity = 'warning';
      lines.push('inkling: server stopped');
      break;
  }
  if (model.message) lines.push(model.message);
  if (model.last !== null) {
    const l = model.last;
    lines.push(
      `Last completion: ${formatLatency(l.latencyMs)}, ${sourceLabel(l.source)}, ${l.generatedTokens} token${l.generatedTokens === 1 ? '' : 's'} generated`,
    );
  }
  lines.push('Click for inkling commands');
  return { text, tooltip: lines.join('\n'), severity };
}
