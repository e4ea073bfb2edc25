"""Traffic weights a spec file can carry but a traffic table cannot split on."""

from __future__ import annotations

import pytest

from shipyard.errors import InvalidInput
from shipyard.serving.traffic import DeploymentSpec


@pytest.mark.parametrize("weight", ["nan", "inf", ".nan"])
def test_a_non_finite_weight_is_refused_with_the_arm_named(weight: str) -> None:
    raw = {
        "name": "churn",
        "arms": [
            {"name": "a", "model": "models:/churn/1", "weight": weight},
            {"name": "b", "model": "models:/churn/2", "weight": 10},
        ],
    }
    if weight == ".nan":  # what YAML's .nan reads as
        raw["arms"][0]["weight"] = float("nan")  # type: ignore[index]
    # was: accepted, and every request went to the last arm
    with pytest.raises(InvalidInput, match=r"Arm 'a' has weight .*finite"):
        DeploymentSpec.from_dict(raw)
