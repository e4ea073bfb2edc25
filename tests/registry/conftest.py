"""Fixtures of the registry service tests: an embedded workspace with a logged model package."""

from __future__ import annotations

import io

import pytest

from shipyard.artifacts.cas import ContentAddressedRepository
from shipyard.registry import Registry
from shipyard.workspace import Workspace

PACKAGE = {"MLmodel": b"flavor: sklearn\n", "model.pkl": b"\x80\x04weights"}


def log_package(
    ws: Workspace, files: dict[str, bytes] | None = None, path: str = "model", run_id: str = ""
) -> str:
    """Upload a fake model package to a (new) run; returns the run id."""
    run_id = run_id or ws.store.create_run("0").info.run_id
    for name, data in (files or PACKAGE).items():
        ws.artifacts.upload(run_id, f"{path}/{name}", io.BytesIO(data))
    return run_id


def blobs(ws: Workspace) -> set[str]:
    assert isinstance(ws.artifacts, ContentAddressedRepository)
    return {digest for digest, _ in ws.artifacts.iter_blobs()}


@pytest.fixture
def registry(workspace: Workspace) -> Registry:
    return Registry(workspace)
