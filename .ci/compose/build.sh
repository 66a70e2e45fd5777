#!/usr/bin/env bash
# Builds Docker Compose v5 from the Go module pinned in this directory's
# go.mod into target/compose/ (git-ignored) and prints the binary's path.
# The build is reused while go.mod, go.sum and the Go version are unchanged;
# the first build downloads and compiles its modules (a few minutes).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="${POCKETFLOW_COMPOSE_BIN_DIR:-$here/../../target/compose}"
bin="$out/docker-compose"
stamp=$(cd "$here" && { go version; cat go.mod go.sum; } | sha256sum | cut -d' ' -f1)
if [[ -x "$bin" && -f "$bin.inputs" && "$(cat "$bin.inputs")" == "$stamp" ]]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$out"
version=$(cd "$here" && go list -m -f '{{.Version}}' github.com/docker/compose/v5)
echo "building Docker Compose $version into $bin" >&2
(cd "$here" && CGO_ENABLED=0 go build -trimpath \
  -ldflags="-s -w -X github.com/docker/compose/v5/internal.Version=$version" \
  -o "$bin.tmp" github.com/docker/compose/v5/cmd)
mv "$bin.tmp" "$bin"
echo "$stamp" > "$bin.inputs"
echo "$bin"
