#!/usr/bin/env bash
# Builds the PocketFlow collector distribution into target/otel/ (git-ignored)
# and prints the binary's path. The build is reused while its inputs (the Go
# sources, go.mod, go.sum and the Go version) are unchanged. Go's own caches
# (GOMODCACHE, GOCACHE) live outside the checkout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="${POCKETFLOW_OTEL_BIN_DIR:-$here/../target/otel}"
bin="$out/pocketflow-otelcol"
stamp=$(cd "$here" && { go version; cat go.mod go.sum ./*.go build.sh; } | sha256sum | cut -d' ' -f1)
if [[ -x "$bin" && -f "$bin.inputs" && "$(cat "$bin.inputs")" == "$stamp" ]]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$out"
echo "building $bin (first build downloads and compiles the collector modules: minutes)" >&2
(cd "$here" && CGO_ENABLED=0 go build -buildvcs=false -trimpath -ldflags='-s -w' -o "$bin.tmp" .)
mv "$bin.tmp" "$bin"
echo "$stamp" > "$bin.inputs"
echo "$bin"
