#!/usr/bin/env bash
# The end-to-end run on the real binaries (see e2e/src/main.rs for what it
# checks): builds or reuses the collector distribution (collector/build.sh)
# and Jaeger v2 (e2e/jaeger/build.sh), builds the examples and the driver,
# and runs the driver, which starts everything on free loopback ports with
# the repository's own collector-config/*.yaml and always stops it.
#
#   bash e2e/run.sh
#
# Needs Go (1.26; the modules come from the Go module proxy) and cargo.
# Logs of every service are kept in target/e2e/ when a check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TERM_COLOR=never

log() { echo "e2e-collector: $*" >&2; }
die() { log "FAIL: $*"; exit 1; }

# Nothing from the caller's environment may steer the examples or the
# collectors: the driver sets exactly what each needs.
for var in $(compgen -e); do
  case $var in
    OTEL_* | LANGFUSE_* | POCKETFLOW_* | JAEGER_* | COLLECTOR_* | GATEWAY_*) unset "$var" ;;
  esac
done
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

command -v go >/dev/null 2>&1 || die "go not found: the collector and Jaeger are built from their Go modules (Go 1.26)"
command -v cargo >/dev/null 2>&1 || die "cargo not found"

START=$(date +%s)
log "building or reusing the collector and Jaeger"
COLLECTOR=$(collector/build.sh)
JAEGER=$(e2e/jaeger/build.sh)
log "$("$COLLECTOR" --version)"
log "jaeger $("$JAEGER" version 2>/dev/null | sed -n 's/.*"gitVersion":"\([^"]*\)".*/\1/p')"

log "validating every collector-config/*.yaml with the collector binary"
for config in collector-config/*.yaml; do
  LANGFUSE_HOST=http://127.0.0.1:1 LANGFUSE_AUTH=e2e "$COLLECTOR" validate --config "$config" ||
    die "$config does not validate"
done

log "building the examples and the driver"
cargo build --quiet --examples -p pocketflow-examples
cargo build --quiet -p pocketflow-e2e
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

# Every example that installs tracing from the environment exports, so
# every one of them runs through the agent.
EXPORTING=$(grep -l 'pocketflow_tracing::init()' examples/*.rs | xargs -n1 basename | sed 's/\.rs$//' | paste -sd, -)

WORK=$ROOT/target/e2e
rm -rf "$WORK"
mkdir -p "$WORK"
if "$TARGET_DIR/debug/pocketflow-e2e" --collector "$COLLECTOR" --jaeger "$JAEGER" \
  --examples "$TARGET_DIR/debug/examples" --exporting-examples "$EXPORTING" --work "$WORK"; then
  rm -rf "$WORK"
  log "passed in $(($(date +%s) - START)) s"
else
  log "the services' logs are in $WORK"
  exit 1
fi
