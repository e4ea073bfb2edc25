"""Checks on the address a server is about to listen on, so a taken port or an unknown host is
one clear error instead of uvicorn's log lines and exit code 3."""

from __future__ import annotations

import errno
import socket

from shipyard.errors import InvalidInput


def ensure_can_listen(host: str, port: int) -> None:
    """Raise ``InvalidInput`` if ``host`` cannot be resolved, or another process listens on
    ``port`` there. (Probed with ``SO_REUSEADDR``, as uvicorn binds, so connections of a
    previous run in TIME_WAIT do not count; the server may still lose a race for the port.)"""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise InvalidInput(
            f"cannot listen on {host!r}: {exc.strerror or exc}. Give an address of this machine "
            "with --host (127.0.0.1, or 0.0.0.0 for every interface)."
        ) from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise InvalidInput(
                    f"port {port} on {host} is already in use (another server?); choose another "
                    "with --port, or stop the process that holds it."
                ) from None
            raise InvalidInput(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}. Give an address of this "
                "machine with --host and a free port with --port."
            ) from None
