"""When the server requires credentials, and the first admin.

:func:`resolve_auth` turns ``Settings.auth`` (``auto``/``on``/``off``) and the address the server
listens on into ``on`` or ``off``: ``auto`` is off on a loopback address (only this machine can
connect) and on anywhere else. :func:`bootstrap_admin` makes sure a server with auth on has an
admin: from ``SHIPYARD_ADMIN_USERNAME`` / ``SHIPYARD_ADMIN_PASSWORD``, or else a new ``admin``
user with a one-time token for the operator to copy from the server's log.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from shipyard.config import Settings, admin_bootstrap

if TYPE_CHECKING:
    from collections.abc import Mapping

    from shipyard.workspace import Workspace


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_auth(settings: Settings, host: str) -> Settings:
    """``settings`` with ``auth`` resolved to ``on`` or ``off`` for a server on ``host``."""
    if settings.auth in ("on", "off"):
        return settings
    return settings.with_(auth="off" if is_loopback(host) else "on")


def insecure_warning(settings: Settings, host: str, port: int) -> str | None:
    """The warning to print when a server on ``host`` runs with auth off, else ``None``."""
    if settings.auth != "off" or is_loopback(host):
        return None
    return (
        f"Warning: listening on {host} makes this server reachable from other machines, and "
        f"authentication was turned off (--auth off / SHIPYARD_AUTH=off): anyone who can reach "
        f"port {port} can read and change everything. Remove --auth off unless the network is "
        "trusted."
    )


def bootstrap_admin(ws: Workspace, env: Mapping[str, str] | None = None) -> str | None:
    """Make sure the workspace has an admin; the one-time token to print if one was made."""
    from shipyard.security.service import Security

    username, password = admin_bootstrap(env)
    return Security.for_workspace(ws).bootstrap_admin(username, password)


def bootstrap_message(username: str, token: str) -> str:
    """What the server prints when it created the first admin with a one-time token."""
    return (
        f"Shipyard: created the admin user {username!r} with a one-time API token (shown only "
        f"now, store it safely):\n\n    {token}\n\nUse it as MLFLOW_TRACKING_TOKEN or "
        "SHIPYARD_HTTP_TOKEN, then create users and grants with `shipyard auth`. Set "
        "SHIPYARD_ADMIN_PASSWORD to choose the admin's password instead."
    )
