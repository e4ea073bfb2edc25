"""Datasets: content-addressed versions, schemas, validation, mergeable profiles and skew.

Needs the ``data`` extra (pyarrow, numpy): ``pip install 'shipyard[data]'``. The module-level
API is :mod:`shipyard.data.datasets` (``shipyard.datasets``); :class:`Datasets` is the service.
"""

from __future__ import annotations

from shipyard.data import datasets
from shipyard.data.service import Datasets

__all__ = ["Datasets", "datasets"]
