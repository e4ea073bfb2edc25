"""``shipyard gc``."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shipyard.errors import NotFound
from shipyard.workspace import Workspace
from tests.cli.conftest import Seeded, Shipyard


def test_nothing_to_collect(shipyard: Shipyard, seeded: Seeded) -> None:
    out = shipyard("gc", "--older-than", "0").stdout
    assert out.startswith("Purged 0 experiments, 0 runs and 0 logged models deleted at any time")


def test_recent_deletions_are_kept_by_default(
    shipyard: Shipyard, seeded: Seeded, open_workspace: Callable[[], Workspace]
) -> None:
    shipyard("runs", "delete", seeded.run_b)
    data = shipyard.json("gc")
    assert data["runs_purged"] == 0
    assert data["older_than_seconds"] == 30 * 86400
    assert open_workspace().store.get_run(seeded.run_b)


def test_dry_run_then_collect(
    shipyard: Shipyard, seeded: Seeded, open_workspace: Callable[[], Workspace]
) -> None:
    shipyard("runs", "delete", seeded.run_a)
    shipyard("experiments", "delete", "vision")

    dry = shipyard.json("gc", "--older-than", "0", "--dry-run")
    assert dry["dry_run"] is True
    assert (dry["experiments_purged"], dry["runs_purged"]) == (1, 1)
    assert open_workspace().store.get_run(seeded.run_a)
    assert (
        "Dry run: would purge 1 experiment, 1 run and 0 logged models"
        in shipyard("gc", "--older-than", "0", "--dry-run").stdout
    )

    out = shipyard("gc", "--older-than", "0").stdout
    assert out.startswith("Purged 1 experiment, 1 run and 0 logged models deleted at any time")
    store = open_workspace().store
    with pytest.raises(NotFound):
        store.get_run(seeded.run_a)
    assert store.get_experiment_by_name("vision") is None
    assert shipyard.json("gc", "--older-than", "0")["runs_purged"] == 0


@pytest.mark.parametrize("age", ["12h", "30d", "45m", "90s", "2w", "0", "1.5h"])
def test_durations_accepted(shipyard: Shipyard, age: str) -> None:
    shipyard("gc", "--older-than", age, "--dry-run")


def test_bad_duration_is_a_usage_error(shipyard: Shipyard) -> None:
    result = shipyard("gc", "--older-than", "soon", expect=2)
    assert "not a duration" in result.stderr
    assert "Traceback" not in result.output


def test_remote_is_refused(shipyard: Shipyard) -> None:
    line = shipyard.fails("--tracking-uri", "http://127.0.0.1:9", "gc")
    assert "is a Shipyard server" in line
