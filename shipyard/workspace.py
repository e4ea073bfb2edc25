"""The composition root: settings + metadata store + artifact repository.

A :class:`Workspace` is built once (by the SDK's default client, the CLI or the server) and handed
to whatever needs storage. It delegates; it holds no domain logic. Which backends it wires depends
only on the settings:

* tracking URI ``sqlite:///...`` / ``postgresql://...``: :class:`SqlTrackingStore`, with artifacts
  content-addressed in the byte store named by the artifact URI (a folder or ``s3://...``);
* tracking URI ``http(s)://...``: the REST store and REST artifact repository of a Shipyard server.
"""

from __future__ import annotations

from dataclasses import dataclass

from shipyard.artifacts.base import ArtifactRepository
from shipyard.config import Settings
from shipyard.store.base import TrackingStore


@dataclass
class Workspace:
    settings: Settings
    store: TrackingStore
    artifacts: ArtifactRepository

    @classmethod
    def open(cls, settings: Settings | None = None) -> Workspace:
        """Wire the stores the settings name (creating an embedded workspace on first use)."""
        settings = settings or Settings.from_env()
        if settings.is_remote:
            from shipyard._http import HttpClient
            from shipyard.artifacts.rest import RestArtifactRepository
            from shipyard.store.rest import RestTrackingStore

            http = HttpClient(settings.tracking_uri, token=settings.http_token)
            return cls(settings, RestTrackingStore(http), RestArtifactRepository(http))

        from shipyard.artifacts.cas import ContentAddressedRepository
        from shipyard.artifacts.registry import open_byte_store
        from shipyard.store.sql import SqlTrackingStore

        settings.home.mkdir(parents=True, exist_ok=True)
        store = SqlTrackingStore(settings.tracking_uri, pool_size=settings.db_pool_size)
        blobs = open_byte_store(settings.artifact_uri, settings)
        return cls(settings, store, ContentAddressedRepository(store, blobs, settings.tmp_dir))

    def close(self) -> None:
        self.artifacts.close()
        self.store.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
