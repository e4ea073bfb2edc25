"""``shipyard.monitoring`` exports its names lazily, so that the model server, which writes the
prediction log through ``shipyard.monitoring.predictions``, does not import scipy."""

from __future__ import annotations

import subprocess
import sys

import shipyard.monitoring as monitoring


def test_every_export_resolves_and_all_is_complete() -> None:
    assert monitoring.__all__ == sorted(monitoring._EXPORTS)
    for name in monitoring.__all__:
        assert getattr(monitoring, name) is not None
    listed = dir(monitoring)
    assert set(monitoring.__all__) <= set(listed)
    assert {"__name__", "__path__", "predictions"} <= set(listed)  # the module's own names too


def test_the_prediction_log_does_not_import_the_drift_tests() -> None:
    code = (
        "import sys, shipyard.monitoring.predictions\n"
        "print(sorted(m for m in ('scipy', 'shipyard.monitoring.drift') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
