#!/usr/bin/env bash
# Validates docker-compose.yml with Docker Compose itself, as `docker compose
# up` and `docker compose --profile langfuse up` would read it: with no .env
# (every variable at its default) and with .env.example as the .env. `config`
# needs no Docker daemon.
#
# Uses the machine's `docker compose` plugin if there is one. Otherwise
# (Debian has no v2+ plugin package) it builds Docker Compose v5 from the Go
# module pinned in .ci/compose/go.mod into target/compose/ (git-ignored;
# reused while go.mod, go.sum and the Go version are unchanged; the first
# build downloads and compiles its modules: a few minutes) and runs that.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

compose=(docker compose)
if ! docker compose version >/dev/null 2>&1; then
  here="$root/.ci/compose"
  out="${POCKETFLOW_COMPOSE_BIN_DIR:-$root/target/compose}"
  bin="$out/docker-compose"
  stamp=$(cd "$here" && { go version; cat go.mod go.sum; } | sha256sum | cut -d' ' -f1)
  if [[ ! -x "$bin" || ! -f "$bin.inputs" || "$(cat "$bin.inputs")" != "$stamp" ]]; then
    mkdir -p "$out"
    version=$(cd "$here" && go list -m -f '{{.Version}}' github.com/docker/compose/v5)
    echo "compose_config: building Docker Compose $version into $bin" >&2
    (cd "$here" && CGO_ENABLED=0 go build -trimpath \
      -ldflags="-s -w -X github.com/docker/compose/v5/internal.Version=$version" \
      -o "$bin.tmp" github.com/docker/compose/v5/cmd)
    mv "$bin.tmp" "$bin"
    echo "$stamp" > "$bin.inputs"
  fi
  # The binary is the CLI plugin; run standalone, it takes the same
  # arguments as `docker compose`.
  compose=("$bin")
fi
"${compose[@]}" version

# Runs compose in a copy of the files it reads, so that a developer's own
# .env is neither read nor touched, and with only PATH and HOME from the
# caller's environment, so that only the files' variables decide.
run_in_copy() {
  local env_file="$1"
  shift
  local dir status=0
  dir=$(mktemp -d)
  cp docker-compose.yml "$dir/"
  cp -r collector-config "$dir/"
  if [[ -n "$env_file" ]]; then cp "$env_file" "$dir/.env"; fi
  (cd "$dir" && env -i PATH="$PATH" HOME="$HOME" "${compose[@]}" -f docker-compose.yml "$@") || status=$?
  rm -rf "$dir"
  return "$status"
}

check() {
  local what="$1" env_file="$2"
  shift 2
  if ! run_in_copy "$env_file" "$@" config -q; then
    echo "compose_config: FAILED: docker compose ${*:+$* }config ($what)" >&2
    exit 1
  fi
  echo "compose_config: ok: docker compose ${*:+$* }config ($what)"
}

check "no .env" ""
check "no .env" "" --profile langfuse
check ".env = .env.example" .env.example
check ".env = .env.example" .env.example --profile langfuse

# What each command starts: the collector and Jaeger by default; the
# Langfuse services as well with the profile.
expect_services() {
  local expected="$1"
  shift
  local services
  services=$(run_in_copy "" "$@" config --services | sort | tr '\n' ' ')
  if [[ "$services" != "$expected" ]]; then
    echo "compose_config: FAILED: docker compose ${*:+$* }up would start: $services (expected: $expected)" >&2
    exit 1
  fi
  echo "compose_config: ok: docker compose ${*:+$* }up starts: $services"
}
expect_services "jaeger otel-collector "
expect_services "clickhouse jaeger langfuse-web langfuse-worker minio otel-collector postgres redis " --profile langfuse
