"""Monitoring: drift tests and reports, monitors over serving logs, alerts and their actions.

* :func:`compare` compares two tables (or a stored profile and a table) column by column and
  returns a :class:`DriftReport`; tests are plugins (:func:`register_drift_test`).
* :mod:`shipyard.monitoring.predictions` reads the prediction log serving writes.

See ``docs/monitoring.md``.
"""

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
