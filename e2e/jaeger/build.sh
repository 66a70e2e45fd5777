#!/usr/bin/env bash
# Builds Jaeger v2 (github.com/jaegertracing/jaeger v1.75.0, cmd/jaeger) from
# this Go module's tool line into target/otel/ (git-ignored) and prints the
# binary's path; the build is reused while go.mod, go.sum and the Go version
# are unchanged. A test component of the end-to-end run, not part of the
# product.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="${POCKETFLOW_OTEL_BIN_DIR:-$here/../../target/otel}"
bin="$out/jaeger"
stamp=$(cd "$here" && { go version; cat go.mod go.sum build.sh; } | sha256sum | cut -d' ' -f1)
if [[ -x "$bin" && -f "$bin.inputs" && "$(cat "$bin.inputs")" == "$stamp" ]]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$out"
echo "building $bin (first build downloads and compiles Jaeger's modules: minutes)" >&2
# The version Jaeger's Makefile stamps from git, taken here from go.mod.
version=$(cd "$here" && go list -m -f '{{.Version}}' github.com/jaegertracing/jaeger)
(cd "$here" && CGO_ENABLED=0 go build -buildvcs=false -trimpath \
  -ldflags="-s -w -X github.com/jaegertracing/jaeger/internal/version.latestVersion=$version" \
  -o "$bin.tmp" github.com/jaegertracing/jaeger/cmd/jaeger)
mv "$bin.tmp" "$bin"
echo "$stamp" > "$bin.inputs"
echo "$bin"
