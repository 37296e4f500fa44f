#!/usr/bin/env bash
# Both benchmark modes on the shipped sets with the default models; extra args go to both
# (e.g. --model PATH, --limit N). Expects the release binary (scripts/run.sh builds it).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
out="${INKLING_BENCH_DIR:-bench-report}"
mkdir -p "$out"
echo "== bench tasks: benches/data/tasks.jsonl"
"$INKLING_BIN" bench tasks --tasks benches/data/tasks.jsonl --out "$out/predictions.jsonl" --report "$out" "$@"
echo "== bench replay: benches/data/sessions.jsonl"
"$INKLING_BIN" bench replay --sessions benches/data/sessions.jsonl --report "$out" "$@"
echo "report: $out/report.html"
