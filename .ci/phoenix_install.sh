#!/usr/bin/env bash
# Installs Arize Phoenix (PyPI `arize-phoenix`, pinned) into a venv, or
# reuses the venv when it already runs the pinned release. The one place the
# pin lives, for .ci/e2e_phoenix.sh and e2e/screenshots.sh.
#
#   bash .ci/phoenix_install.sh VENV_DIR
#
# Pinned: the checks read Phoenix's REST API, which a later release may change.
set -euo pipefail
VENV=${1:?usage: phoenix_install.sh VENV_DIR}
PHOENIX_PIN=20.26.1

log() { echo "phoenix-install: $*" >&2; }

phoenix_ok() {
  [ -x "$VENV/bin/phoenix" ] && "$VENV/bin/python" -c 'import phoenix.server.main' >/dev/null 2>&1 &&
    [ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("arize-phoenix"))')" = "$PHOENIX_PIN" ]
}
if phoenix_ok; then
  log "reusing the Phoenix $PHOENIX_PIN venv at $VENV"
  exit 0
fi
log "installing arize-phoenix $PHOENIX_PIN into $VENV (about 1 min, ~850 MB)"
rm -rf "$VENV"
mkdir -p "$(dirname "$VENV")"
install_start=$(date +%s)
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "arize-phoenix==$PHOENIX_PIN"
phoenix_ok || { log "arize-phoenix installed but 'phoenix' does not run"; exit 1; }
log "installed in $(($(date +%s) - install_start))s"
