#!/usr/bin/env python3
"""Static check of editors/helix/languages.toml (Helix itself is not packaged for Debian 12)."""
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PATH = ROOT / "editors" / "helix" / "languages.toml"
REQUIRED = ["rust", "python", "javascript", "typescript", "go", "c", "cpp", "java"]
# Language servers that Helix's built-in languages.toml defines (24.07 .. 25.x) for these languages.
KNOWN_SERVERS = {
    "rust-analyzer", "ruff", "jedi", "pylsp", "pyright", "basedpyright", "ty", "zuban",
    "typescript-language-server", "vscode-eslint-language-server", "gopls", "golangci-lint-lsp",
    "clangd", "jdtls",
}
OPTION_KEYS = {"model", "draftModel", "threads", "contextSize", "maxTokens", "enable",
               "debounceMs", "speculation", "disabledLanguages", "streaming", "answerDeadlineMs",
               "warmCursor"}

passed = failed = 0


def check(cond, name, why=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok - {name}")
    else:
        failed += 1
        print(f"not ok - {name}: {why}")
    return cond


try:
    data = tomllib.loads(PATH.read_text(encoding="utf-8"))
    check(True, "languages.toml parses")
except Exception as e:  # noqa: BLE001
    check(False, "languages.toml parses", repr(e))
    print(f"helix: {passed} passed, {failed} failed")
    sys.exit(1)

server = data.get("language-server", {}).get("inkling", {})
check(server.get("command") == "inkling", "language-server.inkling runs `inkling`", repr(server.get("command")))
check(server.get("args") == ["lsp"], "language-server.inkling has args [\"lsp\"]", repr(server.get("args")))
config = server.get("config", {})
check(isinstance(config, dict) and set(config) <= OPTION_KEYS, "config uses only server option keys",
      repr(sorted(set(config) - OPTION_KEYS)) if isinstance(config, dict) else repr(config))

langs = data.get("language", [])
names = [l.get("name") for l in langs]
check(len(names) == len(set(names)), "each language appears once", repr(names))
by_name = {l.get("name"): l for l in langs}
for lang in REQUIRED:
    entry = by_name.get(lang)
    if not check(entry is not None, f"{lang}: has a [[language]] entry", "missing"):
        continue
    servers = entry.get("language-servers", [])
    ink = [s for s in servers if isinstance(s, dict) and s.get("name") == "inkling"]
    check(len(ink) == 1 and ink[0].get("only-features") == ["completion"],
          f"{lang}: inkling with only-features = [\"completion\"]", repr(servers))
    others = [s if isinstance(s, str) else s.get("name") for s in servers if s not in ink]
    check(others and all(o in KNOWN_SERVERS for o in others),
          f"{lang}: keeps Helix's own servers", repr(others))

print(f"helix: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
