#!/usr/bin/env bash
# Fuzzing with cargo-fuzz (nightly toolchain, libFuzzer): every target under tests/fuzz.
#
#   scripts/fuzz.sh                  # each target for 60 s (a longer budget: FUZZ_SECONDS=600)
#   scripts/fuzz.sh --ci             # a short fixed pass: FUZZ_RUNS executions of each (default 2000)
#   scripts/fuzz.sh edits            # one target (any subset of the names below)
#
# Targets: transport (frames from a hostile client through the server's gate), edits (incremental
# edits vs a reference String, UTF-16/UTF-8, every line break), prompt_stop (prompt builder and
# stop rules), fit (syntax fit and shape in every grammar), kv_store (corrupted KV snapshots).
# Seeds live in tests/fuzz/corpus/<target> (small, in git); what a run learns goes to a working
# corpus under the build cache, crashes to tests/fuzz/artifacts/<target>. Prints one line per
# target with its executions, and exits non-zero when a target crashed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

ci=0
targets=()
for a in "$@"; do
  case "$a" in
    --ci) ci=1 ;;
    *) targets+=("$a") ;;
  esac
done
[ ${#targets[@]} -eq 0 ] && targets=(transport edits prompt_stop fit kv_store)

command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --quiet
# The fuzz build (nightly, sanitizer flags) gets a target directory of its own beside the main one.
fuzz_target_dir="${INKLING_FUZZ_TARGET_DIR:-$(dirname "$CARGO_TARGET_DIR")/fuzz-target}"
work="$(dirname "$CARGO_TARGET_DIR")/fuzz-corpus"
mkdir -p "$work"

failed=0
for t in "${targets[@]}"; do
  mkdir -p "$work/$t" "tests/fuzz/artifacts/$t"
  if [ $ci -eq 1 ]; then
    budget=(-runs="${FUZZ_RUNS:-2000}")
  else
    budget=(-max_total_time="${FUZZ_SECONDS:-60}")
  fi
  log=$(mktemp)
  # The working corpus first: new inputs go there, the seeds in git stay as they are.
  if cargo +nightly fuzz run --fuzz-dir tests/fuzz --target-dir "$fuzz_target_dir" "$t" \
      "$work/$t" "tests/fuzz/corpus/$t" -- "${budget[@]}" -max_len=4096 -timeout=20 \
      -artifact_prefix="tests/fuzz/artifacts/$t/" >"$log" 2>&1; then
    execs=$(grep -Eo 'Done [0-9]+ runs|stat::number_of_executed_units: [0-9]+' "$log" | grep -Eo '[0-9]+' | tail -1)
    echo "fuzz $t: ${execs:-?} executions, no crash"
  else
    failed=$((failed + 1))
    echo "fuzz $t: CRASH (log below; input in tests/fuzz/artifacts/$t)"
    tail -n 40 "$log"
  fi
  rm -f "$log"
done
[ $failed -eq 0 ]
