"""Who may talk to the daemon: bearer token, Origin allow-list and Host check.

Owns the decisions only (pure functions over headers, plus one ASGI middleware for the Host
check); the WebSocket door calls :func:`authorize_websocket` *before* accepting, so a refused
client gets an HTTP 401/403 response and never an accepted-then-closed socket. Token storage is
``cc_executor.tokens``'. The token value never reaches a log line or an error message.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from loguru import logger
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from cc_executor.tokens import tokens_equal

__all__ = [
    "BEARER_SUBPROTOCOL_PREFIX",
    "SUBPROTOCOL",
    "Decision",
    "HostCheckMiddleware",
    "RequestGuard",
    "allowed_host_names",
    "allowed_origins",
    "authorize_websocket",
    "bearer_token_from_headers",
    "check_bearer",
    "host_allowed",
    "host_entry_values",
    "origin_allowed",
]

SUBPROTOCOL = "cc-executor"
BEARER_SUBPROTOCOL_PREFIX = "cc-executor.bearer."
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of a handshake check: accept (with a subprotocol) or refuse (status, reason)."""

    allowed: bool
    status: int = 200
    reason: str = ""
    subprotocol: str | None = None


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


_MAX_PORT = 65535


def _port(text: str, entry: str) -> int:
    if not text.isdigit() or not 0 < int(text) <= _MAX_PORT:
        raise ValueError(f"allowed host {entry!r}: the port must be a number from 1 to {_MAX_PORT}")
    return int(text)


def _ipv6(text: str, entry: str) -> str:
    address, _, zone = text.partition("%")
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        raise ValueError(f"allowed host {entry!r}: {text!r} is not an IPv6 address") from None
    return f"{address}%{zone}" if zone else address


def host_entry_values(entry: str, port: int) -> frozenset[str]:
    """The Host header values one ``allowed_hosts`` entry stands for.

    An entry that carries a port (``localhost:8001``, ``[::1]:8001``) is taken literally: the
    daemon is reached through a port it does not listen on itself (a container port published
    on another host port, a port forward), and only that port is opened. A bare name
    (``websocket``, ``::1``, ``[::1]``) is accepted alone and with the daemon's own ``port``; a
    bare IPv6 address is bracketed as Host headers write it. A malformed entry (``host:``,
    ``host:http``, ``[::1]x``) raises :class:`ValueError`, so a typo stops the daemon from
    starting instead of widening the guard.
    """
    name = entry.strip().lower()
    if not name:
        raise ValueError("allowed host entries must not be empty")
    if name.startswith("["):
        inner, bracket, rest = name[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"allowed host {entry!r}: expected [IPv6] or [IPv6]:port")
        host = f"[{_ipv6(inner, entry)}]"
        if rest:
            return frozenset({f"{host}:{_port(rest[1:], entry)}"})
    elif name.count(":") == 1:
        bare, _, given = name.partition(":")
        if not bare:
            raise ValueError(f"allowed host {entry!r}: no host name before the port")
        return frozenset({f"{bare}:{_port(given, entry)}"})
    elif ":" in name:
        host = f"[{_ipv6(name, entry)}]"
    else:
        host = name
    return frozenset({host, f"{host}:{port}"})


def allowed_host_names(bind_host: str, port: int, extra: Iterable[str] = ()) -> frozenset[str]:
    """Every Host header value accepted (DNS-rebinding guard).

    Loopback names and the bound name, with and without the daemon's ``port``, plus what each
    ``extra`` entry stands for (:func:`host_entry_values`: literally when it carries a port).
    A page at ``http://evil.example:8003`` resolving to 127.0.0.1 sends
    ``Host: evil.example:8003`` and is refused.
    """
    names = set(_LOOPBACK_NAMES)
    if bind_host not in ("0.0.0.0", "::", ""):  # noqa: S104 - compared, not bound
        names.add(bind_host)
    accepted: set[str] = set()
    for name in names:
        host = _bracket(name.lower())
        accepted.add(host)
        accepted.add(f"{host}:{port}")
    for entry in extra:
        accepted |= host_entry_values(entry, port)
    return frozenset(accepted)


def allowed_origins(bind_host: str, port: int, extra: Iterable[str] = ()) -> frozenset[str]:
    """Browser Origins accepted: pages served by the daemon itself, plus the configured list."""
    origins = {o.lower().rstrip("/") for o in extra}
    names = {*(_LOOPBACK_NAMES)}
    if bind_host not in ("0.0.0.0", "::", ""):  # noqa: S104 - compared, not bound
        names.add(bind_host)
    for name in names:
        for scheme in ("http", "https"):
            origins.add(f"{scheme}://{_bracket(name.lower())}:{port}")
    return frozenset(origins)


def host_allowed(host_header: str | None, accepted: frozenset[str]) -> bool:
    return host_header is not None and host_header.strip().lower() in accepted


def origin_allowed(origin: str | None, accepted: frozenset[str]) -> bool:
    """No Origin: a non-browser client (it still needs the token). ``null``: refused."""
    if origin is None:
        return True
    origin = origin.strip().lower()
    if origin == "null":
        return False
    return origin.rstrip("/") in accepted


def _offered_subprotocols(headers: Mapping[str, str]) -> list[str]:
    raw = headers.get("sec-websocket-protocol", "")
    return [p.strip() for p in raw.split(",") if p.strip()]


def bearer_token_from_headers(headers: Mapping[str, str]) -> str | None:
    """The token from ``Authorization: Bearer`` or a ``cc-executor.bearer.<token>`` subprotocol."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    for proto in _offered_subprotocols(headers):
        if proto.startswith(BEARER_SUBPROTOCOL_PREFIX):
            return proto[len(BEARER_SUBPROTOCOL_PREFIX) :] or None
    return None


def check_bearer(given: str | None, token: str | None) -> Decision:
    """The token check every door shares: 401 when none was given, 403 when it is wrong.

    ``token=None`` means auth is off. The comparison takes constant time.
    """
    if token is None:
        return Decision(True)
    if given is None:
        return Decision(False, 401, "missing bearer token")
    if not tokens_equal(given, token):
        return Decision(False, 403, "invalid bearer token")
    return Decision(True)


def authorize_websocket(
    headers: Mapping[str, str],
    *,
    token: str | None,
    hosts: frozenset[str],
    origins: frozenset[str],
) -> Decision:
    """Decide a WebSocket handshake from its headers. ``token=None`` means auth is off."""
    if not host_allowed(headers.get("host"), hosts):
        return Decision(False, 403, "Host header not allowed")
    if not origin_allowed(headers.get("origin"), origins):
        return Decision(False, 403, "Origin not allowed")
    checked = check_bearer(bearer_token_from_headers(headers), token)
    if not checked.allowed:
        return checked
    offered = _offered_subprotocols(headers)
    return Decision(True, subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)


class HostCheckMiddleware:
    """Refuse HTTP requests whose Host header is not one of ours (DNS-rebinding guard).

    Starlette's ``TrustedHostMiddleware`` splits the port off with ``split(":")``, which breaks
    on ``[::1]:8003``; this one compares the whole header against names with and without port.
    WebSocket scopes are checked by the WebSocket door itself so the refusal can carry 403.
    """

    def __init__(self, app: ASGIApp, *, hosts: frozenset[str]) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = None
            for key, value in scope.get("headers", ()):
                if key == b"host":
                    host = value.decode("latin-1")
                    break
            if not host_allowed(host, self.hosts):
                response = JSONResponse({"error": "Host header not allowed"}, status_code=403)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


# --- HTTP doors (added for the /mcp endpoint, server/mcp.py) -------------------------------------


class RequestGuard:
    """Wrap an ASGI app so every HTTP request passes the handshake rules first.

    The same decision as :func:`authorize_websocket` (Host, then Origin, then the bearer token),
    taken from the request's headers before the wrapped app sees a byte of the body. A refusal is
    401 (no token; with ``WWW-Authenticate: Bearer``) or 403 (bad Host, Origin or token) and a
    JSON ``{"error": reason}`` body that never contains the token.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None,
        hosts: frozenset[str],
        origins: frozenset[str],
    ) -> None:
        self.app = app
        self.token = token
        self.hosts = hosts
        self.origins = origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {
                key.decode("latin-1").lower(): value.decode("latin-1")
                for key, value in scope.get("headers", ())
            }
            decision = authorize_websocket(
                headers, token=self.token, hosts=self.hosts, origins=self.origins
            )
            if not decision.allowed:
                client = scope.get("client")
                logger.warning(
                    "refused {} {} from {}: {} ({})",
                    scope.get("method", "?"),
                    scope.get("path", "?"),
                    f"{client[0]}:{client[1]}" if client else "?",
                    decision.reason,
                    decision.status,
                )
                extra = {"WWW-Authenticate": "Bearer"} if decision.status == 401 else None
                response = JSONResponse(
                    {"error": decision.reason}, status_code=decision.status, headers=extra
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
