"""A serving endpoint: the loaded arms, the traffic table, and atomic switches between them.

:class:`Endpoint` holds one immutable :class:`ServingState` (the traffic table plus a loaded
:class:`Version` per arm) and replaces it with one attribute assignment. A request reads the
state once and finishes on what it read, so a switch never fails an in-flight request.

The endpoint is ready only once every arm has loaded and a warm-up prediction (the package's
input example, else one row built from the signature) has succeeded. A background thread polls
the registry every ``poll_interval_s`` seconds; when an alias (or ``latest``) resolves to
another version, that version loads and warms up in the background and the state is swapped.
:meth:`Endpoint.set_spec` does the same for new weights or arms.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput, ModelNotReady, ShipyardError
from shipyard.models.signature import Schema
from shipyard.serving.batching import MicroBatcher
from shipyard.serving.metrics import ServingMetrics
from shipyard.serving.traffic import Arm, DeploymentSpec, TrafficTable, model_name

if TYPE_CHECKING:
    from shipyard.models.package import LoadedModel
    from shipyard.workspace import Workspace

log = logging.getLogger("shipyard.serving")


@dataclass(frozen=True)
class Version:
    """One loaded model version of an arm."""

    arm: str
    uri: str
    resolved_uri: str
    model_name: str
    version: str
    model: LoadedModel
    batcher: MicroBatcher | None = None

    @property
    def schema(self) -> Schema | None:
        sig = self.model.signature
        return sig.inputs if sig is not None else None

    @property
    def labels(self) -> tuple[tuple[str, str], ...]:
        return (("model", self.model_name), ("version", self.version), ("arm", self.arm))


@dataclass(frozen=True)
class ServingState:
    """What is served now: read once per request, replaced whole."""

    spec: DeploymentSpec
    table: TrafficTable
    versions: dict[str, Version] = field(default_factory=dict)

    def pick(self, key: str | None) -> Version:
        return self.versions[self.table.choose(key)]

    def shadows(self) -> list[Version]:
        return [self.versions[a] for a in self.table.shadow]


@dataclass(frozen=True)
class BatchingOptions:
    """Micro-batching: off when ``max_wait_ms`` is 0 (the default)."""

    max_rows: int = 64
    max_wait_ms: float = 0.0

    @property
    def enabled(self) -> bool:
        return self.max_wait_ms > 0


class Endpoint:
    """Loads the arms of a spec, keeps them current, and answers which version serves a call."""

    def __init__(
        self,
        workspace: Workspace,
        spec: DeploymentSpec,
        *,
        metrics: ServingMetrics | None = None,
        batching: BatchingOptions | None = None,
    ) -> None:
        self.workspace = workspace
        self.metrics = metrics or ServingMetrics()
        self.batching = batching or BatchingOptions()
        self._spec = spec
        self._state: ServingState | None = None
        self._error: str | None = None
        self._switch_lock = threading.Lock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self.started_at = time.monotonic()
        self.ready_at: float | None = None

    # ---------------------------------------------------------------- state

    @property
    def name(self) -> str:
        return self._spec.name

    @property
    def ready(self) -> bool:
        return self._state is not None

    @property
    def error(self) -> str | None:
        return self._error

    def state(self) -> ServingState:
        state = self._state
        if state is None:
            detail = f" Loading failed: {self._error}" if self._error else ""
            raise ModelNotReady(
                f"The model of endpoint {self.name!r} is still loading; retry when /health "
                f"answers 200.{detail}"
            )
        return state

    # ---------------------------------------------------------------- loading

    def load(self) -> None:
        """Load every arm and warm it up, then start serving (blocks; raises on failure)."""
        try:
            state = self._build(self._spec, {})
        except ShipyardError as exc:
            self._error = exc.message
            raise
        except Exception as exc:
            self._error = f"{type(exc).__name__}: {exc}"
            raise
        self._state = state
        self.ready_at = time.monotonic()

    def start(self, *, background: bool = True) -> None:
        """Load (in a thread when ``background``) and start polling the registry."""

        def run() -> None:
            try:
                self.load()
            except Exception:
                log.exception("could not load endpoint %s", self.name)
                return
            self._poll_loop()

        if background:
            self._poller = threading.Thread(target=run, name="shipyard-serving", daemon=True)
            self._poller.start()
        else:
            self.load()
            self._poller = threading.Thread(
                target=self._poll_loop, name="shipyard-serving-poll", daemon=True
            )
            self._poller.start()

    def close(self) -> None:
        self._stop.set()
        state = self._state
        if state is not None:
            for v in state.versions.values():
                if v.batcher is not None:
                    v.batcher.close()

    def set_spec(self, spec: DeploymentSpec) -> None:
        """Serve ``spec`` (new weights, arms or shadows): versions not loaded yet load first; the
        switch is one assignment."""
        with self._switch_lock:
            current = self._state.versions if self._state else {}
            state = self._build(spec, current)
            self._spec = spec
            self._state = state

    def refresh(self) -> bool:
        """Re-resolve every arm's URI; load and switch to versions that moved. True if it did."""
        with self._switch_lock:
            current = self._state
            if current is None:
                return False
            moved = {
                arm.name
                for arm in (*current.spec.arms, *current.spec.shadow)
                if self._resolve(arm.model)[0] != current.versions[arm.name].resolved_uri
            }
            if not moved:
                return False
            keep = {k: v for k, v in current.versions.items() if k not in moved}
            state = self._build(current.spec, keep)
            self._state = state
            for name in moved:
                old = current.versions[name]
                log.info(
                    "endpoint %s arm %s: version %s -> %s",
                    self.name,
                    name,
                    old.version,
                    state.versions[name].version,
                )
            return True

    def _poll_loop(self) -> None:
        interval = self._spec.poll_interval_s
        if interval <= 0:
            return
        while not self._stop.wait(interval):
            try:
                self.refresh()
            except Exception:
                log.exception(
                    "endpoint %s: checking the registry for moved aliases failed", self.name
                )

    def _build(self, spec: DeploymentSpec, loaded: dict[str, Version]) -> ServingState:
        versions: dict[str, Version] = {}
        for arm in (*spec.arms, *spec.shadow):
            existing = loaded.get(arm.name)
            if existing is not None and existing.uri == arm.model:
                versions[arm.name] = existing
            else:
                versions[arm.name] = self._load_arm(arm)
        return ServingState(spec, TrafficTable.from_spec(spec), versions)

    def _resolve(self, uri: str) -> tuple[str, str, str]:
        """``(pinned URI, model name, version label)`` of an arm's URI."""
        if uri.startswith("models:/"):
            from shipyard.registry import Registry

            mv = Registry(self.workspace).resolve(uri)
            return f"models:/{mv.name}/{mv.version}", mv.name, str(mv.version)
        return uri, model_name(uri) or self._spec.name, "local"

    def _load_arm(self, arm: Arm) -> Version:
        from shipyard.models.sdk import load_model

        start = time.perf_counter()
        pinned, name, version = self._resolve(arm.model)
        model = load_model(pinned, workspace=self.workspace)
        if version == "local":
            version = model.content_hash[:12] or "local"
        warm_up(model)
        batcher = None
        if self.batching.enabled:
            batcher = MicroBatcher(
                model.predict,
                max_rows=self.batching.max_rows,
                max_wait_s=self.batching.max_wait_ms / 1000,
                metrics=self.metrics,
                labels=(("model", name), ("version", version), ("arm", arm.name)),
            )
        elapsed = time.perf_counter() - start
        self.metrics.load_time.observe(elapsed, (("model", name), ("version", version)))
        log.info("loaded %s (%s version %s) in %.2fs", arm.model, name, version, elapsed)
        return Version(arm.name, arm.model, pinned, name, version, model, batcher)


def warm_up(model: LoadedModel) -> None:
    """One prediction before serving: the input example, else a row built from the signature."""
    example = model.input_example()
    if example is None:
        example = example_row(model.signature.inputs if model.signature else None)
    if example is None:
        return
    try:
        model.predict(example)
    except Exception as exc:
        raise InvalidInput(
            f"The warm-up prediction of {model.uri} failed ({type(exc).__name__}: {exc}); the "
            "model cannot serve. Check the model with shipyard.load_model(...).predict(...)."
        ) from exc


def example_row(schema: Schema | None) -> Any:
    """One row of zeros (or empty strings) matching ``schema``."""
    if schema is None:
        return None
    import numpy as np

    if schema.columns:
        import pandas as pd

        values = {
            "boolean": False,
            "integer": np.int32(0),
            "long": np.int64(0),
            "float": np.float32(0),
            "double": 0.0,
            "string": "",
            "binary": b"",
            "datetime": np.datetime64(0, "ns"),
        }
        return pd.DataFrame({c.name: [values[c.type]] for c in schema.columns})
    arrays = {}
    for t in schema.tensors:
        shape = tuple(1 if d == -1 else d for d in t.shape)
        arrays[t.name] = np.zeros(shape, dtype=t.dtype if t.dtype != "str" else "U1")
    if len(arrays) == 1 and None in arrays:
        return arrays[None]
    return arrays
