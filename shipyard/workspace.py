"""The composition root: settings + metadata store + artifact repository.

A :class:`Workspace` is built once (by the SDK's default client, the CLI or the server) and handed
to whatever needs storage. It delegates; it holds no domain logic. Which backends it wires depends
only on the settings:

* tracking URI ``sqlite:///...`` / ``postgresql://...``: :class:`SqlTrackingStore`, with artifacts
  content-addressed in the byte store named by the artifact URI (a folder or ``s3://...``), and
  the model registry (:class:`SqlRegistryStore`) in the same database, on the same engine;
* tracking URI ``http(s)://...``: the REST store, REST artifact repository and REST registry
  store of a Shipyard server, sharing one HTTP connection pool.
"""

from __future__ import annotations

from dataclasses import dataclass

from shipyard.artifacts.base import ArtifactRepository
from shipyard.config import Settings
from shipyard.errors import ShipyardError
from shipyard.store.base import TrackingStore
from shipyard.store.datasets import DatasetStore
from shipyard.store.deployments import DeploymentStore
from shipyard.store.features import FeatureMetadataStore
from shipyard.store.logged_models import LoggedModelStore
from shipyard.store.monitoring import MonitorStore
from shipyard.store.pipelines import PipelineStore
from shipyard.store.registry import RegistryStore
from shipyard.store.security import SecurityStore


@dataclass
class Workspace:
    settings: Settings
    store: TrackingStore
    artifacts: ArtifactRepository
    registry_store: RegistryStore | None = None
    """The model registry's store; ``None`` where the workspace has none (see :attr:`registry`)."""
    logged_model_store: LoggedModelStore | None = None
    """MLflow 3 logged models' store (SQL workspaces only; see :attr:`logged_models`)."""
    dataset_store: DatasetStore | None = None
    """Registered datasets' store (SQL workspaces only; see :attr:`datasets`)."""
    pipeline_store: PipelineStore | None = None
    monitor_store: MonitorStore | None = None
    """Monitors, results, alert rules and alerts (SQL workspaces only; see :attr:`monitors`)."""
    security_store: SecurityStore | None = None
    """Users, tokens, grants and the audit log (SQL workspaces only; see :attr:`security`)."""
    """Pipeline runs, schedules and events (SQL workspaces only; see :attr:`pipelines`)."""
    feature_store: FeatureMetadataStore | None = None
    """Feature definitions, materializations and training-set lineage (SQL workspaces only;
    see :attr:`features`)."""

    @property
    def features(self) -> FeatureMetadataStore:
        """The feature store's metadata (the services use :mod:`shipyard.features` over it)."""
        if self.feature_store is None:
            raise ShipyardError(
                "This workspace has no feature metadata store: feature definitions live in a "
                "database. Open the workspace with a sqlite:/// or postgresql:// tracking URI; "
                "through a server, only online reads (get_online_features) are available."
            )
        return self.feature_store

    deployment_store: DeploymentStore | None = None
    """Deployments and the controller's decisions (SQL workspaces only; see :attr:`deployments`)."""

    @property
    def deployments(self) -> DeploymentStore:
        """The continuous-deployment store (the services use :mod:`shipyard.deploy` over it)."""
        if self.deployment_store is None:
            raise ShipyardError(
                "This workspace has no deployment store: deployments are driven against a "
                "database, not through a Shipyard server. Open the workspace with a sqlite:/// "
                "or postgresql:// tracking URI (the server's), or use the server's "
                "/api/v1/deployments routes."
            )
        return self.deployment_store

    @property
    def security(self) -> SecurityStore:
        """The security store (the services use :class:`shipyard.security.Security` over it)."""
        if self.security_store is None:
            raise ShipyardError(
                "This workspace has no security store: users, tokens and grants live in the "
                "server's database. Run `shipyard auth ...` on the server's host with its "
                "sqlite:/// or postgresql:// tracking URI."
            )
        return self.security_store

    @property
    def monitors(self) -> MonitorStore:
        """The monitoring store (the services use :mod:`shipyard.monitoring` over it)."""
        if self.monitor_store is None:
            raise ShipyardError(
                "This workspace has no monitoring store: monitors run against a database, not "
                "through a Shipyard server (the server has no monitoring API). Open the "
                "workspace with a sqlite:/// or postgresql:// tracking URI, or run "
                "`shipyard monitor` on the server's machine."
            )
        return self.monitor_store

    @property
    def pipelines(self) -> PipelineStore:
        """The pipelines' metadata store (the services use :mod:`shipyard.pipelines` over it)."""
        if self.pipeline_store is None:
            raise ShipyardError(
                "This workspace has no pipeline store: pipelines run against a database, not "
                "through a Shipyard server. Open the workspace with a sqlite:/// or "
                "postgresql:// tracking URI to run them."
            )
        return self.pipeline_store

    @property
    def datasets(self) -> DatasetStore:
        """The dataset store (the services use :class:`shipyard.data.Datasets` over it)."""
        if self.dataset_store is None:
            raise ShipyardError(
                "This workspace has no dataset store: datasets need a direct database URI for "
                "now (sqlite:/// or postgresql://); the server has no datasets API yet."
            )
        return self.dataset_store

    @property
    def logged_models(self) -> LoggedModelStore:
        """The logged-model store (what the MLflow-compatible server serves as logged models)."""
        if self.logged_model_store is None:
            raise ShipyardError(
                "This workspace has no logged-model store: logged models are served by a "
                "Shipyard server from its database, not through one. Open the workspace with a "
                "sqlite:/// or postgresql:// tracking URI to use them."
            )
        return self.logged_model_store

    @property
    def registry(self) -> RegistryStore:
        """The model registry's metadata store (the services use :class:`shipyard.registry.Registry`
        over it)."""
        if self.registry_store is None:
            raise ShipyardError(
                "This workspace was built without a model registry store; open it with "
                "Workspace.open(settings) to get one."
            )
        return self.registry_store

    @classmethod
    def open(cls, settings: Settings | None = None) -> Workspace:
        """Wire the stores the settings name (creating an embedded workspace on first use)."""
        settings = settings or Settings.from_env()
        if settings.is_remote:
            from shipyard._http import HttpClient
            from shipyard.artifacts.rest import RestArtifactRepository
            from shipyard.store.rest import RestTrackingStore
            from shipyard.store.rest_registry import RestRegistryStore

            http = HttpClient(settings.tracking_uri, token=settings.http_token)
            return cls(
                settings,
                RestTrackingStore(http),
                RestArtifactRepository(http),
                RestRegistryStore(http),
            )

        from shipyard.artifacts.cas import ContentAddressedRepository
        from shipyard.artifacts.registry import open_byte_store
        from shipyard.store.sql import SqlTrackingStore
        from shipyard.store.sql_registry import SqlRegistryStore

        settings.home.mkdir(parents=True, exist_ok=True)
        store = SqlTrackingStore(settings.tracking_uri, pool_size=settings.db_pool_size)
        try:
            blobs = open_byte_store(settings.artifact_uri, settings)
        except BaseException:
            store.close()
            raise
        artifacts = ContentAddressedRepository(store, blobs, settings.tmp_dir)
        from shipyard.store.sql_datasets import SqlDatasetStore
        from shipyard.store.sql_deployments import SqlDeploymentStore
        from shipyard.store.sql_features import SqlFeatureStore
        from shipyard.store.sql_logged_models import SqlLoggedModelStore
        from shipyard.store.sql_monitoring import SqlMonitorStore
        from shipyard.store.sql_pipelines import SqlPipelineStore
        from shipyard.store.sql_security import SqlSecurityStore

        return cls(
            settings,
            store,
            artifacts,
            SqlRegistryStore(store.database),
            logged_model_store=SqlLoggedModelStore(store.database),
            dataset_store=SqlDatasetStore(store.database),
            pipeline_store=SqlPipelineStore(store.database),
            monitor_store=SqlMonitorStore(store.database),
            security_store=SqlSecurityStore(store.database),
            feature_store=SqlFeatureStore(store.database),
            deployment_store=SqlDeploymentStore(store.database),
        )

    def close(self) -> None:
        self.artifacts.close()
        if self.registry_store is not None:
            self.registry_store.close()
        if self.logged_model_store is not None:
            self.logged_model_store.close()
        if self.dataset_store is not None:
            self.dataset_store.close()
        if self.pipeline_store is not None:
            self.pipeline_store.close()
        if self.monitor_store is not None:
            self.monitor_store.close()
        if self.security_store is not None:
            self.security_store.close()
        if self.feature_store is not None:
            self.feature_store.close()
        if self.deployment_store is not None:
            self.deployment_store.close()
        self.store.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
