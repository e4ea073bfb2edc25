"""Monitoring: drift tests and reports, monitors over serving logs, alerts and their actions.

* :func:`compare` compares two tables (or a stored profile and a table) column by column and
  returns a :class:`DriftReport`; tests are plugins (:func:`register_drift_test`).
* :mod:`shipyard.monitoring.predictions` reads the prediction log serving writes.

See ``docs/monitoring.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - names for type checkers and IDEs
    from shipyard.monitoring.drift import (
        ColumnDrift,
        DriftReport,
        DriftTest,
        compare,
        default_test,
        drift_tests,
        register_drift_test,
    )
    from shipyard.monitoring.predictions import log_folder, read_predictions
    from shipyard.monitoring.samples import CategoricalSample, NumericSample

# Imported on first use: the model server reads and writes the prediction log through
# ``shipyard.monitoring.predictions`` and must not pay for scipy (the drift tests) at start-up.
_EXPORTS = {
    "CategoricalSample": "shipyard.monitoring.samples",
    "ColumnDrift": "shipyard.monitoring.drift",
    "DriftReport": "shipyard.monitoring.drift",
    "DriftTest": "shipyard.monitoring.drift",
    "NumericSample": "shipyard.monitoring.samples",
    "compare": "shipyard.monitoring.drift",
    "default_test": "shipyard.monitoring.drift",
    "drift_tests": "shipyard.monitoring.drift",
    "log_folder": "shipyard.monitoring.predictions",
    "read_predictions": "shipyard.monitoring.predictions",
    "register_drift_test": "shipyard.monitoring.drift",
}

__all__ = [
    "CategoricalSample",
    "ColumnDrift",
    "DriftReport",
    "DriftTest",
    "NumericSample",
    "compare",
    "default_test",
    "drift_tests",
    "log_folder",
    "read_predictions",
    "register_drift_test",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'shipyard.monitoring' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
