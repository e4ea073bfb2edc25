"""UI fixtures: a seeded workspace served in-process (``ui``), and a real ``shipyard server``
process over a seeded workspace for the browser tests (``ui_server``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from shipyard.config import Settings
from shipyard.entities import Metric
from shipyard.server.app import create_app
from shipyard.workspace import Workspace
from tests.server.asgi import ASGISyncTransport
from tests.server.conftest import start_server, stop_server
from tests.server.ui._seed import Seeded, seed


@dataclass
class SeededClient:
    client: httpx.Client
    ws: Workspace
    seeded: Seeded


@pytest.fixture
def ui(workspace: Workspace) -> Iterator[SeededClient]:
    """An in-process client over a freshly seeded workspace."""
    seeded = seed(workspace)
    transport = ASGISyncTransport(create_app(workspace))
    with httpx.Client(transport=transport, base_url="http://testserver") as client:
        yield SeededClient(client, workspace, seeded)


@dataclass
class UiServer:
    url: str
    seeded: Seeded
    log: Path
    wide_run_ids: list[str]
    """The 50 runs of a second experiment: the most the compare view takes."""


WIDE_RUNS = 50


def seed_wide(ws: Workspace) -> list[str]:
    """An experiment of :data:`WIDE_RUNS` runs, each with two params and a 20-step history."""
    exp = ws.store.create_experiment("wide-compare")
    run_ids = []
    for i in range(WIDE_RUNS):
        run_id = ws.store.create_run(exp, run_name=f"wide-{i:02d}").info.run_id
        ws.store.log_batch(
            run_id,
            [Metric("loss", 1.0 / (1 + s + i), 1_760_000_000_000 + s * 1000, s) for s in range(20)],
            params={"lr": str(0.001 * (i + 1)), "depth": str(2 + i % 5)},
        )
        run_ids.append(run_id)
    return run_ids


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    """A real server process (uvicorn, what ``shipyard server`` runs) on a free loopback port
    over a seeded workspace of its own."""
    root = tmp_path_factory.mktemp("ui-server")
    with Workspace.open(Settings.from_env({}, home=root / "home")) as ws:
        seeded = seed(ws)
        wide = seed_wide(ws)
    server = start_server(root, timeout=60)
    try:
        yield UiServer(server.url, seeded, server.log, wide)
    finally:
        stop_server(server.process)
