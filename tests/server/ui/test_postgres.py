"""Every page over a PostgreSQL workspace: the UI calls the same services on either backend."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from shipyard.config import Settings
from shipyard.server.app import create_app
from shipyard.workspace import Workspace
from tests.server.asgi import ASGISyncTransport
from tests.server.ui._seed import seed

pytestmark = pytest.mark.postgres


def test_every_page_on_postgres(postgres_uri: str, tmp_path: Path) -> None:
    settings = Settings.from_env({}, home=tmp_path / "home", tracking_uri=postgres_uri)
    with Workspace.open(settings) as ws:
        s = seed(ws, runs=6, history=3000)
        app = create_app(ws)
        with httpx.Client(transport=ASGISyncTransport(app), base_url="http://testserver") as c:
            paths = [
                f"/experiments/{s.experiment_id}?filter=metrics.accuracy+%3E+0.7&order=metrics.loss+ASC",
                f"/runs/{s.long_run_id}",
                f"/runs/{s.long_run_id}/artifacts?path=data/sample.parquet",
                "/compare?" + "&".join(f"runs={r}" for r in s.run_ids[:3]),
                f"/models/{s.model}",
                f"/models/{s.model}/versions/2",
                f"/pipelines/runs/{s.pipeline_run_ids[0]}",
                f"/datasets/{s.dataset}/versions/1",
                f"/deployments/{s.deployment}",
                f"/monitoring/{s.monitor}",
            ]
            for path in paths:
                r = c.get(path)
                assert r.status_code == 200, (path, r.text[:1000])
            names = c.get(f"/experiments/{s.experiment_id}?order=metrics.loss+ASC").text
            assert names.index("cv-05") < names.index("cv-00")
            data = c.get(
                f"/ui/data/runs/{s.long_run_id}/metric",
                params={"key": "val_loss", "points": 100},
            ).json()
            assert data["total"] == 3000
            assert max(data["y"]) == 50.0
