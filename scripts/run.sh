#!/usr/bin/env bash
# The main job on the default models: a demo completion on a sample file shipped in the repo.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/setup.sh
cargo build --release --locked
# Cursor inside the body of `median` (0-based line 10, column 4).
"$INKLING_BIN" complete examples/demo.py --line 10 --column 4 "$@"
