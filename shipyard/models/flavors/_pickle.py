"""Pickle files for the flavors that need them (sklearn, LightGBM's sklearn API, pyfunc).

Loading a pickle runs code chosen by whoever wrote the file: load only packages you trust.
The manifest marks such flavors ``runs_code_on_load: true``.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any


def dump(obj: Any, path: Path, *, module: Any = pickle) -> None:
    with open(path, "wb") as f:
        module.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)


def load(path: Path) -> Any:
    # cloudpickle writes ordinary pickles; the standard loader reads both.
    with open(path, "rb") as f:
        return pickle.load(f)
