from __future__ import annotations

from collections.abc import Iterator

import pytest

from shipyard.config import Settings
from shipyard.tracking import fluent
from shipyard.tracking.client import Client


@pytest.fixture
def client(settings: Settings) -> Iterator[Client]:
    c = Client(settings=settings)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def sdk(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The module-level API pointed at a fresh embedded workspace."""
    fluent._reset_for_tests()
    monkeypatch.setenv("SHIPYARD_HOME", str(settings.home))
    try:
        yield
    finally:
        fluent._reset_for_tests()
