"""The daemon's bearer token: generated on first start into a 0600 file, read by local clients.

Owns the token file only; checking tokens on requests is ``server.security``'s job. The token
never goes into logs, argv or children's environment.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

__all__ = ["TOKEN_BYTES", "load_or_create_token", "read_token", "tokens_equal"]

TOKEN_BYTES = 32  # 256 bits of entropy, URL-safe text of 43 characters
_FILE_MODE = 0o600
_DIR_MODE = 0o700


def read_token(path: Path) -> str | None:
    """The token stored at ``path``, or ``None`` when there is none yet."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return token or None


def load_or_create_token(path: Path) -> str:
    """Return the stored token, creating it atomically (mode 0600) on first use."""
    existing = read_token(path)
    if existing is not None:
        if path.stat().st_mode & 0o077:
            # A token readable by others is no secret; tighten rather than refuse to start.
            path.chmod(_FILE_MODE)
        return existing
    path.parent.mkdir(parents=True, exist_ok=True, mode=_DIR_MODE)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
    try:
        os.write(fd, token.encode())
    finally:
        os.close(fd)
    try:
        # link() fails if another starter won the race; then its token is the one.
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    stored = read_token(path)
    if stored is None:  # pragma: no cover - only if someone empties the file between calls
        raise RuntimeError(f"token file {path} is empty")
    return stored


def tokens_equal(given: str, expected: str) -> bool:
    """Constant-time comparison, so timing does not leak the token."""
    return hmac.compare_digest(given.encode(), expected.encode())
