#!/usr/bin/env bash
# Validates docker-compose.yml with Docker Compose itself, as `docker compose
# up` and `docker compose --profile langfuse up` would read it: with no .env
# (every variable at its default) and with .env.example as the .env. `config`
# needs no Docker daemon.
#
# Uses the machine's `docker compose` plugin if there is one. Otherwise
# (Debian has no v2+ plugin package) it runs the Docker Compose that
# .ci/compose/build.sh builds from its Go module.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

compose=(docker compose)
if ! docker compose version >/dev/null 2>&1; then
  # The binary is the CLI plugin; run standalone, it takes the same
  # arguments as `docker compose`.
  compose=("$(.ci/compose/build.sh)")
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
