"""Errors only the client raises: the connection itself failed (never a JSON-RPC error).

All derive from :class:`cc_executor.errors.ServiceError` ("infrastructure failed"), so callers
that catch the project's tree catch these too. Messages never contain the token.
"""

from __future__ import annotations

from cc_executor.errors import ServiceError

__all__ = ["ClientClosed", "ConnectionLost", "DaemonUnreachable", "HandshakeRefused"]


class DaemonUnreachable(ServiceError):
    """Nothing answered at the daemon's address (not started, wrong port, or timed out)."""


class HandshakeRefused(ServiceError):
    """The daemon answered but refused the WebSocket handshake (401/403: token, Origin, Host)."""


class ConnectionLost(ServiceError):
    """The connection dropped and could not be re-established within the allowed attempts."""


class ClientClosed(ServiceError):
    """The client was closed while this call or stream was still waiting."""
