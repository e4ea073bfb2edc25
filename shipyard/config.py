"""Settings: read once from the environment (and CLI options) into a frozen object.

Nothing else in Shipyard reads ``os.environ`` for configuration; the settings object is passed
explicitly to the workspace, the server and the CLI.

Variables:

``SHIPYARD_HOME``
    The workspace folder (default ``./.shipyard``). Holds ``shipyard.db`` and ``artifacts/``.
``SHIPYARD_TRACKING_URI``
    Where metadata lives: ``sqlite:///path``, ``postgresql://...`` or ``http(s)://server``.
    Default: the SQLite database inside the workspace folder.
``SHIPYARD_ARTIFACT_URI``
    Where artifact bytes live: a folder path, ``file:///...`` or ``s3://bucket/prefix``.
    Default: ``<home>/artifacts``. Ignored when the tracking URI is a server.
``SHIPYARD_S3_ENDPOINT_URL``
    Endpoint of an S3-compatible service (MinIO, Ceph, moto...). Credentials come from the usual
    AWS variables.
``SHIPYARD_HTTP_TOKEN``
    Bearer token sent to a Shipyard server.
``SHIPYARD_DB_POOL_SIZE``
    Connections kept per process for PostgreSQL (default 5).
``SHIPYARD_METRIC_FLUSH_INTERVAL`` / ``SHIPYARD_METRIC_FLUSH_SIZE``
    How often (seconds, default 1.0) and at what size (default 1000) buffered metrics are written.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from shipyard.errors import InvalidInput

DB_FILENAME = "shipyard.db"
KNOWN_TRACKING_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg", "http", "https")


@dataclass(frozen=True, slots=True)
class Settings:
    home: Path
    tracking_uri: str
    artifact_uri: str
    s3_endpoint_url: str | None = None
    http_token: str | None = None
    db_pool_size: int = 5
    metric_flush_interval: float = 1.0
    metric_flush_size: int = 1000
    gc_grace_seconds: int = 3600

    @property
    def is_remote(self) -> bool:
        return self.tracking_uri.startswith(("http://", "https://"))

    @property
    def tmp_dir(self) -> Path:
        """Scratch space for spooling uploads (on the same disk as local artifacts)."""
        return self.home / "tmp"

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        home: str | os.PathLike[str] | None = None,
        tracking_uri: str | None = None,
        artifact_uri: str | None = None,
    ) -> Settings:
        """Build settings from ``env`` (default: the process environment) and explicit overrides."""
        env = os.environ if env is None else env
        home_path = Path(home or env.get("SHIPYARD_HOME") or ".shipyard").expanduser().absolute()
        uri = (
            tracking_uri
            or env.get("SHIPYARD_TRACKING_URI")
            or f"sqlite:///{home_path / DB_FILENAME}"
        )
        art = artifact_uri or env.get("SHIPYARD_ARTIFACT_URI") or str(home_path / "artifacts")
        settings = cls(
            home=home_path,
            tracking_uri=normalize_tracking_uri(uri),
            artifact_uri=art,
            s3_endpoint_url=env.get("SHIPYARD_S3_ENDPOINT_URL") or None,
            http_token=env.get("SHIPYARD_HTTP_TOKEN") or None,
            db_pool_size=_int(env, "SHIPYARD_DB_POOL_SIZE", 5),
            metric_flush_interval=_float(env, "SHIPYARD_METRIC_FLUSH_INTERVAL", 1.0),
            metric_flush_size=_int(env, "SHIPYARD_METRIC_FLUSH_SIZE", 1000),
            gc_grace_seconds=_int(env, "SHIPYARD_GC_GRACE_SECONDS", 3600),
        )
        return settings

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def normalize_tracking_uri(uri: str) -> str:
    """Check the scheme of a tracking URI and return it in canonical form."""
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    if scheme == "postgres":
        return "postgresql" + uri[len("postgres") :]
    if scheme not in KNOWN_TRACKING_SCHEMES:
        raise InvalidInput(
            f"Tracking URI {uri!r} has an unknown scheme {scheme!r}. Use one of: "
            "sqlite:///path/to/shipyard.db, postgresql://user@host/db, http(s)://server:port."
        )
    return uri


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(f"{name}={raw!r} is not an integer; set it to a whole number.") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError:
        raise InvalidInput(f"{name}={raw!r} is not a number; set it to e.g. 1.5.") from None
