#!/usr/bin/env bash
# Install a pinned MCP Inspector (npm: @modelcontextprotocol/inspector) into the project-local
# folder .tools/inspector and print the path of its `mcp-inspector` executable (the only line on
# stdout; progress goes to stderr). tests/server/test_mcp_inspector.py runs its CLI mode against
# a daemon on a loopback port; the tests themselves never download anything.
#
#   scripts/install-inspector.sh            # install (or reuse) the pinned version
#   MCP_INSPECTOR_VERSION=2.12.0 scripts/install-inspector.sh
#   MCP_INSPECTOR_TOOLS_DIR=/elsewhere scripts/install-inspector.sh
set -euo pipefail

VERSION="${MCP_INSPECTOR_VERSION:-2.12.0}"
PACKAGE="@modelcontextprotocol/inspector"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="${MCP_INSPECTOR_TOOLS_DIR:-$ROOT/.tools/inspector}"
BIN="$PREFIX/node_modules/.bin/mcp-inspector"
PKG_JSON="$PREFIX/node_modules/$PACKAGE/package.json"

log() { printf 'install-inspector: %s\n' "$*" >&2; }

installed_version() {
    [[ -f "$PKG_JSON" ]] || return 0
    node -p "require(process.argv[1]).version" "$PKG_JSON" 2>/dev/null || true
}

command -v npm >/dev/null || { log "npm not found; install Node.js (>= 20) first"; exit 1; }

if [[ -x "$BIN" ]] && [[ "$(installed_version)" == "$VERSION" ]]; then
    log "$PACKAGE $VERSION already installed in $PREFIX"
    printf '%s\n' "$BIN"
    exit 0
fi

mkdir -p "$PREFIX"
log "installing $PACKAGE@$VERSION into $PREFIX"
npm install --prefix "$PREFIX" --no-audit --no-fund --no-save --loglevel=error \
    "$PACKAGE@$VERSION" >&2

if [[ -x "$BIN" ]] && [[ "$(installed_version)" == "$VERSION" ]]; then
    printf '%s\n' "$BIN"
    exit 0
fi
log "$PACKAGE $VERSION did not install a working mcp-inspector under $PREFIX"
exit 1
