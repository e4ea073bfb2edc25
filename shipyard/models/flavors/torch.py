"""PyTorch ``nn.Module`` models, on CPU.

Two modes:

* ``TorchFlavor()`` (default) saves the whole module with ``torch.save``. Loading unpickles it
  (``weights_only=False``), which **runs code** from the package and needs the module's class
  importable under the same name: load only packages you trust.
* ``TorchFlavor(mode="state_dict", init_kwargs={...})`` saves only the weights plus the class's
  import path and constructor arguments. Loading imports the class, builds it with
  ``init_kwargs`` and reads the weights with ``weights_only=True`` (no pickle code runs), so the
  class must be importable where the model is loaded.

``predict`` runs the module in eval mode under ``torch.no_grad()`` and returns numpy arrays.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInput
from shipyard.models.flavors.base import Flavor, loaded, require

MODULE_FILE = "model.pt"
STATE_FILE = "state_dict.pt"


class TorchFlavor(Flavor):
    name = "torch"
    modules = ("torch",)
    runs_code_on_load = True

    def __init__(self, mode: str = "module", init_kwargs: dict[str, Any] | None = None) -> None:
        if mode not in ("module", "state_dict"):
            raise InvalidInput(f"TorchFlavor mode must be 'module' or 'state_dict', not {mode!r}.")
        self.mode = mode
        self.init_kwargs = dict(init_kwargs or {})

    def handles(self, model: Any) -> bool:
        nn = loaded("torch.nn")
        return nn is not None and isinstance(model, nn.Module)

    def save(self, model: Any, path: Path) -> dict[str, Any]:
        torch = require("torch", "torch")
        if self.mode == "state_dict":
            cls = type(model)
            if "<locals>" in cls.__qualname__ or cls.__module__ == "__main__":
                raise InvalidInput(
                    f"{cls.__qualname__} is defined in {cls.__module__}; state_dict mode needs a "
                    "class importable from a module. Move it into a module, or use mode='module'."
                )
            torch.save(model.state_dict(), path / STATE_FILE)
            return {
                "data": STATE_FILE,
                "mode": "state_dict",
                "class": f"{cls.__module__}:{cls.__qualname__}",
                "init_kwargs": self.init_kwargs,
                "runs_code_on_load": False,
            }
        torch.save(model, path / MODULE_FILE)
        return {"data": MODULE_FILE, "mode": "module", "serialization": "pickle"}

    def load(self, path: Path, config: dict[str, Any]) -> Any:
        torch = require("torch", "torch")
        data = path / config["data"]
        if config.get("mode") == "state_dict":
            module_name, _, qualname = str(config["class"]).partition(":")
            cls: Any = importlib.import_module(module_name)
            for part in qualname.split("."):
                cls = getattr(cls, part)
            model = cls(**config.get("init_kwargs", {}))
            model.load_state_dict(torch.load(data, map_location="cpu", weights_only=True))
        else:
            model = torch.load(data, map_location="cpu", weights_only=False)
        model.eval()
        return model

    def predict(self, model: Any, data: Any, config: dict[str, Any]) -> Any:
        torch = require("torch", "torch")
        with torch.no_grad():
            if isinstance(data, dict):
                out = model(**{k: torch.as_tensor(_writable(v)) for k, v in data.items()})
            else:
                if hasattr(data, "to_numpy"):
                    data = data.to_numpy()
                out = model(torch.as_tensor(_writable(data)))
        if isinstance(out, dict):
            return {k: v.detach().cpu().numpy() for k, v in out.items()}
        if isinstance(out, tuple | list):
            return [v.detach().cpu().numpy() for v in out]
        return out.detach().cpu().numpy()


def _writable(data: Any) -> Any:
    """An array torch can wrap without a warning (read-only arrays, as pandas returns, are
    copied)."""
    import numpy as np

    arr = np.asarray(data)
    return arr if arr.flags.writeable else arr.copy()
