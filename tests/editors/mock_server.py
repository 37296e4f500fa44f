#!/usr/bin/env python3
"""A stand-in for `inkling lsp` that follows the server contract with fixed answers.

Lets the editor tests check the clients' own logic (ranges, UTF-16 columns,
multi-line ghost text, status notifications) deterministically and fast; the
real-server tests then check the same path against the model.

Suggestion rule for a cursor after `...WORD`: the item replaces WORD (range
from the word start to the cursor) with the first entry of ANSWERS that starts
with WORD (3+ letters), else with WORD + "_mock". A cursor right after ':'
gets a two-line body.
Every message received (requests and notifications alike, e.g. `inkling/cursor`) is
appended as a JSON line to $MOCK_LOG if set.

Cues from a test: with $MOCK_CONTROL set to a file path, the mock follows the JSON lines
appended to that file after it started (one object per line, keys applied in this order):
  {"suffix": "_grown"}  append this to every later suggestion ("" to stop), as if the
                        model had kept writing
  {"delayMs": 300}      wait this long before answering each later inline completion
                        (0 to stop), so a request stays in flight
  {"send": {...}}       send this message to the client as it is, e.g.
                        {"method": "inkling/suggestionGrown", "params": {...}}
"""
import json
import os
import re
import sys
import threading
import time

ANSWERS = ["print(s)", "return total"]
LOG = os.environ.get("MOCK_LOG")
CONTROL = os.environ.get("MOCK_CONTROL")

docs = {}  # uri -> text
encoding = "utf-16"
suffix = ""  # set by a control cue: appended to every suggestion
delay_s = 0.0  # set by a control cue: wait before answering an inline completion
send_lock = threading.Lock()  # the control thread sends too


def log(msg):
    if LOG:
        with open(LOG, "a", encoding="utf-8") as f:
            f.write(json.dumps(msg) + "\n")


def send(msg):
    msg["jsonrpc"] = "2.0"
    data = json.dumps(msg).encode("utf-8")
    with send_lock:
        sys.stdout.buffer.write(b"Content-Length: %d\r\n\r\n" % len(data) + data)
        sys.stdout.buffer.flush()


def follow_control(path):
    """Apply the cues appended to `path` after start-up (see the module doc)."""
    global suffix, delay_s
    try:
        pos = os.path.getsize(path)
    except OSError:
        pos = 0
    pending = b""
    while True:
        time.sleep(0.02)
        try:
            with open(path, "rb") as f:
                f.seek(pos)
                chunk = f.read()
        except OSError:
            continue
        pos += len(chunk)
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            cue = json.loads(line)
            if "suffix" in cue:
                suffix = cue["suffix"]
            if "delayMs" in cue:
                delay_s = cue["delayMs"] / 1000.0
            if "send" in cue:
                send(dict(cue["send"]))


def read():
    headers = {}
    while True:
        line = sys.stdin.buffer.readline()
        if not line:
            return None
        line = line.decode("ascii").strip()
        if not line:
            break
        k, v = line.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    return json.loads(sys.stdin.buffer.read(int(headers["content-length"])).decode("utf-8"))


def col_to_index(line, character):
    """LSP character offset (in the negotiated encoding) -> Python str index."""
    if encoding == "utf-8":
        return len(line.encode("utf-8")[:character].decode("utf-8", "ignore"))
    if encoding == "utf-32":
        return character
    units = 0
    for i, ch in enumerate(line):
        if units >= character:
            return i
        units += 2 if ord(ch) > 0xFFFF else 1
    return len(line)


def index_to_col(line, index):
    if encoding == "utf-8":
        return len(line[:index].encode("utf-8"))
    if encoding == "utf-32":
        return index
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in line[:index])


def offset(text, pos):
    lines = text.split("\n")
    row = pos["line"]
    before = sum(len(l) + 1 for l in lines[:row])
    line = lines[row] if row < len(lines) else ""
    return before + col_to_index(line, pos["character"])


def suggest(params):
    text = docs.get(params["textDocument"]["uri"], "")
    pos = params["position"]
    lines = text.split("\n")
    line = lines[pos["line"]] if pos["line"] < len(lines) else ""
    idx = col_to_index(line, pos["character"])
    before = line[:idx]
    if before.rstrip().endswith(":") and before == before.rstrip():
        indent = re.match(r"\s*", line).group(0) + "    "
        insert, start = "\n" + indent + "total = 0\n" + indent + "return total", idx
    else:
        word = re.search(r"[A-Za-z_][A-Za-z0-9_]*$", before)
        if not word:
            return None
        w = word.group(0)
        fit = [a for a in ANSWERS if len(w) >= 3 and a.startswith(w)]
        insert, start = (fit[0] if fit else w + "_mock"), word.start()
    insert += suffix
    rng = {
        "start": {"line": pos["line"], "character": index_to_col(line, start)},
        "end": {"line": pos["line"], "character": pos["character"]},
    }
    return insert, rng


def main():
    global encoding
    if CONTROL:
        threading.Thread(target=follow_control, args=(CONTROL,), daemon=True).start()
    while True:
        msg = read()
        if msg is None:
            return
        log(msg)
        method, mid, params = msg.get("method"), msg.get("id"), msg.get("params") or {}
        if method == "initialize":
            offered = ((params.get("capabilities") or {}).get("general") or {}).get("positionEncodings") or []
            encoding = "utf-8" if "utf-8" in offered else "utf-16"
            send({"id": mid, "result": {
                "capabilities": {
                    "positionEncoding": encoding,
                    "textDocumentSync": {"openClose": True, "change": 2},
                    "inlineCompletionProvider": True,
                    "completionProvider": {"triggerCharacters": []},
                },
                "serverInfo": {"name": "inkling-mock", "version": "0"},
            }})
        elif method == "initialized":
            send({"method": "inkling/status", "params": {"state": "loading", "message": None}})
            send({"id": "srv-1", "method": "window/workDoneProgress/create", "params": {"token": "inkling/load"}})
            send({"method": "$/progress", "params": {"token": "inkling/load", "value": {"kind": "begin", "title": "Loading model", "percentage": 0}}})
            send({"method": "$/progress", "params": {"token": "inkling/load", "value": {"kind": "report", "percentage": 50}}})
            send({"method": "$/progress", "params": {"token": "inkling/load", "value": {"kind": "end"}}})
            send({"method": "inkling/status", "params": {"state": "ready", "message": None}})
        elif method == "textDocument/didOpen":
            docs[params["textDocument"]["uri"]] = params["textDocument"]["text"]
        elif method == "textDocument/didChange":
            uri = params["textDocument"]["uri"]
            for ch in params["contentChanges"]:
                if "range" in ch:
                    t = docs.get(uri, "")
                    a, b = offset(t, ch["range"]["start"]), offset(t, ch["range"]["end"])
                    docs[uri] = t[:a] + ch["text"] + t[b:]
                else:
                    docs[uri] = ch["text"]
        elif method == "textDocument/didClose":
            docs.pop(params["textDocument"]["uri"], None)
        elif method in ("textDocument/inlineCompletion", "inkling/complete"):
            if delay_s > 0 and method == "textDocument/inlineCompletion":
                time.sleep(delay_s)
            s = suggest(params)
            items = [] if s is None else [{"insertText": s[0], "range": s[1]}]
            result = {"items": items}
            if method == "inkling/complete":
                result["timings"] = {"totalMs": 1}
            send({"id": mid, "result": result})
            send({"method": "inkling/completionStats", "params": {"latencyMs": 1.5, "source": "model" if items else "none", "generatedTokens": 3}})
        elif method == "textDocument/completion":
            s = suggest(params)
            items = []
            if s is not None:
                items.append({"label": s[0].strip().split("\n")[0], "kind": 1, "sortText": "0",
                              "filterText": s[0], "textEdit": {"range": s[1], "newText": s[0]}})
            send({"id": mid, "result": {"isIncomplete": True, "items": items}})
        elif method == "shutdown":
            send({"id": mid, "result": None})
        elif method == "exit":
            return
        elif mid is not None and method is not None:
            send({"id": mid, "error": {"code": -32601, "message": "method not found: " + method}})


if __name__ == "__main__":
    main()
