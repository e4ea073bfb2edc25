"""Byte stores chosen by the scheme of the artifact URI.

Built in: a folder path or ``file://`` URI (:class:`~shipyard.artifacts.local.LocalByteStore`) and
``s3://bucket/prefix`` (:class:`~shipyard.artifacts.s3.S3ByteStore`). Each backend's module is
imported only when its scheme is opened, so an unused backend's dependencies need not be
installed. A plugin adds a scheme with :func:`register_byte_store`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from shipyard.artifacts.base import ByteStore
from shipyard.config import Settings
from shipyard.errors import InvalidInput

ByteStoreFactory = Callable[[str, Settings], ByteStore]
"""Makes a byte store from the full artifact URI and the settings."""


def _local(uri: str, settings: Settings) -> ByteStore:
    from shipyard.artifacts.local import LocalByteStore

    if "://" not in uri:
        return LocalByteStore(Path(uri))
    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost"):
        raise InvalidInput(
            f"artifact URI {uri!r} names the host {parts.netloc!r}; file:// URIs must be local. "
            "Write it as file:///absolute/path, or use a plain folder path."
        )
    return LocalByteStore(Path(url2pathname(unquote(parts.path))))


def _s3(uri: str, settings: Settings) -> ByteStore:
    from shipyard.artifacts.s3 import S3ByteStore

    return S3ByteStore(uri, endpoint_url=settings.s3_endpoint_url)


_FACTORIES: dict[str, ByteStoreFactory] = {"file": _local, "s3": _s3}


def register_byte_store(scheme: str, factory: ByteStoreFactory) -> None:
    """Open URIs ``<scheme>://...`` with ``factory`` (replacing any earlier one for the scheme)."""
    if not scheme.isidentifier() or scheme != scheme.lower():
        raise InvalidInput(
            f"artifact URI scheme {scheme!r} must be lowercase letters, digits or '_', "
            "such as 'gs' or 'azure_blob'."
        )
    _FACTORIES[scheme] = factory


def known_schemes() -> list[str]:
    """The schemes :func:`open_byte_store` accepts, sorted."""
    return sorted(_FACTORIES)


def open_byte_store(uri: str, settings: Settings) -> ByteStore:
    """The byte store ``uri`` names: a folder path, ``file:///path``, ``s3://bucket/prefix`` or a
    registered plugin scheme. ``InvalidInput`` for an unknown scheme, listing the known ones."""
    if not uri:
        raise InvalidInput(
            "the artifact URI is empty; set SHIPYARD_ARTIFACT_URI to a folder path or "
            "s3://bucket/prefix, or unset it to use the workspace's artifacts folder."
        )
    if "://" not in uri:
        return _local(uri, settings)
    scheme = uri.split("://", 1)[0].lower()
    factory = _FACTORIES.get(scheme)
    if factory is None:
        known = ", ".join(f"{s}://" for s in known_schemes())
        raise InvalidInput(
            f"artifact URI {uri!r} has an unknown scheme {scheme!r}. Use a folder path or one of: "
            f"{known} (for example s3://bucket/prefix), or install the plugin that provides it."
        )
    return factory(uri, settings)
