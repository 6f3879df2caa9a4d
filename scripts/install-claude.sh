#!/usr/bin/env bash
# Install a pinned Claude Code CLI into the project-local folder .tools/claude and print the
# path of its `claude` executable (the only line on stdout; progress goes to stderr).
#
#   scripts/install-claude.sh            # install (or reuse) the pinned version
#   CLAUDE_CODE_VERSION=2.1.330 scripts/install-claude.sh
#   CLAUDE_TOOLS_DIR=/elsewhere scripts/install-claude.sh
#
# The npm package `@anthropic-ai/claude-code` ships no JavaScript CLI any more: it has one
# optionalDependency per platform (`@anthropic-ai/claude-code-linux-x64`, ...) holding a native
# binary, and a postinstall (`node install.cjs`) that hard-links or copies that binary over the
# placeholder `bin/claude.exe`. If npm skipped the postinstall (ignore-scripts, allowScripts),
# we run it ourselves, and as a last resort point at the platform package's binary.
# Everything comes from the npm registry; nothing else is downloaded.
set -euo pipefail

VERSION="${CLAUDE_CODE_VERSION:-2.1.332}"
PACKAGE="@anthropic-ai/claude-code"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="${CLAUDE_TOOLS_DIR:-$ROOT/.tools/claude}"
BIN="$PREFIX/node_modules/.bin/claude"
PKG_DIR="$PREFIX/node_modules/$PACKAGE"

log() { printf 'install-claude: %s\n' "$*" >&2; }

# `claude --version` prints "2.1.332 (Claude Code)".
version_of() { timeout 30 "$1" --version </dev/null 2>/dev/null | awk '{print $1; exit}'; }

works() { [[ -x "$1" ]] && [[ "$(version_of "$1" || true)" == "$VERSION" ]]; }

if works "$BIN"; then
    log "claude $VERSION already installed in $PREFIX"
    printf '%s\n' "$BIN"
    exit 0
fi

command -v npm >/dev/null || { log "npm not found; install Node.js (>= 20) first"; exit 1; }

mkdir -p "$PREFIX"
log "installing $PACKAGE@$VERSION into $PREFIX"
# The package declares engines.node >= 22; the native binary does not use node, so node 20
# only earns an EBADENGINE warning.
npm install --prefix "$PREFIX" --no-audit --no-fund --no-save --loglevel=error \
    "$PACKAGE@$VERSION" >&2

if ! works "$BIN" && [[ -f "$PKG_DIR/install.cjs" ]]; then
    log "placeholder binary found; running the package's postinstall by hand"
    (cd "$PKG_DIR" && node install.cjs) >&2 || true
fi

if works "$BIN"; then
    printf '%s\n' "$BIN"
    exit 0
fi

# Last resort: the platform package's binary itself.
for native in "$PREFIX"/node_modules/"$PACKAGE"-linux-*/claude "$PREFIX"/node_modules/"$PACKAGE"-darwin-*/claude; do
    if works "$native"; then
        log "using the platform binary directly"
        printf '%s\n' "$native"
        exit 0
    fi
done

log "claude $VERSION did not install a working binary under $PREFIX"
exit 1
