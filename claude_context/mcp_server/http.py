"""HTTP transport safety: loopback by default, Host/Origin checks, an optional bearer token.

Everything here uses what the SDK offers (``TransportSecuritySettings`` for DNS-rebinding
protection, ``TokenVerifier`` + ``AuthSettings`` for bearer auth, which answers 401 itself), so the
protocol handling stays the SDK's.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings

from claude_context.errors import ServeError

log = logging.getLogger(__name__)

__all__ = ["ServeError", "StaticTokenVerifier", "auth_settings", "check_bind", "security_settings"]

TOKEN_ENV = "CLAUDE_CONTEXT_TOKEN"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def is_loopback(host: str) -> bool:
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def check_bind(host: str, token: str | None, allow_remote: bool) -> None:
    """Refuse to expose an unauthenticated index (source code!) beyond this machine."""
    if is_loopback(host) or token or allow_remote:
        return
    raise ServeError(
        f"refusing to listen on {host} without a token: anyone who can reach it could read the indexed code. "
        f"Set {TOKEN_ENV}, bind 127.0.0.1, or pass --allow-remote to do it anyway"
    )


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def security_settings(host: str, extra_hosts: list[str] | None = None) -> TransportSecuritySettings:
    """Host/Origin allow-lists against DNS rebinding.

    On loopback only loopback names pass (the bound address among them, e.g. 127.0.0.2 or ::1). A
    specific remote address passes too; for a wildcard bind
    the names clients use are unknown, so the Host check is off unless ``extra_hosts`` names them.
    """
    hosts = [f"{h}:*" for h in LOOPBACK_HOSTS] + [*LOOPBACK_HOSTS]
    origins = [f"http://{h}:*" for h in LOOPBACK_HOSTS] + [f"http://{h}" for h in LOOPBACK_HOSTS]
    names = list(extra_hosts or [])
    if not is_wildcard(host) and host.strip("[]").lower() not in {h.strip("[]") for h in LOOPBACK_HOSTS}:
        names.append(_url_host(host.strip("[]")))
    for name in names:
        if ":" in name.strip("[]") and not name.startswith("["):
            name = f"[{name}]"
        hosts += [name, f"{name}:*"]
        origins += [f"http://{name}", f"http://{name}:*", f"https://{name}", f"https://{name}:*"]
    if is_wildcard(host) and not extra_hosts:
        log.warning(
            "listening on %s: Host/Origin checks are off (pass --allowed-host NAME to turn them on)", host
        )
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


class StaticTokenVerifier:
    """Accepts exactly one shared secret (constant-time compare); the SDK answers 401 otherwise."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    async def verify_token(self, token: str) -> AccessToken | None:
        if hmac.compare_digest(token.encode(), self._token):
            return AccessToken(token=token, client_id="claude-context", scopes=[])
        return None


def auth_settings(host: str, port: int) -> AuthSettings:
    """Resource-server-only settings: bearer checks, no OAuth endpoints, no metadata routes."""
    return AuthSettings(issuer_url=f"http://{_url_host(host)}:{port}", resource_server_url=None)  # type: ignore[arg-type]
