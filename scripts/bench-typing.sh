#!/usr/bin/env bash
# Typing at 80, 150 and 300 ms per character on sessions made from three repositories we did not
# write (Rust: the dashmap crate from the cargo registry; Python: the standard library's `email`
# package; TypeScript: @azure/msal-common's sources from the VS Code extension's node_modules),
# before (no streaming, no warm-up at the cursor) and after, one run at a time, with the default
# 1.5B unless --model is given. Prints one table and writes it to $OUT/typing.md.
#
#   scripts/bench-typing.sh [--sessions-per-repo N] [extra args for `bench replay`]
#
# Each session starts in a warm file (`--warm-start`: the user has worked there; the cold open of
# a file is measured separately) and pauses 1 s before each later line and after a word every 15
# characters. KEEP_KV=1 reuses the primed KV snapshots of an earlier run in $OUT. Takes about 30 minutes
# on a 2-core CPU. Run it alone: another model workload beside it slows both 5-10x.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
per_repo=4
if [ "${1:-}" = "--sessions-per-repo" ]; then
  per_repo=$2
  shift 2
fi
OUT="${OUT:-${CARGO_TARGET_DIR}/bench-typing}"
work="$OUT/repos"
rm -rf "$work"
mkdir -p "$work"

# The repositories, copied so that their paths are stable.
dashmap=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/dashmap-6.* 2>/dev/null | head -1)
email=$(ls -d /usr/lib/python3*/email 2>/dev/null | head -1)
msal=editors/vscode/node_modules/@azure/msal-common/src
if [ ! -d "$msal" ]; then
  (cd editors/vscode && npm ci --ignore-scripts --no-audit --no-fund >/dev/null)
fi
for need in "$dashmap" "$email" "$msal"; do
  [ -d "$need" ] || { echo "missing source tree: $need" >&2; exit 2; }
done
cp -r "$dashmap" "$work/dashmap"
mkdir -p "$work/pyemail" && cp -r "$email" "$work/pyemail/email"
cp -r "$msal" "$work/msal"

sessions="$OUT/sessions.jsonl"
: >"$sessions"
for r in dashmap pyemail msal; do
  "$INKLING_BIN" bench make --repo "$work/$r" --tasks-out "$OUT/$r-tasks.jsonl" \
    --sessions-out "$OUT/$r-sessions.jsonl" --sessions "$per_repo" --limit 10 --seed 1 >/dev/null
  cat "$OUT/$r-sessions.jsonl" >>"$sessions"
done
echo "$(wc -l <"$sessions") sessions from dashmap (Rust), email (Python), msal-common (TypeScript)"

# One KV directory for every run, primed first, so that no run pays for the repo-context
# prefixes the others load from disk.
kv="$OUT/kv"
[ -n "${KEEP_KV:-}" ] || rm -rf "$kv"
replay() { # NAME SPEED FLAGS...
  local name=$1 speed=$2
  shift 2
  rm -rf "$OUT/$name"
  "$INKLING_BIN" bench replay --sessions "$sessions" --repos-root "$work" --speed-ms "$speed" \
    --think-ms 0 --pause-ms 1000 --pause-every 15 --warm-start --kv-dir "$kv" --report "$OUT/$name" "$@" \
    2>"$OUT/$name.log" | tail -6
}
if [ ! -d "$kv" ]; then
  echo "== priming the KV snapshots (not measured)"
  replay prime 300 --no-streaming --no-warm-cursor "$@" >/dev/null
fi
for speed in 80 150 300; do
  echo "== $speed ms per character, before"
  replay "before-$speed" "$speed" --no-streaming --no-warm-cursor "$@"
  echo "== $speed ms per character, after"
  replay "after-$speed" "$speed" "$@"
done

python3 - "$OUT" <<'EOF' | tee "$OUT/typing.md"
import json, sys
out = sys.argv[1]
rows = []
print("| ms/char | mode | consistent ≤100 ms | ≤300 ms | chars saved | after a pause: shown, p50/p90 ms | fresh: first piece p50/p90 ms | whole p50/p90 ms | re-asks |")
print("|---|---|---|---|---|---|---|---|---|")
for speed in (80, 150, 300):
    for mode in ("before", "after"):
        s = json.load(open(f"{out}/{mode}-{speed}/report.json"))["replay"]["summary"]
        print(f"| {speed} | {mode} | {s['correct_within_100ms_share']*100:.1f}% | {s['correct_within_300ms_share']*100:.1f}% "
              f"| {s['chars_saved_share']*100:.1f}% ({s['chars_saved']}/{s['chars_typed']}) "
              f"| {s['pause_suggested_share']*100:.0f}% of {s['pauses']}, {s['pause_to_suggestion_p50_ms']:.0f}/{s['pause_to_suggestion_p90_ms']:.0f} "
              f"| {s['fresh_first_piece_p50_ms']:.0f}/{s['fresh_first_piece_p90_ms']:.0f} "
              f"| {s['fresh_whole_p50_ms']:.0f}/{s['fresh_whole_p90_ms']:.0f} | {s['reasks']} |")
EOF
echo "reports: $OUT/{before,after}-{80,150,300}/report.html"
