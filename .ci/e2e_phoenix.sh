#!/usr/bin/env bash
# End-to-end check against a real trace backend, Arize Phoenix (PyPI
# `arize-phoenix`), from outside the crate: the examples, configured only by
# environment variables, export over OTLP/HTTP protobuf and over OTLP/gRPC,
# each case into a Phoenix project of its own; the spans are then read back
# from Phoenix's REST API and checked:
#
# - quickstart: its one trace, by .ci/phoenix_check.py;
# - comprehensive_async_example: its three concurrent ResearchFlow runs as
#   three whole traces with their sessions and suspend/resume span events,
#   plus the FollowUps composition trace, by .ci/phoenix_check_async.py;
# - agent: its model calls as LLM spans with model, token counts, cost and
#   messages, its nodes as AGENT, TOOL and CHAIN, by .ci/phoenix_check_agent.py.
#
# Idempotent: Phoenix is installed into target/ci/phoenix-venv (reused when it
# already works), runs on loopback with a fresh SQLite db in a temp dir, and
# is always stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TERM_COLOR=never

VENV=$ROOT/target/ci/phoenix-venv
HEALTH_TIMEOUT=${PHOENIX_E2E_HEALTH_TIMEOUT:-120}
INGEST_TIMEOUT=${PHOENIX_E2E_INGEST_TIMEOUT:-60}
START=$(date +%s)

log() { echo "e2e-phoenix: $*" >&2; }
die() { log "FAIL: $*"; exit 1; }

# Nothing from the caller's environment may steer the exporter or Phoenix:
# the checks below rely on exactly the variables this script sets.
for var in $(compgen -e); do
  case $var in
    OTEL_* | LANGFUSE_* | POCKETFLOW_* | PHOENIX_*) unset "$var" ;;
  esac
done
# Everything talks to 127.0.0.1; never route that through a proxy.
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

command -v python3 >/dev/null 2>&1 || die "python3 not found"
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 ||
  die "python3 cannot create virtual environments (on Debian/Ubuntu: apt-get install python3-venv)"
command -v cargo >/dev/null 2>&1 || die "cargo not found"

# --- install (or reuse) Phoenix -------------------------------------------
bash .ci/phoenix_install.sh "$VENV" || die "could not install Arize Phoenix"
PHOENIX_VERSION=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("arize-phoenix"))')
log "Phoenix $PHOENIX_VERSION"

# --- start Phoenix ----------------------------------------------------------
# Two free loopback ports (HTTP+UI+OTLP/HTTP, and OTLP/gRPC, which Phoenix
# binds on all interfaces whatever PHOENIX_HOST says).
read -r HTTP_PORT GRPC_PORT < <(python3 - <<'EOF'
import socket
socks = []
for _ in range(2):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(*(s.getsockname()[1] for s in socks))
EOF
)
WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/e2e-phoenix.XXXXXX")
PHOENIX_LOG=$WORKDIR/phoenix.log
PHOENIX_PID=

cleanup() {
  local status=$?
  if [ -n "$PHOENIX_PID" ]; then
    # Phoenix runs in its own process group (setsid): stop that group only.
    kill -TERM -- "-$PHOENIX_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$PHOENIX_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-$PHOENIX_PID" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ] && [ -f "$PHOENIX_LOG" ]; then
    log "---- last 60 lines of the Phoenix log ----"
    tail -n 60 "$PHOENIX_LOG" >&2 || true
    log "---- end of Phoenix log ----"
  fi
  rm -rf "$WORKDIR"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "starting Phoenix on 127.0.0.1:$HTTP_PORT (OTLP/gRPC on :$GRPC_PORT), data in $WORKDIR"
PHOENIX_WORKING_DIR=$WORKDIR \
  PHOENIX_HOST=127.0.0.1 PHOENIX_PORT=$HTTP_PORT PHOENIX_GRPC_PORT=$GRPC_PORT \
  PHOENIX_TELEMETRY_ENABLED=false PHOENIX_ALLOW_EXTERNAL_RESOURCES=false PYTHONUNBUFFERED=1 \
  setsid "$VENV/bin/phoenix" serve >"$PHOENIX_LOG" 2>&1 </dev/null &
PHOENIX_PID=$!
PHOENIX_START=$(date +%s)

# Build the examples while Phoenix boots.
log "building the examples quickstart, comprehensive_async_example and agent"
cargo build --quiet --example quickstart --example comprehensive_async_example --example agent

BASE=http://127.0.0.1:$HTTP_PORT
# The build above may take a while on a fresh machine: the health wait
# starts after it.
deadline=$(($(date +%s) + HEALTH_TIMEOUT))
until python3 -c 'import sys, urllib.request as u; sys.exit(u.urlopen(sys.argv[1], timeout=2).status != 200)' \
  "$BASE/healthz" >/dev/null 2>&1; do
  kill -0 "$PHOENIX_PID" 2>/dev/null || die "Phoenix exited before it became healthy"
  [ "$(date +%s)" -lt "$deadline" ] || die "Phoenix not healthy after ${HEALTH_TIMEOUT}s"
  sleep 0.5
done
log "Phoenix healthy $(($(date +%s) - PHOENIX_START))s after start"

# --- export the examples' traces, check them ---------------------------------
SUMMARY=()

# run_case LABEL EXAMPLE CHECKER PROJECT ENV...: run EXAMPLE with ENV, then
# check PROJECT with .ci/CHECKER.
run_case() {
  local label=$1 example=$2 checker=$3 project=$4
  shift 4
  local err=$WORKDIR/$label.stderr
  log "[$label] cargo run --example $example with $*"
  if ! env OTEL_SERVICE_NAME="$project" "$@" cargo run --quiet --example "$example" \
    >"$WORKDIR/$label.stdout" 2>"$err"; then
    cat "$err" >&2
    die "[$label] $example failed"
  fi
  local line exported dropped
  line=$(grep -E 'spans exported, [0-9]+ dropped' "$err" | tail -n 1 || true)
  [ -n "$line" ] || { cat "$err" >&2; die "[$label] no 'N spans exported, M dropped' line on stderr"; }
  exported=$(sed -E 's/.* ([0-9]+) spans exported.*/\1/' <<<"$line")
  dropped=$(sed -E 's/.*exported, ([0-9]+) dropped.*/\1/' <<<"$line")
  log "[$label] $example says: $line"
  [ "$dropped" -eq 0 ] || die "[$label] exporter dropped $dropped spans"
  [ "$exported" -gt 0 ] || die "[$label] exporter exported no spans"
  if ! python3 "$ROOT/.ci/$checker" "$BASE" "$project" "$exported" "$INGEST_TIMEOUT"; then
    die "[$label] traces in Phoenix project '$project' failed the checks of .ci/$checker"
  fi
  SUMMARY+=("$label: $example, project $project, $exported spans exported and read back, PASS")
}

# Straight to Phoenix, as docs/configuration.md says: Phoenix shows span
# events, so the event observations meant for Langfuse are switched off.
HTTP_ENV=(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$HTTP_PORT" OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf
  POCKETFLOW_EVENT_OBSERVATIONS=false)
GRPC_ENV=(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$GRPC_PORT" POCKETFLOW_EVENT_OBSERVATIONS=false)
run_case http quickstart phoenix_check.py pocketflow-e2e-http "${HTTP_ENV[@]}"
run_case grpc quickstart phoenix_check.py pocketflow-e2e-grpc "${GRPC_ENV[@]}"
run_case async-http comprehensive_async_example phoenix_check_async.py pocketflow-e2e-async-http "${HTTP_ENV[@]}"
run_case async-grpc comprehensive_async_example phoenix_check_async.py pocketflow-e2e-async-grpc "${GRPC_ENV[@]}"
run_case agent-http agent phoenix_check_agent.py pocketflow-e2e-agent-http "${HTTP_ENV[@]}"
run_case agent-grpc agent phoenix_check_agent.py pocketflow-e2e-agent-grpc "${GRPC_ENV[@]}"

echo "== e2e Phoenix summary (arize-phoenix $PHOENIX_VERSION, $(($(date +%s) - START))s)"
for line in "${SUMMARY[@]}"; do echo "  $line"; done
echo "  result: PASS"
