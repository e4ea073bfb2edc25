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
``SHIPYARD_AUTH``
    Server authentication: ``auto`` (default: off on 127.0.0.1/::1, required on any other
    address), ``on`` or ``off`` (off on another address starts with a warning; see
    ``docs/security.md``).
``SHIPYARD_AUTH_TRUSTED_HEADER`` / ``SHIPYARD_AUTH_TRUSTED_PROXIES``
    The header an OIDC reverse proxy puts the signed-in user in (e.g. ``X-Forwarded-User``), and
    the comma-separated addresses/networks of the proxies allowed to send it.
``SHIPYARD_PROTECTED_ALIASES``
    Aliases whose moves need the ``deployer`` role (default ``production,prod,champion``).
``SHIPYARD_MAX_REQUEST_BYTES`` / ``SHIPYARD_RATE_LIMIT``
    The largest request body the server accepts (bytes, default 0: no limit beyond each
    endpoint's own), and requests per minute per client address (default 0: no limit).
``SHIPYARD_AUTH_PUBLIC_PREDICTIONS``
    Whether a model server with auth on still answers ``/invocations``, ``/predict`` and the V2
    inference routes without credentials (default ``1``).
``SHIPYARD_ONLINE_STORE``
    The feature store's online store: ``sqlite:///path`` (default
    ``<home>/features/online.db``) or ``redis://host:port/db``.
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
    auth: str = "auto"
    auth_trusted_header: str | None = None
    auth_trusted_proxies: str = ""
    protected_aliases: str = "production,prod,champion"
    max_request_bytes: int = 0
    rate_limit_per_minute: int = 0
    auth_public_predictions: bool = True
    online_store_uri: str | None = None

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
            auth=_choice(env, "SHIPYARD_AUTH", ("auto", "on", "off"), "auto"),
            auth_trusted_header=env.get("SHIPYARD_AUTH_TRUSTED_HEADER") or None,
            auth_trusted_proxies=env.get("SHIPYARD_AUTH_TRUSTED_PROXIES", ""),
            protected_aliases=env.get("SHIPYARD_PROTECTED_ALIASES", "production,prod,champion"),
            max_request_bytes=_int(env, "SHIPYARD_MAX_REQUEST_BYTES", 0),
            rate_limit_per_minute=_int(env, "SHIPYARD_RATE_LIMIT", 0),
            auth_public_predictions=_bool(env, "SHIPYARD_AUTH_PUBLIC_PREDICTIONS", True),
            online_store_uri=env.get("SHIPYARD_ONLINE_STORE") or None,
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


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    raw = (env.get(name) or default).strip().lower()
    if raw not in choices:
        raise InvalidInput(f"{name}={raw!r} is not one of: {', '.join(choices)}.")
    return raw


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise InvalidInput(f"{name}={raw!r} is not a yes/no value; set it to 1 or 0.")


def admin_bootstrap(env: Mapping[str, str] | None = None) -> tuple[str, str | None]:
    """The admin user name and password the server bootstraps from ``SHIPYARD_ADMIN_USERNAME``
    (default ``admin``) and ``SHIPYARD_ADMIN_PASSWORD`` (kept out of :class:`Settings`, which
    is passed to worker processes in the environment and may be logged)."""
    env = os.environ if env is None else env
    return env.get("SHIPYARD_ADMIN_USERNAME") or "admin", env.get("SHIPYARD_ADMIN_PASSWORD") or None
