# Sourced by the scripts: a persistent build directory outside the clone, so llama.cpp is not
# rebuilt from zero on every fresh clone (CI, new worktrees).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/inkling/target}"
# A SOURCE_DATE_EPOCH in the environment turns off llama.cpp's AVX2 kernels (much slower).
unset SOURCE_DATE_EPOCH
export INKLING_BIN="$CARGO_TARGET_DIR/release/inkling"
