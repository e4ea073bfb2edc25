"""What a serving endpoint serves: the deployment spec and the traffic table built from it.

A :class:`DeploymentSpec` names the arms (each a model URI with a weight), the shadow arms (which
get a copy of every request; their predictions are logged, never returned) and the header whose
value keeps a caller on one arm (sticky routing). It is read from a small YAML or JSON file:

.. code-block:: yaml

    name: churn
    sticky_header: X-Customer-Id     # optional
    arms:
      - {name: champion, model: "models:/churn@champion", weight: 90}
      - {name: challenger, model: "models:/churn@challenger", weight: 10}
    shadow:
      - {name: candidate, model: "models:/churn/7"}

A :class:`TrafficTable` is the immutable routing decision made from the weights. The endpoint
holds one and replaces it whole (one attribute assignment), so a weight change is atomic; the
continuous-deployment controller will build tables the same way.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInput

DEFAULT_STICKY_HEADER = "X-Shipyard-Key"


@dataclass(frozen=True, slots=True)
class Arm:
    """One model URI served under ``name`` with a traffic ``weight`` (any non-negative number;
    shares are weight / total)."""

    name: str
    model: str
    weight: float = 100.0


@dataclass(frozen=True, slots=True)
class DeploymentSpec:
    """The arms, shadow arms, sticky header and registry poll interval of one endpoint."""

    name: str
    arms: tuple[Arm, ...]
    shadow: tuple[Arm, ...] = ()
    sticky_header: str = DEFAULT_STICKY_HEADER
    poll_interval_s: float = 5.0

    def __post_init__(self) -> None:
        if not self.arms:
            raise InvalidInput(
                f"Deployment {self.name!r} has no arms; list at least one under `arms:`."
            )
        names = [a.name for a in (*self.arms, *self.shadow)]
        if len(set(names)) != len(names):
            raise InvalidInput(f"Deployment {self.name!r} names an arm twice: {names}.")
        for arm in self.arms:
            if not math.isfinite(arm.weight) or arm.weight < 0:  # NaN compares False to all
                raise InvalidInput(
                    f"Arm {arm.name!r} has weight {arm.weight}; use a finite number, 0 or more."
                )
        if sum(a.weight for a in self.arms) <= 0:
            raise InvalidInput(
                f"Deployment {self.name!r} has weights that sum to 0; give one arm a weight."
            )
        if self.poll_interval_s < 0:
            raise InvalidInput(f"poll_interval_s={self.poll_interval_s}; use 0 (off) or more.")

    @classmethod
    def single(cls, model_uri: str, *, poll_interval_s: float = 5.0) -> DeploymentSpec:
        """One model URI taking all traffic, named after the registered model when it has one."""
        return cls(
            name=model_name(model_uri) or "model",
            arms=(Arm("main", model_uri, 100.0),),
            poll_interval_s=poll_interval_s,
        )

    @classmethod
    def from_dict(cls, raw: object, *, source: str = "the deployment spec") -> DeploymentSpec:
        if not isinstance(raw, Mapping):
            raise InvalidInput(f"{source} must be a mapping with `name` and `arms`.")
        unknown = set(raw) - {"name", "arms", "shadow", "sticky_header", "poll_interval_s"}
        if unknown:
            raise InvalidInput(
                f"{source} has unknown keys {sorted(unknown)}; use name, arms, shadow, "
                "sticky_header and poll_interval_s."
            )
        arms = tuple(_arm(a, source, shadow=False) for a in _list(raw.get("arms"), "arms", source))
        shadow = tuple(
            _arm(a, source, shadow=True) for a in _list(raw.get("shadow", []), "shadow", source)
        )
        name = raw.get("name") or (model_name(arms[0].model) if arms else None) or "model"
        try:
            poll = float(raw.get("poll_interval_s", 5.0))
        except (TypeError, ValueError):
            raise InvalidInput(f"{source}: poll_interval_s must be a number of seconds.") from None
        return cls(
            name=str(name),
            arms=arms,
            shadow=shadow,
            sticky_header=str(raw.get("sticky_header") or DEFAULT_STICKY_HEADER),
            poll_interval_s=poll,
        )

    @classmethod
    def from_file(cls, path: str | Path) -> DeploymentSpec:
        """Read a spec from a ``.json``, ``.yaml`` or ``.yml`` file."""
        from shipyard.validation import spec_file

        file = Path(path)
        raw = spec_file(file, "deployment spec")
        return cls.from_dict(raw, source=str(file))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "arms": [{"name": a.name, "model": a.model, "weight": a.weight} for a in self.arms],
            "shadow": [{"name": a.name, "model": a.model} for a in self.shadow],
            "sticky_header": self.sticky_header,
            "poll_interval_s": self.poll_interval_s,
        }


def _list(value: Any, key: str, source: str) -> Sequence[Any]:
    if not isinstance(value, list):
        raise InvalidInput(f"{source}: `{key}` must be a list of {{name, model, weight}} items.")
    return value


def _arm(raw: Any, source: str, *, shadow: bool) -> Arm:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("model"), str):
        raise InvalidInput(
            f"{source}: each arm is a mapping with `model` (a model URI or folder), `name` and "
            f"`weight`; got {raw!r}."
        )
    model = raw["model"]
    name = str(raw.get("name") or model)
    try:
        weight = 0.0 if shadow else float(raw.get("weight", 100.0))
    except (TypeError, ValueError):
        raise InvalidInput(f"{source}: arm {name!r} has a weight that is not a number.") from None
    return Arm(name, model, weight)


def model_name(uri: str) -> str | None:
    """The registered model's name in a ``models:/`` URI, else ``None``."""
    if not uri.startswith("models:/"):
        return None
    rest = uri[len("models:/") :].lstrip("/")
    return rest.split("@", 1)[0].split("/", 1)[0] or None


@dataclass(frozen=True)
class TrafficTable:
    """Cumulative weights over the live arms: ``choose(key)`` picks one.

    Without a key the pick is random; with one it is a hash of the key, so a caller sending the
    same key stays on the same arm while the weights stay the same.
    """

    arms: tuple[str, ...]
    weights: tuple[float, ...]
    shadow: tuple[str, ...] = ()
    _bounds: tuple[float, ...] = field(init=False, repr=False, default=())

    def __post_init__(self) -> None:
        total = sum(self.weights)
        running, bounds = 0.0, []
        for w in self.weights:
            running += w / total
            bounds.append(running)
        bounds[-1] = 1.0
        object.__setattr__(self, "_bounds", tuple(bounds))

    @classmethod
    def from_spec(cls, spec: DeploymentSpec) -> TrafficTable:
        return cls(
            tuple(a.name for a in spec.arms),
            tuple(a.weight for a in spec.arms),
            tuple(a.name for a in spec.shadow),
        )

    def share(self, arm: str) -> float:
        """The fraction of traffic ``arm`` gets."""
        total = sum(self.weights)
        return sum(w for a, w in zip(self.arms, self.weights, strict=True) if a == arm) / total

    def choose(self, key: str | None = None) -> str:
        if len(self.arms) == 1:
            return self.arms[0]
        if key:
            digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
            u = int.from_bytes(digest, "big") / 2**64
        else:
            u = random.random()
        for arm, bound in zip(self.arms, self._bounds, strict=True):
            if u < bound:
                return arm
        return self.arms[-1]
