"""Fixtures for the model tests: real datasets shipped with scikit-learn, the SDK pointed at a
fresh workspace, and a helper that loads packages in a fresh Python process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard.config import Settings
from shipyard.models.flavors import base as flavor_base
from shipyard.tracking import fluent

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def cancer() -> tuple[pd.DataFrame, pd.Series]:
    """Breast-cancer features (30 float64 columns) and the 0/1 target."""
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X, y


@pytest.fixture(scope="session")
def diabetes() -> tuple[pd.DataFrame, pd.Series]:
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return X, y


@pytest.fixture
def sdk(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The module-level API pointed at a fresh embedded workspace."""
    fluent._reset_for_tests()
    monkeypatch.setenv("SHIPYARD_HOME", str(settings.home))
    try:
        yield settings
    finally:
        fluent._reset_for_tests()


@pytest.fixture
def fresh_flavors(monkeypatch: pytest.MonkeyPatch) -> flavor_base.FlavorRegistry:
    """A private flavor registry for the test (user registrations do not leak)."""
    registry = flavor_base.FlavorRegistry()
    monkeypatch.setattr(flavor_base, "_default", registry)
    return registry


_LOADER = textwrap.dedent(
    """
    import json, pickle, sys, warnings
    warnings.simplefilter("error")
    import numpy as np
    import shipyard

    jobs = json.load(open(sys.argv[1]))
    result = {}
    for name, job in jobs.items():
        try:
            with open(job["input"], "rb") as f:
                data = pickle.load(f)
            model = shipyard.load_model(job["uri"])
            pred = model.predict(data)
            np.save(job["output"], np.asarray(pred))
            result[name] = {"ok": True, "flavor": model.manifest.predict_flavor}
        except Exception as exc:
            result[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(result))
    """
)


def load_in_fresh_process(
    jobs: dict[str, tuple[str, Any]], workdir: Path, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Load each ``uri`` in a new interpreter and predict on its input.

    ``jobs`` maps a name to ``(uri, input)``. Returns, per name, ``{"ok": True, "pred": array}``
    or ``{"ok": False, "error": "..."}``.
    """
    import pickle

    spec = {}
    for name, (uri, data) in jobs.items():
        inp = workdir / f"{name}.input.pkl"
        with open(inp, "wb") as f:
            pickle.dump(data, f)
        spec[name] = {"uri": uri, "input": str(inp), "output": str(workdir / f"{name}.pred.npy")}
    spec_file = workdir / "jobs.json"
    spec_file.write_text(json.dumps(spec))
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    child_env.update(env or {})
    child_env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    out = subprocess.run(
        [sys.executable, "-c", _LOADER, str(spec_file)],
        capture_output=True,
        text=True,
        cwd=workdir,
        env=child_env,
        timeout=240,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    for name, item in result.items():
        if item["ok"]:
            item["pred"] = np.load(spec[name]["output"], allow_pickle=False)
    return result
