#!/usr/bin/env bash
# Builds the Jaeger UI (github.com/jaegertracing/jaeger-ui, the release with
# the same version as the Jaeger module in go.mod) into target/otel/jaeger-ui
# (git-ignored) and prints that directory, which Jaeger serves with
#   --set extensions::jaeger_query::ui::assets_path=<dir>
#
# Why: a Jaeger built from the Go module (build.sh) has only a placeholder
# page; Jaeger's releases embed a jaeger-ui build made with npm, which the Go
# module does not carry. The build is reused while the version and the Node
# version are unchanged.
#
# Needs git, Node 20.19+ with npm, and the npm registry. The source is cloned
# from JAEGER_UI_GIT (default the GitHub repository; any clone or mirror with
# the release tag works); the clone and its node_modules (~650 MB) live in a
# temp dir under target/otel that is removed on exit. npm keeps its download
# cache in its usual place (~/.npm).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="${POCKETFLOW_OTEL_BIN_DIR:-$here/../../target/otel}"
assets="$out/jaeger-ui"
version=$(awk '$1 == "github.com/jaegertracing/jaeger" { print $2 }' "$here/go.mod")
[[ -n "$version" ]] || { echo "build-ui.sh: no github.com/jaegertracing/jaeger version in $here/go.mod" >&2; exit 1; }
for tool in git node npm; do
  command -v "$tool" >/dev/null 2>&1 || { echo "build-ui.sh: $tool not found (the Jaeger UI is built with Node and npm)" >&2; exit 1; }
done
stamp=$(printf 'jaeger-ui %s\nnode %s\n' "$version" "$(node --version)" | sha256sum | cut -d' ' -f1)
if [[ -f "$assets/index.html" && -f "$assets.inputs" && "$(cat "$assets.inputs")" == "$stamp" ]]; then
  echo "$assets"
  exit 0
fi
source_git=${JAEGER_UI_GIT:-https://github.com/jaegertracing/jaeger-ui.git}
mkdir -p "$out"
work=$(mktemp -d "$out/jaeger-ui-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "building the Jaeger UI $version into $assets from $source_git (npm ci and a vite build: about 2 min)" >&2
git -c advice.detachedHead=false clone --quiet --depth 1 --branch "$version" "$source_git" "$work/src" 2>/dev/null ||
  git -c advice.detachedHead=false clone --quiet --branch "$version" "$source_git" "$work/src" >&2
# The release asks for Node 24 (engine-strict); its build runs on Node 20.19+
# too, which is what Debian and most CI images have.
if ! { (cd "$work/src" && npm ci --engine-strict=false --no-audit --no-fund) &&
  (cd "$work/src/packages/jaeger-ui" && npm run build); } >"$work/build.log" 2>&1; then
  tail -n 40 "$work/build.log" >&2
  echo "build-ui.sh: the Jaeger UI build failed (the last 40 lines of its log are above)" >&2
  exit 1
fi
[[ -f "$work/src/packages/jaeger-ui/build/index.html" ]] || { echo "build-ui.sh: the build made no index.html" >&2; exit 1; }
rm -rf "$assets"
mv "$work/src/packages/jaeger-ui/build" "$assets"
echo "$stamp" > "$assets.inputs"
echo "$assets"
