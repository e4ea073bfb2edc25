"""Run ids never name another owner of the artifact index."""

from __future__ import annotations

import pytest

from shipyard import errors, validation
from shipyard.store import datasets, logged_models, pipelines, registry


def test_every_owner_prefix_of_the_stores_is_refused_as_a_run_id() -> None:
    prefixes = {
        registry.STORAGE_OWNER_PREFIX,
        logged_models.MODEL_ID_PREFIX,
        datasets.STORAGE_OWNER_PREFIX,
        pipelines.STEP_OWNER_PREFIX,
    }
    assert prefixes == set(validation.NON_RUN_OWNERS)
    for prefix in prefixes:
        with pytest.raises(errors.InvalidInput, match="is not a run id"):
            validation.run_id(prefix + "0" * 32)


def test_run_ids_pass() -> None:
    assert validation.run_id("0123456789abcdef0123456789abcdef") == (
        "0123456789abcdef0123456789abcdef"
    )
