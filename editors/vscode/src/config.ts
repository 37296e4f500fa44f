// Pure mapping from the `inkling.*` VS Code settings to the server's
// initializationOptions / `workspace/didChangeConfiguration` payload.
// No `vscode` import here: this module is unit-tested under plain node.

export type Speculation = 'off' | 'lookup' | 'draft' | 'auto';

export const SPECULATION_MODES: readonly Speculation[] = ['off', 'lookup', 'draft', 'auto'];

/** What the server accepts (all keys optional, camelCase). */
export interface InklingOptions {
  model?: string;
  draftModel?: string;
  threads?: number;
  contextSize?: number;
  maxTokens?: number;
  enable?: boolean;
  debounceMs?: number;
  speculation?: Speculation;
  disabledLanguages?: string[];
  streaming?: boolean;
  answerDeadlineMs?: number;
  warmCursor?: boolean;
}

/** The raw values as read from `workspace.getConfiguration('inkling')`; anything may be malformed. */
export interface RawSettings {
  serverPath?: unknown;
  enable?: unknown;
  model?: unknown;
  draftModel?: unknown;
  threads?: unknown;
  contextSize?: unknown;
  maxTokens?: unknown;
  debounceMs?: unknown;
  speculation?: unknown;
  disabledLanguages?: unknown;
  streaming?: unknown;
  answerDeadlineMs?: unknown;
  warmCursor?: unknown;
}

/** Keys of RawSettings, in the order the extension reads them. */
export const RAW_SETTING_KEYS: readonly (keyof RawSettings)[] = [
  'serverPath',
  'enable',
  'model',
  'draftModel',
  'threads',
  'contextSize',
  'maxTokens',
  'debounceMs',
  'speculation',
  'disabledLanguages',
  'streaming',
  'answerDeadlineMs',
  'warmCursor',
];

/** Expand a leading `~` (alone or followed by a slash) to `home`. */
export function expandHome(path: string, home: string): string {
  if (home === '') return path;
  if (path === '~') return home;
  if (path.startsWith('~/') || path.startsWith('~\\')) {
    return home.replace(/[\\/]+$/, '') + path.slice(1);
  }
  return path;
}

function pathSetting(value: unknown, home: string): string | undefined {
  if (typeof value !== 'string') return undefined;
  const trimmed = value.trim();
  return trimmed === '' ? undefined : expandHome(trimmed, home);
}

function intSetting(value: unknown, min: number): number | undefined {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) return undefined;
  return value;
}

/**
 * Map raw settings to server options. Unset/default values are left out so the
 * server applies its own defaults: empty paths, 0 for threads/contextSize/maxTokens,
 * a negative debounce. `enable` and `disabledLanguages` are always sent so that
 * turning something back on reaches a running server; `streaming`, `answerDeadlineMs`
 * and `warmCursor` are sent whenever they are well-formed (VS Code always has a value
 * for them: the package.json default, which is the server's), for the same reason.
 */
export function toServerOptions(raw: RawSettings, home = ''): InklingOptions {
  const out: InklingOptions = {};
  const model = pathSetting(raw.model, home);
  if (model !== undefined) out.model = model;
  const draftModel = pathSetting(raw.draftModel, home);
  if (draftModel !== undefined) out.draftModel = draftModel;
  const threads = intSetting(raw.threads, 1);
  if (threads !== undefined) out.threads = threads;
  const contextSize = intSetting(raw.contextSize, 1);
  if (contextSize !== undefined) out.contextSize = contextSize;
  const maxTokens = intSetting(raw.maxTokens, 1);
  if (maxTokens !== undefined) out.maxTokens = maxTokens;
  out.enable = typeof raw.enable === 'boolean' ? raw.enable : true;
  const debounceMs = intSetting(raw.debounceMs, 0);
  if (debounceMs !== undefined) out.debounceMs = debounceMs;
  if (typeof raw.speculation === 'string' && (SPECULATION_MODES as readonly string[]).includes(raw.speculation)) {
    out.speculation = raw.speculation as Speculation;
  }
  const langs: string[] = [];
  if (Array.isArray(raw.disabledLanguages)) {
    for (const l of raw.disabledLanguages) {
      if (typeof l !== 'string') continue;
      const id = l.trim();
      if (id !== '' && !langs.includes(id)) langs.push(id);
    }
  }
  out.disabledLanguages = langs;
  if (typeof raw.streaming === 'boolean') out.streaming = raw.streaming;
  const answerDeadlineMs = intSetting(raw.answerDeadlineMs, 0);
  if (answerDeadlineMs !== undefined) out.answerDeadlineMs = answerDeadlineMs;
  if (typeof raw.warmCursor === 'boolean') out.warmCursor = raw.warmCursor;
  return out;
}

/** The `workspace/didChangeConfiguration` params the server expects. */
export function didChangeConfigurationParams(options: InklingOptions): { settings: { inkling: InklingOptions } } {
  return { settings: { inkling: options } };
}

/** The command line that starts the server. */
export interface ServerCommand {
  command: string;
  args: string[];
}

/** `inkling.serverPath` if set (with `~` expanded), else `inkling` looked up on PATH. */
export function serverCommand(serverPath: unknown, home = ''): ServerCommand {
  const path = pathSetting(serverPath, home);
  return { command: path ?? 'inkling', args: ['lsp'] };
}

/** Settings whose change needs a server restart rather than a configuration push. */
export const RESTART_SETTINGS: readonly string[] = ['inkling.serverPath'];
