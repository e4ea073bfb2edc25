from __future__ import annotations

from typing import Any

import pytest

from shipyard.data import Datasets
from shipyard.workspace import Workspace


@pytest.fixture
def datasets(workspace: Workspace) -> Datasets:
    return Datasets(workspace)


@pytest.fixture
def wine() -> Any:
    """sklearn's wine data (178 x 14) with the class as a string column."""
    from sklearn.datasets import load_wine

    bunch = load_wine(as_frame=True)
    frame = bunch.frame.copy()
    frame["target"] = [str(bunch.target_names[t]) for t in frame["target"]]
    return frame
