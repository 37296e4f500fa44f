#!/usr/bin/env node
// Runs the built VS Code extension (editors/vscode/dist/extension.js, which bundles the real
// vscode-languageclient) against a server, with a small stand-in for the `vscode` API.
// VS Code itself cannot be downloaded here; this checks everything from activate() to the
// LSP wire: initializationOptions, inline completion through registerProposedFeatures(),
// the status bar item, settings pushes, toggle and restart; with the mock server also the
// inkling/suggestionGrown re-ask and the debounced inkling/cursor notification.
//
//   node tests/editors/vscode_client_test.js
//
// Environment: INKLING_VSCODE_MOCK=1 (use tests/editors/mock_server.py, with MOCK_LOG; the
// test sets MOCK_CONTROL itself to cue the mock), else INKLING_BIN (+ INKLING_TEST_MODEL).
// Prints ok/not ok lines and `N passed, N failed`.
'use strict';
const Module = require('module');
const path = require('path');
const fs = require('fs');

const ROOT = path.resolve(__dirname, '..', '..');
const MOCK = process.env.INKLING_VSCODE_MOCK === '1';
const TIMEOUT_MS = (Number(process.env.INKLING_TEST_TIMEOUT_S) || 180) * 1000;

let passed = 0;
let failed = 0;
function check(cond, name, why) {
  if (cond) {
    passed++;
    console.log(`ok - ${name}`);
  } else {
    failed++;
    console.log(`not ok - ${name}: ${typeof why === 'function' ? why() : why}`);
  }
  return !!cond;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(cond, ms) {
  const end = Date.now() + ms;
  for (;;) {
    const v = cond();
    if (v) return v;
    if (Date.now() > end) return undefined;
    await sleep(20);
  }
}

// ------------------------------------------------------------------------------------------
// A stand-in for the parts of the `vscode` API that the extension and languageclient use.

class Disposable {
  constructor(fn) {
    this._fn = fn;
  }
  static from(...ds) {
    return new Disposable(() => ds.forEach((d) => d && d.dispose && d.dispose()));
  }
  dispose() {
    if (this._fn) this._fn();
    this._fn = undefined;
  }
}
class EventEmitter {
  constructor() {
    this.listeners = new Set();
    this.event = (listener, thisArg, disposables) => {
      const l = thisArg ? listener.bind(thisArg) : listener;
      this.listeners.add(l);
      const d = new Disposable(() => this.listeners.delete(l));
      if (Array.isArray(disposables)) disposables.push(d);
      return d;
    };
  }
  fire(e) {
    for (const l of [...this.listeners]) l(e);
  }
  dispose() {
    this.listeners.clear();
  }
}
class Position {
  constructor(line, character) {
    this.line = line;
    this.character = character;
  }
  isEqual(o) {
    return this.line === o.line && this.character === o.character;
  }
  isBefore(o) {
    return this.line < o.line || (this.line === o.line && this.character < o.character);
  }
  isAfter(o) {
    return !this.isEqual(o) && !this.isBefore(o);
  }
  compareTo(o) {
    return this.isBefore(o) ? -1 : this.isEqual(o) ? 0 : 1;
  }
  translate(dl = 0, dc = 0) {
    if (typeof dl === 'object') return new Position(this.line + (dl.lineDelta || 0), this.character + (dl.characterDelta || 0));
    return new Position(this.line + dl, this.character + dc);
  }
  with(l, c) {
    return new Position(l === undefined ? this.line : l, c === undefined ? this.character : c);
  }
}
class Range {
  constructor(a, b, c, d) {
    if (typeof a === 'number') {
      this.start = new Position(a, b);
      this.end = new Position(c, d);
    } else {
      this.start = a;
      this.end = b;
    }
  }
  get isEmpty() {
    return this.start.isEqual(this.end);
  }
  get isSingleLine() {
    return this.start.line === this.end.line;
  }
  contains(p) {
    const s = p.start ? p.start : p;
    const e = p.end ? p.end : p;
    return !s.isBefore(this.start) && !this.end.isBefore(e);
  }
}
class Selection extends Range {}
class Uri {
  constructor(scheme, p) {
    this.scheme = scheme;
    this.path = p;
    this.fsPath = p;
    this.authority = '';
    this.query = '';
    this.fragment = '';
  }
  static file(p) {
    return new Uri('file', p);
  }
  static parse(s) {
    const m = /^([a-z]+):\/\/(.*)$/.exec(s);
    return m ? new Uri(m[1], decodeURIComponent(m[2])) : new Uri('file', s);
  }
  toString() {
    return `${this.scheme}://${encodeURI(this.path)}`;
  }
  toJSON() {
    return this.toString();
  }
  with(change) {
    return new Uri(change.scheme || this.scheme, change.path || this.path);
  }
}
class CancellationTokenSource {
  constructor() {
    const emitter = new EventEmitter();
    this._emitter = emitter;
    this.token = { isCancellationRequested: false, onCancellationRequested: emitter.event };
  }
  cancel() {
    this.token.isCancellationRequested = true;
    this._emitter.fire();
  }
  dispose() {}
}
class InlineCompletionItem {
  constructor(insertText, range, command) {
    this.insertText = insertText;
    this.range = range;
    this.command = command;
  }
}
class InlineCompletionList {
  constructor(items) {
    this.items = items;
  }
}
class CompletionItem {
  constructor(label, kind) {
    this.label = label;
    this.kind = kind;
  }
}
class CompletionList {
  constructor(items = [], isIncomplete = false) {
    this.items = items;
    this.isIncomplete = isIncomplete;
  }
}
class SnippetString {
  constructor(value) {
    this.value = value;
  }
}
class TextEdit {
  constructor(range, newText) {
    this.range = range;
    this.newText = newText;
  }
  static replace(r, t) {
    return new TextEdit(r, t);
  }
  static insert(p, t) {
    return new TextEdit(new Range(p, p), t);
  }
}
class MarkdownString {
  constructor(value = '') {
    this.value = value;
  }
  appendMarkdown(v) {
    this.value += v;
    return this;
  }
  appendText(v) {
    this.value += v;
    return this;
  }
}
class ThemeColor {
  constructor(id) {
    this.id = id;
  }
}
class ThemeIcon {
  constructor(id) {
    this.id = id;
  }
}

// Anything not modelled: a callable, constructible stub whose members are stubs and whose
// calls return disposables (event registrations, registerXxxProvider, ...).
function stub(name) {
  const fn = function () {
    return new Proxy(new Disposable(), {
      get: (t, p) => (p in t ? t[p] : stub(`${name}()`)[p]),
    });
  };
  return new Proxy(fn, {
    get: (t, p) => {
      if (p === 'then') return undefined; // not a promise
      if (p === Symbol.toPrimitive) return () => 0;
      if (p === 'toString') return () => name;
      if (!(p in t)) t[p] = stub(`${name}.${String(p)}`);
      return t[p];
    },
    construct: () => new Disposable(),
  });
}
function withStubs(obj, name) {
  return new Proxy(obj, {
    get: (t, p) => {
      if (p in t) return t[p];
      if (typeof p === 'symbol' || p === 'then') return undefined;
      t[p] = stub(`${name}.${p}`);
      return t[p];
    },
  });
}

// Settings store with VS Code's getConfiguration/inspect/update semantics (global level only).
const settings = {};
const onDidChangeConfiguration = new EventEmitter();
function getConfiguration(section) {
  const prefix = section ? `${section}.` : '';
  return {
    get: (key, def) => (prefix + key in settings ? settings[prefix + key] : def),
    has: (key) => prefix + key in settings,
    inspect: (key) => ({ key: prefix + key, globalValue: settings[prefix + key] }),
    update: async (key, value) => {
      settings[prefix + key] = value;
      const changed = prefix + key;
      onDidChangeConfiguration.fire({
        affectsConfiguration: (s) => changed === s || changed.startsWith(`${s}.`) || s.startsWith(`${changed}.`),
      });
    },
  };
}

class TextDocument {
  constructor(file, languageId, text) {
    this.uri = Uri.file(file);
    this.fileName = file;
    this.languageId = languageId;
    this.version = 1;
    this.text = text;
    this.isClosed = false;
    this.isDirty = false;
    this.isUntitled = false;
    this.eol = 1;
  }
  get lines() {
    return this.text.split('\n');
  }
  get lineCount() {
    return this.lines.length;
  }
  getText(range) {
    if (!range) return this.text;
    return this.text.slice(this.offsetAt(range.start), this.offsetAt(range.end));
  }
  lineAt(l) {
    const line = typeof l === 'number' ? l : l.line;
    const text = this.lines[line];
    return { lineNumber: line, text, range: new Range(line, 0, line, text.length), isEmptyOrWhitespace: text.trim() === '' };
  }
  offsetAt(p) {
    const lines = this.lines;
    let o = 0;
    for (let i = 0; i < p.line; i++) o += lines[i].length + 1;
    return o + p.character; // JS strings are UTF-16, like LSP's default
  }
  positionAt(o) {
    const before = this.text.slice(0, o).split('\n');
    return new Position(before.length - 1, before[before.length - 1].length);
  }
  save() {
    return Promise.resolve(true);
  }
}

const registered = { inline: [], completion: [], commands: new Map() };
const statusItems = [];
const statusTexts = [];
const messages = [];
const docEvents = {
  open: new EventEmitter(),
  change: new EventEmitter(),
  close: new EventEmitter(),
  save: new EventEmitter(),
  willSave: new EventEmitter(),
};
const textDocuments = [];
const editorEvents = {
  selection: new EventEmitter(),
  active: new EventEmitter(),
};

function matchSelector(selector, doc) {
  const filters = Array.isArray(selector) ? selector : [selector];
  return filters.some((f) =>
    typeof f === 'string' ? f === '*' || f === doc.languageId : (!f.scheme || f.scheme === doc.uri.scheme) && (!f.language || f.language === doc.languageId),
  )
    ? 10
    : 0;
}

const vscode = withStubs(
  {
    version: '1.90.0',
    Disposable,
    EventEmitter,
    Position,
    Range,
    Selection,
    Uri,
    CancellationTokenSource,
    InlineCompletionItem,
    InlineCompletionList,
    CompletionItem,
    CompletionList,
    SnippetString,
    TextEdit,
    MarkdownString,
    ThemeColor,
    ThemeIcon,
    StatusBarAlignment: { Left: 1, Right: 2 },
    ConfigurationTarget: { Global: 1, Workspace: 2, WorkspaceFolder: 3 },
    InlineCompletionTriggerKind: { Invoke: 0, Automatic: 1 },
    CompletionTriggerKind: { Invoke: 0, TriggerCharacter: 1, TriggerForIncompleteCompletions: 2 },
    CompletionItemKind: new Proxy({}, { get: (_, p) => (typeof p === 'string' ? 0 : undefined) }),
    ProgressLocation: { SourceControl: 1, Window: 10, Notification: 15 },
    env: withStubs({ language: 'en', appName: 'fake-vscode', machineId: 'test', sessionId: 'test', uriScheme: 'vscode' }, 'env'),
    window: withStubs(
      {
        activeTextEditor: undefined,
        visibleTextEditors: [],
        onDidChangeTextEditorSelection: editorEvents.selection.event,
        onDidChangeActiveTextEditor: editorEvents.active.event,
        createOutputChannel: (name) =>
          withStubs(
            {
              name,
              lines: [],
              append(v) {
                this.lines.push(v);
              },
              appendLine(v) {
                this.lines.push(v);
                if (process.env.INKLING_TEST_VERBOSE) console.log(`# [${name}] ${v}`);
              },
              show() {},
              hide() {},
              clear() {},
              dispose() {},
            },
            'outputChannel',
          ),
        createStatusBarItem: (id, alignment, priority) => {
          const item = {
            id,
            alignment,
            priority,
            _text: '',
            tooltip: '',
            visible: false,
            show() {
              this.visible = true;
            },
            hide() {
              this.visible = false;
            },
            dispose() {},
            get text() {
              return this._text;
            },
            set text(v) {
              this._text = v;
              statusTexts.push(v);
            },
          };
          statusItems.push(item);
          return item;
        },
        showErrorMessage: async (...a) => {
          messages.push(['error', ...a]);
          return undefined;
        },
        showWarningMessage: async (...a) => {
          messages.push(['warning', ...a]);
          return undefined;
        },
        showInformationMessage: async (...a) => {
          messages.push(['info', ...a]);
          return undefined;
        },
        setStatusBarMessage: () => new Disposable(),
        withProgress: async (_opts, task) => task({ report() {} }, new CancellationTokenSource().token),
      },
      'window',
    ),
    workspace: withStubs(
      {
        workspaceFolders: undefined,
        textDocuments,
        notebookDocuments: [],
        getConfiguration,
        onDidChangeConfiguration: onDidChangeConfiguration.event,
        onDidOpenTextDocument: docEvents.open.event,
        onDidChangeTextDocument: docEvents.change.event,
        onDidCloseTextDocument: docEvents.close.event,
        onDidSaveTextDocument: docEvents.save.event,
        onWillSaveTextDocument: docEvents.willSave.event,
        getWorkspaceFolder: () => undefined,
      },
      'workspace',
    ),
    languages: withStubs(
      {
        match: matchSelector,
        registerInlineCompletionItemProvider: (selector, provider) => {
          registered.inline.push({ selector, provider });
          return new Disposable(() => (registered.inline = registered.inline.filter((r) => r.provider !== provider)));
        },
        registerCompletionItemProvider: (selector, provider) => {
          registered.completion.push({ selector, provider });
          return new Disposable(() => (registered.completion = registered.completion.filter((r) => r.provider !== provider)));
        },
      },
      'languages',
    ),
    commands: withStubs(
      {
        registerCommand: (id, fn) => {
          registered.commands.set(id, fn);
          return new Disposable(() => registered.commands.delete(id));
        },
        executeCommand: async (id, ...args) => {
          const fn = registered.commands.get(id);
          return fn ? fn(...args) : undefined;
        },
      },
      'commands',
    ),
  },
  'vscode',
);

const origLoad = Module._load;
Module._load = function (request, ...rest) {
  if (request === 'vscode') return vscode;
  return origLoad.call(this, request, ...rest);
};

// ------------------------------------------------------------------------------------------

function readMockLog() {
  const p = process.env.MOCK_LOG;
  if (!p || !fs.existsSync(p)) return [];
  return fs
    .readFileSync(p, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

async function inline(doc, pos, kind = 0) {
  const { provider } = registered.inline[registered.inline.length - 1];
  const res = await provider.provideInlineCompletionItems(doc, pos, { triggerKind: kind, selectedCompletionInfo: undefined }, new CancellationTokenSource().token);
  const items = !res ? [] : Array.isArray(res) ? res : res.items;
  return items || [];
}

// The editor the user types in, with one cursor (or selection) that moveTo() moves like VS Code
// does: it updates the selection, then fires onDidChangeTextEditorSelection.
function makeEditor(doc) {
  const editor = withStubs({ document: doc, selection: undefined, selections: [], visibleRanges: [], options: {}, viewColumn: 1 }, 'editor');
  editor.moveTo = (pos, anchor = pos) => {
    editor.selection = new Selection(anchor, pos);
    editor.selection.anchor = anchor;
    editor.selection.active = pos;
    editor.selections = [editor.selection];
    editorEvents.selection.fire({ textEditor: editor, selections: editor.selections, kind: 1 /* Keyboard */ });
  };
  return editor;
}

// Cues for the mock server (see tests/editors/mock_server.py): one JSON object per line.
function cueMock(cue) {
  fs.appendFileSync(process.env.MOCK_CONTROL, JSON.stringify(cue) + '\n');
}

function applyInline(doc, item, pos) {
  const text = typeof item.insertText === 'string' ? item.insertText : item.insertText.value;
  const range = item.range || new Range(pos, pos);
  return doc.text.slice(0, doc.offsetAt(range.start)) + text + doc.text.slice(doc.offsetAt(range.end));
}

async function main() {
  let serverPath;
  if (MOCK) {
    serverPath = path.join(ROOT, 'tests', 'editors', 'mock_server.py');
    settings['inkling.model'] = '/models/test.gguf';
    const control = path.join(require('os').tmpdir(), `inkling-vscode-${process.pid}`, 'mock-control.jsonl');
    fs.mkdirSync(path.dirname(control), { recursive: true });
    fs.writeFileSync(control, '');
    process.env.MOCK_CONTROL = control; // the mock server inherits it
  } else {
    serverPath = process.env.INKLING_BIN;
    if (!serverPath || !fs.existsSync(serverPath)) {
      check(false, 'server binary', `INKLING_BIN is not set to an executable (got ${serverPath})`);
      return;
    }
    if (process.env.INKLING_TEST_MODEL) settings['inkling.model'] = process.env.INKLING_TEST_MODEL;
  }
  Object.assign(settings, {
    'inkling.serverPath': serverPath,
    'inkling.enable': true,
    'inkling.maxTokens': 24,
    'inkling.threads': 0,
    'inkling.speculation': 'auto',
    'inkling.disabledLanguages': ['markdown'],
    'inkling.showInSuggestWidget': false,
  });

  const file = path.join(require('os').tmpdir(), `inkling-vscode-${process.pid}`, 'fib.py');
  const text = [
    'def fibonacci(n):',
    '    """Return the n-th Fibonacci number."""',
    '    if n < 2:',
    '        return n',
    '    return fibonacci(n - 1) + fib',
    '',
    '',
    'def main():',
    '    print(fibonacci(10))',
    '',
  ].join('\n');
  const doc = new TextDocument(file, 'python', text);
  textDocuments.push(doc);

  const ext = require(path.join(ROOT, 'editors', 'vscode', 'dist', 'extension.js'));
  const context = { subscriptions: [], extensionPath: path.join(ROOT, 'editors', 'vscode'), extensionUri: Uri.file(path.join(ROOT, 'editors', 'vscode')) };
  await ext.activate(context);
  check(true, 'activate() resolves with the server running', '');
  const status = statusItems.find((s) => s.id === 'inkling.status');
  check(status && status.visible, 'a status bar item is shown', () => JSON.stringify(statusItems));
  for (const c of ['inkling.toggle', 'inkling.restart', 'inkling.showLog']) {
    check(registered.commands.has(c), `command ${c} is registered`, [...registered.commands.keys()].join(', '));
  }
  check(registered.inline.length === 1, 'registerProposedFeatures() registers an inline completion provider', `${registered.inline.length} registered`);

  const ready = await waitFor(() => status.text.startsWith('$(check)') || status.text.startsWith('$(error)'), TIMEOUT_MS);
  check(ready && status.text.startsWith('$(check)'), 'status bar reaches ready', () => `${status.text} / ${status.tooltip}`);
  check(statusTexts.some((t) => /^\$\(loading~spin\) inkling \d+%$/.test(t)), 'status bar showed the model-load percentage', () => JSON.stringify(statusTexts));

  if (MOCK) {
    const init = readMockLog().find((m) => m.method === 'initialize');
    const opts = init && init.params.initializationOptions;
    check(
      opts && opts.model === '/models/test.gguf' && opts.maxTokens === 24 && opts.enable === true && opts.speculation === 'auto' && !('threads' in opts) && !('serverPath' in opts),
      'initializationOptions come from the settings mapping',
      () => JSON.stringify(opts),
    );
    check(init && init.params.capabilities.textDocument.inlineCompletion, 'client announces textDocument.inlineCompletion', () => JSON.stringify(init && init.params.capabilities.textDocument));
    check(readMockLog().some((m) => m.method === 'textDocument/didOpen' && m.params.textDocument.uri.endsWith('fib.py')), 'the open document is sent with didOpen', 'no didOpen');
  }

  // Inline completion at the end of `    return fibonacci(n - 1) + fib`.
  const pos = new Position(4, doc.lineAt(4).text.length);
  let items = await inline(doc, pos, 1 /* Automatic */);
  if (!items.length && !MOCK) items = await inline(doc, pos, 0 /* Invoke */);
  if (check(items.length > 0, 'inline completion returns an item', 'no items')) {
    const item = items[0];
    check(item instanceof InlineCompletionItem, 'items are vscode.InlineCompletionItem', () => JSON.stringify(item));
    const after = applyInline(doc, item, pos);
    const line = after.split('\n')[4];
    check(line.startsWith('    return fibonacci(n - 1) + fib') && line !== doc.lineAt(4).text, 'accepting the ghost text extends the line', JSON.stringify(line));
    console.log(`# accepted line: ${JSON.stringify(line)}`);
    if (MOCK) check(line === '    return fibonacci(n - 1) + fib_mock', 'the item range replaces the typed word', JSON.stringify(line));
  }
  if (MOCK) {
    const req = readMockLog().filter((m) => m.method === 'textDocument/inlineCompletion')[0];
    check(req && req.params.context.triggerKind === 2, 'VS Code Automatic is sent as LSP triggerKind 2', () => JSON.stringify(req && req.params.context));
  }
  const statsShown = await waitFor(() => / · (model|typed-through|prefetch|no suggestion)$/.test(status.text), 10000);
  check(statsShown, 'status bar shows the last latency and source', () => status.text);
  console.log(`# status bar: ${JSON.stringify(status.text)}`);

  // An edit reaches the server (incremental sync).
  const editPos = new Position(9, 0);
  doc.text = doc.text + 'result = fibo';
  doc.version++;
  docEvents.change.fire({
    document: doc,
    reason: undefined,
    contentChanges: [{ range: new Range(editPos, editPos), rangeOffset: doc.offsetAt(editPos), rangeLength: 0, text: 'result = fibo' }],
  });
  const endPos = new Position(9, 'result = fibo'.length);

  // The completion list entry is opt-in.
  const comp = registered.completion[registered.completion.length - 1];
  check(comp, 'a completion provider is registered', 'none');
  if (comp) {
    const token = new CancellationTokenSource().token;
    const ctx = { triggerKind: 0, triggerCharacter: undefined };
    const off = await comp.provider.provideCompletionItems(doc, endPos, token, ctx);
    check(off === undefined || off === null, 'no completion-list item unless inkling.showInSuggestWidget', () => JSON.stringify(off));
    await getConfiguration('inkling').update('showInSuggestWidget', true);
    const on = await comp.provider.provideCompletionItems(doc, endPos, token, ctx);
    const list = on ? (Array.isArray(on) ? on : on.items) : [];
    if (check(list.length > 0, 'completion-list item with inkling.showInSuggestWidget', () => JSON.stringify(on))) {
      console.log(`# completion item: ${JSON.stringify(list[0].label)}`);
      if (MOCK) check(list[0].label === 'fibo_mock', 'the completion item sees the edited text', () => JSON.stringify(list[0].label));
    }
  }

  if (MOCK) await liveNotifications(doc, endPos);

  // Toggle: the server gets the whole option set with enable=false.
  await vscode.commands.executeCommand('inkling.toggle');
  check(settings['inkling.enable'] === false, 'inkling.toggle flips inkling.enable', String(settings['inkling.enable']));
  if (MOCK) {
    const pushes = () => readMockLog().filter((m) => m.method === 'workspace/didChangeConfiguration');
    const pushed = await waitFor(() => pushes().pop(), 3000);
    check(pushes().length === 1, 'only the server setting change is pushed (not showInSuggestWidget)', () => JSON.stringify(pushes()));
    const s = pushed && pushed.params.settings && pushed.params.settings.inkling;
    check(
      s && s.enable === false && s.model === '/models/test.gguf' && Array.isArray(s.disabledLanguages),
      'a settings change is pushed as {settings: {inkling: {...}}}',
      () => JSON.stringify(pushed && pushed.params),
    );
  }
  await vscode.commands.executeCommand('inkling.toggle');

  // Restart: a new server, ready again, still serving completions.
  statusTexts.length = 0;
  await vscode.commands.executeCommand('inkling.restart');
  const again = await waitFor(() => status.text.startsWith('$(check)'), TIMEOUT_MS);
  check(again && statusTexts.some((t) => t.startsWith('$(sync~spin)')), 'inkling.restart restarts the server', () => JSON.stringify(statusTexts));
  const items2 = await inline(doc, pos, 0);
  check(items2.length > 0, 'inline completion works after restart', 'no items');

  await ext.deactivate();
  check(messages.filter((m) => m[0] === 'error').length === 0, 'no error messages were shown', () => JSON.stringify(messages));
}

// inkling/suggestionGrown (the mock sends it on cue) and inkling/cursor, mock server only.
async function liveNotifications(doc, endPos) {
  const uri = readMockLog().find((m) => m.method === 'textDocument/didOpen').params.textDocument.uri;
  const editor = makeEditor(doc);
  vscode.window.activeTextEditor = editor;
  editor.moveTo(endPos);
  // VS Code's trigger command: asks the inline completion provider at the cursor again.
  const triggered = [];
  registered.commands.set('editor.action.inlineSuggest.trigger', async () => {
    const items = await inline(editor.document, editor.selection.active, 0);
    triggered.push(items.map((i) => (typeof i.insertText === 'string' ? i.insertText : i.insertText.value)));
  });
  const inlineRequests = () => readMockLog().filter((m) => m.method === 'textDocument/inlineCompletion');
  const cursorNotes = () => readMockLog().filter((m) => m.method === 'inkling/cursor');
  const grownAt = (version, pos) => ({
    send: {
      method: 'inkling/suggestionGrown',
      params: { textDocument: { uri, version }, position: { line: pos.line, character: pos.character }, chars: 14, final: false },
    },
  });

  // A suggestion is showing at the end of `result = fibo` (version 2).
  await inline(doc, endPos, 1);
  let before = inlineRequests().length;

  // Stale: an older version, or another position: no re-ask.
  cueMock(grownAt(doc.version - 1, endPos));
  cueMock(grownAt(doc.version, new Position(endPos.line, endPos.character - 1)));
  await sleep(400);
  check(triggered.length === 0 && inlineRequests().length === before, 'a stale inkling/suggestionGrown (old version, other position) is ignored', () => `${triggered.length} re-asks`);

  // Matching: one re-ask, which gets the longer text.
  cueMock({ suffix: '_grown' });
  cueMock(grownAt(doc.version, endPos));
  await waitFor(() => triggered.length > 0 && inlineRequests().length > before, 3000);
  await sleep(300);
  check(triggered.length === 1 && inlineRequests().length === before + 1, 'inkling/suggestionGrown at the cursor re-triggers the inline suggestion once', () => `${triggered.length} re-asks, ${inlineRequests().length - before} requests`);
  check(JSON.stringify(triggered[0]) === JSON.stringify(['fibo_mock_grown']), 'the re-ask gets the grown suggestion', () => JSON.stringify(triggered));

  // Several notifications while a request is in flight: one re-ask, after it.
  cueMock({ delayMs: 1000 });
  await sleep(100);
  before = inlineRequests().length;
  const slow = inline(doc, endPos, 1);
  await waitFor(() => inlineRequests().length > before, 3000); // the mock holds the answer now
  cueMock(grownAt(doc.version, endPos));
  cueMock(grownAt(doc.version, endPos));
  cueMock(grownAt(doc.version, endPos));
  cueMock({ delayMs: 0 });
  await slow;
  await waitFor(() => triggered.length > 1, 3000);
  await sleep(400);
  check(triggered.length === 2 && inlineRequests().length === before + 2, 'notifications during a request in flight are coalesced into one re-ask', () => `${triggered.length - 1} re-asks, ${inlineRequests().length - before} requests`);
  cueMock({ suffix: '' });

  // inkling/cursor: once, 200 ms after the cursor stops, where it stopped; not for a selection.
  await sleep(300);
  const notes0 = cursorNotes().length;
  const t0 = Date.now();
  editor.moveTo(new Position(8, 0));
  await sleep(50);
  editor.moveTo(new Position(8, 4));
  await sleep(50);
  editor.moveTo(new Position(8, 9));
  await sleep(60);
  // (On a machine so busy that the moves were 200 ms apart, a note in between is right.)
  const quick = Date.now() - t0 < 190;
  if (quick) check(cursorNotes().length === notes0, 'no inkling/cursor while the cursor keeps moving', () => JSON.stringify(cursorNotes().slice(notes0)));
  else console.log('ok - no inkling/cursor while the cursor keeps moving # SKIP the moves took too long');
  await waitFor(() => cursorNotes().some((m, i) => i >= notes0 && m.params.position.character === 9), 2000);
  await sleep(400);
  const notes = cursorNotes().slice(notes0);
  const last = notes[notes.length - 1];
  check(
    (quick ? notes.length === 1 : notes.length >= 1) && last && last.params.textDocument.uri === uri && last.params.position.line === 8 && last.params.position.character === 9,
    'inkling/cursor is sent once after the debounce, at the resting cursor',
    () => JSON.stringify(notes),
  );
  editor.moveTo(new Position(8, 12), new Position(8, 4));
  await sleep(500);
  check(cursorNotes().length === notes0 + notes.length, 'no inkling/cursor with a selection', () => JSON.stringify(cursorNotes().slice(notes0)));

  vscode.window.activeTextEditor = undefined;
  registered.commands.delete('editor.action.inlineSuggest.trigger');
}

const hard = setTimeout(() => {
  check(false, 'test run', 'timed out');
  console.log(`vscode client (${MOCK ? 'mock server' : 'real server'}): ${passed} passed, ${failed} failed`);
  process.exit(1);
}, TIMEOUT_MS * 3 + 60000);

main()
  .catch((e) => check(false, 'test body', e && e.stack ? e.stack : String(e)))
  .finally(() => {
    clearTimeout(hard);
    console.log(`vscode client (${MOCK ? 'mock server' : 'real server'}): ${passed} passed, ${failed} failed`);
    setTimeout(() => process.exit(failed ? 1 : 0), 200);
  });
