#!/usr/bin/env python3
"""Load an adversarial client puts on a real `inkling lsp`, measured from the client's side.

    scripts/stress.py [--bin PATH] [--model GGUF] [--only NAME ...]

Cases (each on a fresh server): `burst` (2,000 keystrokes with a request each, sent at once: how
long until the last request is answered), `bigfile` (a 1.9 MB file: the first completion, then 300
keystrokes 50 ms apart), `longline` (a 5 MB single-line file: server time per keystroke), `edits`
(one didChange with 20,000 edits: how long until the next request is answered), `docs` (1,000 open
19 KB documents: RSS per document). Prints one line per case; numbers depend on the machine.
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "inkling"


class Server:
    def __init__(self, binary, model, root):
        self.p = subprocess.Popen(
            [binary, "lsp"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.answers = {}
        self.bodies = {}
        self.cond = threading.Condition()
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        self.next_id = 1
        opts = {"model": str(model), "speculation": "off", "contextTokens": 0, "persistKv": False}
        i = self.request("initialize", {"processId": None, "rootUri": f"file://{root}",
                                        "capabilities": {}, "initializationOptions": opts})
        self.wait(i, 60)
        self.notify("initialized", {})
        if not self.ready.wait(120):
            raise SystemExit("the model did not load")

    def _read(self):
        out = self.p.stdout
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    return
                line = line.strip()
                if not line:
                    break
                k, _, v = line.partition(b":")
                if k.lower() == b"content-length":
                    length = int(v)
            msg = json.loads(out.read(length))
            if msg.get("method") == "inkling/status" and msg["params"]["state"] == "ready":
                self.ready.set()
            if "id" in msg and "method" in msg:
                self.send({"jsonrpc": "2.0", "id": msg["id"], "result": None})
            elif "id" in msg:
                with self.cond:
                    self.answers[msg["id"]] = time.monotonic()
                    self.bodies[msg["id"]] = msg
                    self.cond.notify_all()

    def send(self, msg):
        body = json.dumps(msg).encode()
        self.p.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.p.stdin.flush()

    def notify(self, method, params):
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def request(self, method, params):
        i = self.next_id
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": i, "method": method, "params": params})
        return i

    def complete(self, uri, line, col):
        """`inkling/complete`: the answer carries the server's latency and the engine's timings."""
        return self.request("inkling/complete", {
            "textDocument": {"uri": uri}, "position": {"line": line, "character": col},
            "context": {"triggerKind": 1}})

    def split(self, i):
        """(server ms, model ms) of an answered `inkling/complete`: the engine's queue and
        total time are the model's, the rest of the latency is the server's."""
        r = self.bodies.get(i, {}).get("result") or {}
        t = r.get("timings") or {}
        model = t.get("queue_ms", 0.0) + t.get("total_ms", 0.0)
        return r.get("latencyMs", float("nan")) - model, model

    def inline(self, uri, line, col, invoked=False):
        return self.request("textDocument/inlineCompletion", {
            "textDocument": {"uri": uri}, "position": {"line": line, "character": col},
            "context": {"triggerKind": 1 if invoked else 2}})

    def wait(self, i, timeout):
        with self.cond:
            self.cond.wait_for(lambda: i in self.answers, timeout)
            return self.answers.get(i)

    def rss_mib(self):
        for line in open(f"/proc/{self.p.pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self):
        i = self.request("shutdown", None)
        self.wait(i, 10)
        self.notify("exit", None)
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()


def insert(server, uri, version, line, col, text):
    p = {"line": line, "character": col}
    server.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version},
                                             "contentChanges": [{"range": {"start": p, "end": p}, "text": text}]})


def python_source(n_bytes):
    block = "def function_{i}(a, b):\n    total = a + b * {i}\n    return total - {i}\n\n\n"
    out, i = [], 0
    size = 0
    while size < n_bytes:
        s = block.format(i=i)
        out.append(s)
        size += len(s)
        i += 1
    return "".join(out)


def case_burst(s, root):
    uri = f"file://{root}/burst.py"
    text = python_source(12_000)
    s.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}})
    line = text.count("\n")
    ids = []
    for k in range(2000):
        insert(s, uri, k + 2, line, k, "x")
        if ids:
            s.notify("$/cancelRequest", {"id": ids[-1]})
        last = k == 1999
        ids.append(s.complete(uri, line, k + 1) if last else s.inline(uri, line, k + 1))
    sent = time.monotonic()
    at = s.wait(ids[-1], 300)
    time.sleep(1)
    unanswered = sum(1 for i in ids if s.wait(i, 0) is None)
    server, model = s.split(ids[-1])
    return (f"burst: last of 2,000 requests answered after {1e3 * (at - sent) if at else float('nan'):.0f} ms "
            f"(server {server:.0f} ms, model {model:.0f} ms); {unanswered} unanswered")


def case_bigfile(s, root):
    uri = f"file://{root}/big.py"
    text = python_source(1_900_000) + "x = "
    t = time.monotonic()
    s.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}})
    line = text.count("\n")
    first = s.complete(uri, line, 4)
    at = s.wait(first, 300)
    first_ms = 1e3 * (at - t) if at else float("nan")
    server, model = s.split(first)
    lat, ids = [], []
    for k in range(300):
        insert(s, uri, k + 2, line, 4 + k, "a")
        sent = time.monotonic()
        i = s.inline(uri, line, 5 + k)
        ids.append((i, sent))
        time.sleep(0.05)
    time.sleep(2)
    for i, sent in ids:
        at = s.wait(i, 60)
        if at:
            lat.append(1e3 * (at - sent))
    lat.sort()
    p50 = lat[len(lat) // 2] if lat else float("nan")
    return f"bigfile: first completion {first_ms:.0f} ms from didOpen (request: server {server:.0f} ms, model {model:.0f} ms); 300 keystrokes: {len(lat)} answered, p50 {p50:.0f} ms, max {max(lat) if lat else float('nan'):.0f} ms"


def case_longline(s, root):
    uri = f"file://{root}/min.js"
    text = "var a=[" + "1," * 2_500_000 + "];"
    s.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "javascript", "version": 1, "text": text}})
    s.wait(s.request("inkling/complete", {
        "textDocument": {"uri": uri}, "position": {"line": 0, "character": 3}, "context": {"triggerKind": 1}}), 120)
    lat = []
    for k in range(50):
        insert(s, uri, k + 2, 0, 7 + k, "9")
        sent = time.monotonic()
        at = s.wait(s.inline(uri, 0, 8 + k), 60)
        if at:
            lat.append(1e3 * (at - sent))
    lat.sort()
    return f"longline: 5 MB single line, 50 keystrokes: {len(lat)} answered, p50 {lat[len(lat)//2]:.1f} ms, max {lat[-1]:.1f} ms per keystroke (didChange + request)"


def case_edits(s, root):
    uri = f"file://{root}/many.py"
    s.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": "xx = []\n"}})
    changes = [{"range": {"start": {"line": 0, "character": 6 + 2 * i}, "end": {"line": 0, "character": 6 + 2 * i}}, "text": "1,"} for i in range(20_000)]
    t = time.monotonic()
    s.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2}, "contentChanges": changes})
    # Inside a word: answered without the model, so the time is the server's own.
    at = s.wait(s.inline(uri, 0, 1), 120)
    return f"edits: one didChange with 20,000 edits, next request answered after {1e3 * (at - t) if at else float('nan'):.0f} ms (no model needed)"


def case_docs(s, root):
    before = s.rss_mib()
    text = python_source(19_000)
    for k in range(1000):
        uri = f"file://{root}/docs/d{k}.py"
        s.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}})
    s.wait(s.request("inkling/complete", {"textDocument": {"uri": f"file://{root}/docs/d999.py"},
                                          "position": {"line": 0, "character": 0}, "context": {"triggerKind": 1}}), 120)
    after = s.rss_mib()
    return f"docs: 1,000 open 19 KB documents: RSS {before:.0f} -> {after:.0f} MiB, {1024 * (after - before) / 1000:.0f} KiB per document ({19_000 / 1024:.0f} KiB of text)"


CASES = {"burst": case_burst, "bigfile": case_bigfile, "longline": case_longline, "edits": case_edits, "docs": case_docs}


def main():
    ap = argparse.ArgumentParser()
    target = Path(os.environ.get("CARGO_TARGET_DIR", CACHE / "target"))
    ap.add_argument("--bin", default=str(target / "release" / "inkling"))
    ap.add_argument("--model", default=str(CACHE / "models" / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"))
    ap.add_argument("--only", nargs="*", default=list(CASES))
    a = ap.parse_args()
    root = Path("/tmp") / f"inkling-stress-{os.getpid()}"
    root.mkdir(parents=True, exist_ok=True)
    for name in a.only:
        s = Server(a.bin, a.model, root)
        try:
            print(CASES[name](s, root), flush=True)
        finally:
            s.stop()


if __name__ == "__main__":
    sys.exit(main())
