#!/usr/bin/env bash
# Regenerates the README's screenshots in docs/images/ from real runs:
#
#   quickstart, comprehensive_async_example
#       --OTLP/gRPC--> our collector (collector-config/jaeger-only.yaml)
#       --OTLP/gRPC--> Jaeger v2 (e2e/jaeger/config.yaml, in memory)
#   quickstart, comprehensive_async_example
#       --OTLP/HTTP--> Arize Phoenix (/v1/traces)
#
# then finds the quickstart's trace in each backend and has headless
# Chromium take:
#
#   docs/images/jaeger-trace.png    Jaeger's trace view of the quickstart
#   docs/images/jaeger-search.png   Jaeger's search page for the service
#   docs/images/phoenix-trace.png   Phoenix's trace view of the quickstart
#
# Usage: bash e2e/screenshots.sh
#
# Builds or reuses the collector, Jaeger and the Jaeger UI (collector/build.sh,
# e2e/jaeger/build.sh, e2e/jaeger/build-ui.sh; POCKETFLOW_OTEL_BIN_DIR picks
# their output directory, JAEGER_UI_GIT where the UI's source is cloned
# from), installs or reuses Phoenix in target/ci/phoenix-venv (the pin and
# venv of .ci/e2e_phoenix.sh), and installs Chromium with apt-get if it is
# missing. Every server listens on free loopback ports, keeps its data in a
# temp dir, and is stopped on exit; Chromium gets a throwaway HOME, so
# nothing is left behind but the three PNGs (written only when all three
# pages showed the trace). Needs go, node and npm, git, python3 (with venv),
# cargo, and Chromium or root for apt-get. About 40 s once everything is
# built; a first run builds for several minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TERM_COLOR=never

HEALTH_TIMEOUT=${SCREENSHOTS_HEALTH_TIMEOUT:-120}
INGEST_TIMEOUT=${SCREENSHOTS_INGEST_TIMEOUT:-60}
# Virtual time Chromium lets a page run (its timers, fetches) before the shot.
RENDER_BUDGET_MS=${SCREENSHOTS_RENDER_BUDGET_MS:-20000}
# The examples' service name (pocketflow-tracing's default; nothing below
# sets OTEL_SERVICE_NAME) and so Jaeger's service and Phoenix's project.
SERVICE=pocketflow
START=$(date +%s)

log() { echo "screenshots: [$(($(date +%s) - START))s] $*" >&2; }
die() { log "FAIL: $*"; exit 1; }

# Nothing from the caller's environment may steer the exporter or the
# servers; only the build scripts' inputs (where the binaries go, where the
# Jaeger UI's source is) are kept.
for var in $(compgen -e); do
  case $var in
    POCKETFLOW_OTEL_BIN_DIR | JAEGER_UI_GIT) ;;
    OTEL_* | LANGFUSE_* | POCKETFLOW_* | PHOENIX_* | JAEGER_* | OTLP_* | HEALTH_CHECK_* | COLLECTOR_*) unset "$var" ;;
  esac
done
# Everything talks to 127.0.0.1; never route that through a proxy.
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

for tool in go python3 cargo; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
done
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 ||
  die "python3 cannot create virtual environments (on Debian/Ubuntu: apt-get install python3-venv)"

# --- Chromium ----------------------------------------------------------------
find_chromium() {
  local name
  for name in chromium chromium-browser google-chrome-stable google-chrome; do
    if command -v "$name" >/dev/null 2>&1; then
      command -v "$name"
      return 0
    fi
  done
  return 1
}
if ! CHROMIUM=$(find_chromium); then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "Chromium not found: installing it with apt-get (about 30 s)"
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >&2; then
      die "!!! apt-get could not install chromium; install Chromium (or Chrome) and run again !!!"
    fi
    CHROMIUM=$(find_chromium) || die "!!! chromium installed but not on PATH !!!"
  else
    die "!!! no Chromium or Chrome on PATH, and no root apt-get to install it: install one (Debian/Ubuntu: sudo apt-get install chromium) and run again !!!"
  fi
fi
log "Chromium: $CHROMIUM"

# --- collector and Jaeger (built or reused) ---------------------------------
COLLECTOR=$(bash collector/build.sh) || die "collector/build.sh failed"
JAEGER=$(bash e2e/jaeger/build.sh) || die "e2e/jaeger/build.sh failed"
JAEGER_UI=$(bash e2e/jaeger/build-ui.sh) || die "e2e/jaeger/build-ui.sh failed (JAEGER_UI_GIT names another jaeger-ui clone)"
log "collector: $COLLECTOR"
log "Jaeger: $JAEGER, UI from $JAEGER_UI"

# --- Phoenix (installed or reused, the same pin and venv as .ci/e2e_phoenix.sh) ---
VENV=$ROOT/target/ci/phoenix-venv
bash .ci/phoenix_install.sh "$VENV" || die "could not install Arize Phoenix"

# --- start everything ---------------------------------------------------------
# Nine free loopback ports (a port could in principle be taken between this
# probe and the server's bind; the health waits below would then fail).
read -r J_OTLP J_HTTP J_GRPC C_GRPC C_HTTP C_HEALTH C_METRICS P_HTTP P_GRPC < <(python3 - <<'EOF'
import socket
socks = []
for _ in range(9):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(*(s.getsockname()[1] for s in socks))
EOF
)
WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/pocketflow-screenshots.XXXXXX")
PIDS=()
NAMES=()
CHROMIUM_PID=

cleanup() {
  local status=$? i pid status_of_stop
  if [ -n "$CHROMIUM_PID" ]; then
    kill -KILL -- "-$CHROMIUM_PID" 2>/dev/null || true
  fi
  # Stop in reverse order of start, so the collector can still hand its
  # queue to Jaeger while it shuts down.
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    pid=${PIDS[$i]} status_of_stop=0
    # Each server runs in its own process group (setsid): stop that group only.
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "${NAMES[$i]} still running 10 s after SIGTERM: killing it"
      kill -KILL -- "-$pid" 2>/dev/null || true
      status_of_stop=1
    fi
    if { [ "$status" -ne 0 ] || [ "$status_of_stop" -ne 0 ]; } && [ -f "$WORKDIR/${NAMES[$i]}.log" ]; then
      log "---- last 30 lines of the ${NAMES[$i]} log ----"
      tail -n 30 "$WORKDIR/${NAMES[$i]}.log" >&2 || true
    fi
  done
  rm -rf "$WORKDIR"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME COMMAND...: runs COMMAND in its own process group, logging to
# $WORKDIR/NAME.log.
start() {
  local name=$1
  shift
  setsid "$@" >"$WORKDIR/$name.log" 2>&1 </dev/null &
  PIDS+=("$!")
  NAMES+=("$name")
  disown "$!"
}

log "starting Jaeger (OTLP/gRPC :$J_OTLP, UI :$J_HTTP), the collector (OTLP/gRPC :$C_GRPC) and Phoenix (UI and OTLP/HTTP :$P_HTTP)"
# Two overrides of e2e/jaeger/config.yaml: the UI built by build-ui.sh, and
# no self-tracing (Jaeger's query service traces its own requests by default
# and sends them to localhost:4317, which is someone else's port here).
JAEGER_OTLP_GRPC=127.0.0.1:$J_OTLP JAEGER_QUERY_HTTP=127.0.0.1:$J_HTTP JAEGER_QUERY_GRPC=127.0.0.1:$J_GRPC \
  start jaeger "$JAEGER" --config "$ROOT/e2e/jaeger/config.yaml" \
  --set "extensions::jaeger_query::ui::assets_path=$JAEGER_UI" \
  --set extensions::jaeger_query::enable_tracing=false
JAEGER_OTLP_ENDPOINT=127.0.0.1:$J_OTLP \
  OTLP_GRPC_ENDPOINT=127.0.0.1:$C_GRPC OTLP_HTTP_ENDPOINT=127.0.0.1:$C_HTTP \
  HEALTH_CHECK_ENDPOINT=127.0.0.1:$C_HEALTH \
  COLLECTOR_METRICS_HOST=127.0.0.1 COLLECTOR_METRICS_PORT=$C_METRICS \
  start collector "$COLLECTOR" --config "$ROOT/collector-config/jaeger-only.yaml"
mkdir -p "$WORKDIR/phoenix-data"
PHOENIX_WORKING_DIR=$WORKDIR/phoenix-data \
  PHOENIX_HOST=127.0.0.1 PHOENIX_PORT=$P_HTTP PHOENIX_GRPC_PORT=$P_GRPC \
  PHOENIX_TELEMETRY_ENABLED=false PHOENIX_ALLOW_EXTERNAL_RESOURCES=false PYTHONUNBUFFERED=1 \
  start phoenix "$VENV/bin/phoenix" serve

# Build the examples while the servers boot.
log "building the examples quickstart and comprehensive_async_example"
cargo build --quiet --example quickstart --example comprehensive_async_example

# wait_ok NAME URL: until URL answers 200, or NAME's process exits.
wait_ok() {
  local name=$1 url=$2 i pid=
  for i in "${!NAMES[@]}"; do [ "${NAMES[$i]}" = "$name" ] && pid=${PIDS[$i]}; done
  local deadline=$(($(date +%s) + HEALTH_TIMEOUT))
  until python3 -c 'import sys, urllib.request as u; sys.exit(u.urlopen(sys.argv[1], timeout=2).status != 200)' \
    "$url" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || die "$name exited before $url answered"
    [ "$(date +%s)" -lt "$deadline" ] || die "$name: no 200 from $url after ${HEALTH_TIMEOUT}s"
    sleep 0.5
  done
}
JAEGER_BASE=http://127.0.0.1:$J_HTTP
PHOENIX_BASE=http://127.0.0.1:$P_HTTP
wait_ok jaeger "$JAEGER_BASE/api/services"
wait_ok collector "http://127.0.0.1:$C_HEALTH/"
wait_ok phoenix "$PHOENIX_BASE/healthz"
log "all three servers up"

# --- export the examples' traces ------------------------------------------------
# run_example LABEL EXAMPLE ENV...: runs EXAMPLE with ENV; prints the number
# of spans it exported (and fails if it dropped any).
run_example() {
  local label=$1 example=$2 line dropped
  shift 2
  log "[$label] cargo run --example $example with $*"
  if ! env "$@" cargo run --quiet --example "$example" >"$WORKDIR/$label.stdout" 2>"$WORKDIR/$label.stderr"; then
    cat "$WORKDIR/$label.stderr" >&2
    die "[$label] $example failed"
  fi
  line=$(grep -E 'spans exported, [0-9]+ dropped' "$WORKDIR/$label.stderr" | tail -n 1 || true)
  [ -n "$line" ] || { cat "$WORKDIR/$label.stderr" >&2; die "[$label] no 'N spans exported, M dropped' line"; }
  log "[$label] $line"
  dropped=$(sed -E 's/.*exported, ([0-9]+) dropped.*/\1/' <<<"$line")
  [ "$dropped" -eq 0 ] || die "[$label] the exporter dropped $dropped spans"
  sed -E 's/.* ([0-9]+) spans exported.*/\1/' <<<"$line"
}

TO_COLLECTOR=(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$C_GRPC")
TO_PHOENIX=(OTEL_EXPORTER_OTLP_ENDPOINT="$PHOENIX_BASE" OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf
  POCKETFLOW_EVENT_OBSERVATIONS=false)
run_example jaeger-async comprehensive_async_example "${TO_COLLECTOR[@]}" >/dev/null
JAEGER_SPANS=$(run_example jaeger-quickstart quickstart "${TO_COLLECTOR[@]}")
run_example phoenix-async comprehensive_async_example "${TO_PHOENIX[@]}" >/dev/null
PHOENIX_SPANS=$(run_example phoenix-quickstart quickstart "${TO_PHOENIX[@]}")

JAEGER_TRACE=$(python3 "$ROOT/e2e/screenshots_find.py" jaeger "$JAEGER_BASE" "$SERVICE" "$JAEGER_SPANS" "$INGEST_TIMEOUT") ||
  die "the quickstart's trace did not reach Jaeger whole"
read -r PHOENIX_PROJECT PHOENIX_TRACE < <(python3 "$ROOT/e2e/screenshots_find.py" phoenix "$PHOENIX_BASE" "$SERVICE" "$PHOENIX_SPANS" "$INGEST_TIMEOUT") ||
  die "the quickstart's trace did not reach Phoenix whole"
[ -n "${PHOENIX_TRACE:-}" ] || die "the quickstart's trace did not reach Phoenix whole"
log "Jaeger has the quickstart's trace $JAEGER_TRACE ($JAEGER_SPANS spans)"
log "Phoenix has it as $PHOENIX_TRACE in project $PHOENIX_PROJECT ($PHOENIX_SPANS spans)"

# --- screenshots -----------------------------------------------------------------
# shoot NAME URL MUST_SHOW: a 1400x900 screenshot of URL into
# $WORKDIR/shots/NAME.png, after checking that the page, rendered the same
# way, shows MUST_SHOW (so a placeholder, an error page or a spinner fails
# the run instead of landing in docs/images). Chromium's HOME, config and
# cache point into $WORKDIR, so its profile, crash-report and dconf
# directories go away with it.
mkdir -p "$WORKDIR/shots" "$WORKDIR/chromium-home"
# chromium OUT ARGS...: one headless Chromium run, stdout to OUT, stderr
# appended to $CHROMIUM_LOG, in its own process group, which is killed
# whole after it (no stray renderer) or after CHROMIUM_TIMEOUT seconds
# (headless Chromium can hang instead of taking its screenshot); tried twice.
CHROMIUM_TIMEOUT=${SCREENSHOTS_CHROMIUM_TIMEOUT:-90}
chromium() {
  local out=$1 attempt deadline rc
  shift
  for attempt in 1 2; do
    HOME=$WORKDIR/chromium-home XDG_CONFIG_HOME=$WORKDIR/chromium-home/.config XDG_CACHE_HOME=$WORKDIR/chromium-home/.cache \
      setsid "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
      --disable-background-networking --disable-component-update --disable-sync \
      --user-data-dir="$WORKDIR/chromium-profile" --hide-scrollbars \
      --virtual-time-budget="$RENDER_BUDGET_MS" --window-size=1400,900 "$@" \
      >"$out" 2>>"$CHROMIUM_LOG" </dev/null &
    CHROMIUM_PID=$!
    deadline=$(($(date +%s) + CHROMIUM_TIMEOUT))
    while kill -0 "$CHROMIUM_PID" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do
      sleep 0.2
    done
    if kill -0 "$CHROMIUM_PID" 2>/dev/null; then
      kill -KILL -- "-$CHROMIUM_PID" 2>/dev/null || true
      wait "$CHROMIUM_PID" 2>/dev/null || true
      CHROMIUM_PID=
      log "Chromium still running after ${CHROMIUM_TIMEOUT}s (attempt $attempt of 2): killed it"
      continue
    fi
    rc=0
    wait "$CHROMIUM_PID" || rc=$?
    kill -KILL -- "-$CHROMIUM_PID" 2>/dev/null || true
    CHROMIUM_PID=
    return "$rc"
  done
  return 124
}
shoot() {
  local name=$1 url=$2 must_show=$3 out=$WORKDIR/shots/$1.png
  CHROMIUM_LOG=$WORKDIR/chromium-$name.log
  log "screenshot $name: $url"
  chromium "$WORKDIR/$name.html" --dump-dom "$url" ||
    { cat "$CHROMIUM_LOG" >&2; die "Chromium failed on $url"; }
  grep -q -- "$must_show" "$WORKDIR/$name.html" ||
    die "$url rendered without '$must_show' (page text: $(sed -e 's/<[^>]*>/ /g' "$WORKDIR/$name.html" | tr -s ' \n' ' ' | cut -c1-300))"
  chromium /dev/null --screenshot="$out" "$url" ||
    { cat "$CHROMIUM_LOG" >&2; die "Chromium failed on $url"; }
  [ -s "$out" ] || { cat "$CHROMIUM_LOG" >&2; die "Chromium wrote no $out"; }
}
# Every page must show the flow's name; the trace views also the span
# names of the nested nodes (DraftRefunds is the third node, so the tree is
# expanded past the first level).
shoot jaeger-trace "$JAEGER_BASE/trace/$JAEGER_TRACE" DraftRefunds
shoot jaeger-search "$JAEGER_BASE/search?service=$SERVICE&limit=20&lookback=1h" TicketTriage
shoot phoenix-trace "$PHOENIX_BASE/projects/$PHOENIX_PROJECT/traces/$PHOENIX_TRACE" DraftRefunds

mkdir -p docs/images
for name in jaeger-trace jaeger-search phoenix-trace; do
  mv "$WORKDIR/shots/$name.png" "docs/images/$name.png"
  log "wrote docs/images/$name.png ($(wc -c <"docs/images/$name.png") bytes)"
done
log "done in $(($(date +%s) - START))s"
