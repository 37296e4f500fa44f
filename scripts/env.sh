# Sourced by the scripts: a persistent build directory outside the clone, so llama.cpp is not
# rebuilt from zero on every fresh clone (CI, new worktrees).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/inkling/target}"
# A SOURCE_DATE_EPOCH in the environment turns off llama.cpp's AVX2 kernels (much slower).
unset SOURCE_DATE_EPOCH
export INKLING_BIN="$CARGO_TARGET_DIR/release/inkling"
# llama.cpp is built without llamafile's sgemm (.cargo/config.toml says why). Its build script
# does not notice that setting on a build directory made before it, so such a build is redone once.
for cache in "$CARGO_TARGET_DIR"/release/build/llama-cpp-sys-2-*/out/build/CMakeCache.txt; do
  if [ -f "$cache" ] && ! grep -q '^GGML_LLAMAFILE:BOOL=OFF' "$cache"; then
    echo "inkling: rebuilding llama.cpp without llamafile (once)" >&2
    (cd "$(dirname "${BASH_SOURCE[0]}")/.." && cargo clean --release -p llama-cpp-sys-2 >/dev/null 2>&1) || true
    break
  fi
done
