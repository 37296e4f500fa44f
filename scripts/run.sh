#!/usr/bin/env bash
# The main job on the default models: a demo completion, then the headless benchmark on the
# shipped task and session sets (tables on stdout, plots in bench-report/report.html).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/setup.sh
cargo build --release --locked
echo "== demo: completing examples/demo.py inside median() (0-based line 10, column 4)"
"$INKLING_BIN" complete examples/demo.py --line 10 --column 4
scripts/bench.sh "$@"
