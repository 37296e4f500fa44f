import * as os from 'os';
import * as vscode from 'vscode';
import {
  DidChangeConfigurationNotification,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
} from 'vscode-languageclient/node';
import {
  RAW_SETTING_KEYS,
  RawSettings,
  didChangeConfigurationParams,
  serverCommand,
  toServerOptions,
} from './config';
import { CURSOR, CursorParams, CursorWarmer, Reasker, SUGGESTION_GROWN, Spot } from './live';
import { lspInlineTriggerKind } from './lsp';
import {
  LOAD_PROGRESS_TOKEN,
  StatusEvent,
  StatusModel,
  formatStatus,
  initialStatus,
  reduceStatus,
} from './status';

let client: LanguageClient | undefined;
let statusItem: vscode.StatusBarItem;
let output: vscode.OutputChannel;
let status: StatusModel = initialStatus;

// The documents the client opens with the server (and so the ones its notifications are about).
const DOCUMENT_SELECTOR = [{ scheme: 'file' }, { scheme: 'untitled' }];

/** The active editor's document and cursor, as the server knows them; undefined without a client. */
function activeSpot(): Spot | undefined {
  const c = client;
  const editor = vscode.window.activeTextEditor;
  if (c === undefined || editor === undefined) return undefined;
  const { active, isEmpty } = editor.selection;
  return {
    uri: c.code2ProtocolConverter.asUri(editor.document.uri),
    version: editor.document.version,
    position: { line: active.line, character: active.character },
    emptySelection: isEmpty && editor.selections.length <= 1,
  };
}

/** activeSpot() where warming it is wanted: a server document, completions on, warmCursor on. */
function warmableSpot(): Spot | undefined {
  const editor = vscode.window.activeTextEditor;
  if (editor === undefined || client === undefined || !client.isRunning()) return undefined;
  if (vscode.languages.match(DOCUMENT_SELECTOR, editor.document) === 0) return undefined;
  const c = vscode.workspace.getConfiguration('inkling');
  if (c.get<boolean>('enable', true) === false || c.get<boolean>('warmCursor', true) === false) return undefined;
  const disabled = c.get<unknown>('disabledLanguages');
  if (Array.isArray(disabled) && disabled.includes(editor.document.languageId)) return undefined;
  return activeSpot();
}

// inkling/suggestionGrown: ask VS Code to re-ask for the inline completion (at most once per notification).
const reasker = new Reasker(activeSpot, () => {
  void vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
});

// inkling/cursor: sent once the cursor rests (debounced) where no completion was just asked for.
const warmer = new CursorWarmer(warmableSpot, (params: CursorParams) => {
  if (client?.isRunning()) void client.sendNotification(CURSOR, params).catch(() => undefined);
});

function readRaw(): RawSettings {
  const c = vscode.workspace.getConfiguration('inkling');
  const raw: RawSettings = {};
  for (const key of RAW_SETTING_KEYS) raw[key] = c.get(key);
  return raw;
}

function serverOptionsFromSettings() {
  return toServerOptions(readRaw(), os.homedir());
}

function update(event: StatusEvent): void {
  status = reduceStatus(status, event);
  const view = formatStatus(status);
  statusItem.text = view.text;
  statusItem.tooltip = view.tooltip;
  statusItem.backgroundColor =
    view.severity === 'error'
      ? new vscode.ThemeColor('statusBarItem.errorBackground')
      : view.severity === 'warning'
        ? new vscode.ThemeColor('statusBarItem.warningBackground')
        : undefined;
}

function createClient(): LanguageClient {
  const cmd = serverCommand(readRaw().serverPath, os.homedir());
  const serverOptions: ServerOptions = { command: cmd.command, args: cmd.args };
  const clientOptions: LanguageClientOptions = {
    documentSelector: DOCUMENT_SELECTOR,
    // A function, so a restart picks up the current settings.
    initializationOptions: () => serverOptionsFromSettings(),
    outputChannel: output,
    middleware: {
      // The model-load progress drives the status bar instead of a notification pop-up.
      handleWorkDoneProgress: (token, params, next) => {
        if (token === LOAD_PROGRESS_TOKEN) {
          update({ kind: 'progress', value: params });
          return;
        }
        next(token, params);
      },
      // languageclient 9.0.1 sends VS Code's 0/1 trigger kinds; LSP says 1 (Invoked) / 2 (Automatic).
      // The requests in flight are counted so that inkling/suggestionGrown re-asks wait for them.
      provideInlineCompletionItems: async (document, position, context, token, next) => {
        const triggerKind = lspInlineTriggerKind(context.triggerKind) as number as vscode.InlineCompletionTriggerKind;
        if (client !== undefined) {
          warmer.asked({
            uri: client.code2ProtocolConverter.asUri(document.uri),
            version: document.version,
            position: { line: position.line, character: position.character },
            emptySelection: true,
          });
        }
        const started = reasker.requestStarted();
        try {
          return await next(document, position, { ...context, triggerKind }, token);
        } finally {
          reasker.requestEnded(started);
        }
      },
      // Ghost text is the main UI; the completion-list entry is opt-in.
      provideCompletionItem: (document, position, context, token, next) => {
        if (!vscode.workspace.getConfiguration('inkling').get<boolean>('showInSuggestWidget', false)) {
          return undefined;
        }
        return next(document, position, context, token);
      },
      workspace: {
        // If the server pulls `workspace/configuration` for section `inkling`, answer with the mapped options.
        configuration: async (params, token, next) => {
          const result = await next(params, token);
          if (!Array.isArray(result)) return result;
          return params.items.map((item, i) => (item.section === 'inkling' ? serverOptionsFromSettings() : result[i]));
        },
      },
    },
  };
  const c = new LanguageClient('inkling', 'inkling', serverOptions, clientOptions);
  c.registerProposedFeatures(); // LSP 3.18 textDocument/inlineCompletion -> VS Code ghost text
  c.onNotification('inkling/status', (params: unknown) => update({ kind: 'status', params }));
  c.onNotification('inkling/completionStats', (params: unknown) => update({ kind: 'stats', params }));
  c.onNotification(SUGGESTION_GROWN, (params: unknown) => reasker.grown(params));
  c.onDidChangeState((e) => {
    if (e.newState === State.Starting) update({ kind: 'starting' });
    else if (e.newState === State.Stopped && status.state !== 'error') update({ kind: 'stopped' });
  });
  return c;
}

async function startClient(): Promise<void> {
  update({ kind: 'starting' });
  const c = createClient();
  client = c;
  try {
    await c.start();
  } catch (err) {
    const cmd = serverCommand(readRaw().serverPath, os.homedir());
    const message = `could not start \`${cmd.command} ${cmd.args.join(' ')}\`: ${err instanceof Error ? err.message : String(err)}`;
    update({ kind: 'clientError', message });
    const choice = await vscode.window.showErrorMessage(
      `inkling: ${message}. Set "inkling.serverPath" or put inkling on PATH.`,
      'Open Settings',
      'Show Log',
    );
    if (choice === 'Open Settings') {
      void vscode.commands.executeCommand('workbench.action.openSettings', 'inkling.serverPath');
    } else if (choice === 'Show Log') {
      output.show(true);
    }
  }
}

async function stopClient(): Promise<void> {
  const c = client;
  client = undefined;
  reasker.reset();
  warmer.reset();
  if (c === undefined) return;
  try {
    if (c.isRunning()) await c.stop(5000);
  } catch {
    // already dead
  }
  await c.dispose().catch(() => undefined);
}

async function restart(): Promise<void> {
  await stopClient();
  await startClient();
}

async function toggle(): Promise<void> {
  const c = vscode.workspace.getConfiguration('inkling');
  const enabled = c.get<boolean>('enable', true);
  const info = c.inspect<boolean>('enable');
  const target =
    info?.workspaceValue !== undefined ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
  await c.update('enable', !enabled, target);
  // The configuration listener pushes the change to the server.
  void vscode.window.setStatusBarMessage(`inkling: completions ${enabled ? 'off' : 'on'}`, 2000);
}

async function showMenu(): Promise<void> {
  const enabled = vscode.workspace.getConfiguration('inkling').get<boolean>('enable', true);
  const items: (vscode.QuickPickItem & { command: string })[] = [
    { label: enabled ? 'Turn completions off' : 'Turn completions on', command: 'inkling.toggle' },
    { label: 'Restart server', command: 'inkling.restart' },
    { label: 'Show server log', command: 'inkling.showLog' },
    { label: 'Open settings', command: 'inkling.openSettings' },
  ];
  const pick = await vscode.window.showQuickPick(items, { title: 'inkling' });
  if (pick === undefined) return;
  if (pick.command === 'inkling.openSettings') {
    await vscode.commands.executeCommand('workbench.action.openSettings', '@ext:inkling.inkling');
  } else {
    await vscode.commands.executeCommand(pick.command);
  }
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  output = vscode.window.createOutputChannel('inkling');
  statusItem = vscode.window.createStatusBarItem('inkling.status', vscode.StatusBarAlignment.Right, 100);
  statusItem.name = 'inkling';
  statusItem.command = 'inkling.showMenu';
  update({ kind: 'starting' });
  statusItem.show();

  context.subscriptions.push(
    output,
    statusItem,
    vscode.commands.registerCommand('inkling.toggle', toggle),
    vscode.commands.registerCommand('inkling.restart', restart),
    vscode.commands.registerCommand('inkling.showLog', () => output.show(true)),
    vscode.commands.registerCommand('inkling.showMenu', showMenu),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration('inkling')) return;
      if (e.affectsConfiguration('inkling.serverPath')) {
        void restart();
        return;
      }
      // Client-only settings (showInSuggestWidget, trace.server) need no push.
      const serverSettingChanged = RAW_SETTING_KEYS.some((k) => e.affectsConfiguration(`inkling.${k}`));
      if (serverSettingChanged && client?.isRunning()) {
        void client.sendNotification(
          DidChangeConfigurationNotification.type,
          didChangeConfigurationParams(serverOptionsFromSettings()),
        );
      }
    }),
    vscode.window.onDidChangeTextEditorSelection(() => warmer.moved()),
    vscode.window.onDidChangeActiveTextEditor(() => warmer.moved()),
    { dispose: () => warmer.cancel() },
    { dispose: () => void stopClient() },
  );

  await startClient();
}

export async function deactivate(): Promise<void> {
  await stopClient();
}
