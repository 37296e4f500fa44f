#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what is missing, builds, runs every test
# with the real 0.5B model, lints, and the editor integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/setup.sh
export INKLING_TEST_MODEL="${INKLING_TEST_MODEL:-${XDG_CACHE_HOME:-$HOME/.cache}/inkling/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf}"

cargo fmt --all -- --check
cargo build --release --locked
cargo clippy --release --locked --all-targets -- -D warnings
# Tests that load a model must not run in parallel: two llama.cpp thread pools on two cores collapse.
cargo test --release --locked -- --test-threads=1
# A short soak with the real 0.5B: 1,000 keystrokes with cancels, jumps, saves, opens and closes;
# fails on an unanswered request, growing memory or an unclean exit (longer: see README).
"$INKLING_BIN" bench soak --keystrokes 1000 --speed-ms 15 --model "$INKLING_TEST_MODEL"
# A short fixed pass of every fuzz target (budgets for real fuzzing: scripts/fuzz.sh).
scripts/fuzz.sh --ci
# The benchmark on the shipped sets with the default models (both modes), as the README's main job runs it.
INKLING_BENCH_DIR="${INKLING_BENCH_DIR:-$CARGO_TARGET_DIR/bench-report}" scripts/bench.sh
# Editor integrations with their real client code; prints the closing `N passed, N failed` line.
tests/editors/run.sh
