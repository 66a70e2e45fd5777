#!/usr/bin/env bash
# A short, bounded cargo fuzz run of every target in fuzz/ (20 s each).
# cargo fuzz needs a nightly toolchain; without one this says so loudly and
# skips. Longer runs: fuzz/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-20}"
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "ci: WARNING: no nightly toolchain on this machine: the fuzz targets (fuzz/) are NOT run." >&2
  exit 0
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "   installing cargo-fuzz 0.13.2 from crates.io"
  cargo install --quiet --locked cargo-fuzz --version 0.13.2
fi
export CARGO_TARGET_DIR="$PWD/target/fuzz"
cd fuzz
for target in $(cargo +nightly fuzz list); do
  echo "   $target: ${seconds} s"
  corpus="$CARGO_TARGET_DIR/corpus/$target"
  mkdir -p "$corpus"
  log="$CARGO_TARGET_DIR/$target.log"
  if ! cargo +nightly fuzz run "$target" "$corpus" "seeds/$target" -- \
      -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "ci: fuzz target $target failed; the failing input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  grep -E '^(Done|stat::number_of_executed_units)' "$log" | sed 's/^/     /' || true
done
# Over 1 GB of instrumented builds: not kept.
rm -rf "$CARGO_TARGET_DIR"
