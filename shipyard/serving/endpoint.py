"""A serving endpoint: the loaded arms, the traffic table, and atomic switches between them.

:class:`Endpoint` holds one immutable :class:`ServingState` (the traffic table plus a loaded
:class:`Version` per arm) and replaces it with one attribute assignment. A request reads the
state once and finishes on what it read, so a switch never fails an in-flight request.

The endpoint is ready only once every arm has loaded and a warm-up prediction (the package's
input example, else one row built from the signature) has succeeded. A background thread polls
the registry every ``poll_interval_s`` seconds; when an alias (or ``latest``) resolves to
another version, that version loads and warms up in the background and the state is swapped.
:meth:`Endpoint.set_spec` does the same for new weights or arms.

An endpoint serving a controller-managed deployment (``shipyard serve --deployment NAME``) is
given a ``traffic_source``: each poll also reads the arms and weights the continuous-deployment
controller persisted for it, and when their revision moved, switches to them with
:meth:`Endpoint.set_spec` (new versions load and warm up first; the switch is one assignment),
so canary weights change without a restart.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterable
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

TrafficSource = Callable[["Workspace"], "tuple[int, DeploymentSpec] | None"]
"""Reads a managed deployment's persisted traffic: ``(revision, spec)``, or ``None``."""


CLOSE_WAIT_S = 30.0
"""How long :meth:`Endpoint.close` waits for the registry poller to finish what it is doing."""
INLINE_PREDICT_BUDGET_S = 0.002
"""An unbatched prediction that usually takes longer than this runs in a worker thread."""


class CallCost:
    """A running estimate of how long one version's unbatched predictions take, per row.

    The server predicts on its event loop while a call is cheap (a thread hop would cost more
    than the model), and in a worker thread once it is not: a model that takes 100 ms must not
    hold up health checks, metrics scrapes and other requests. The estimate is a moving average
    of the model's own time per row (not the wait for a thread), times the rows of the request
    at hand, so it follows a model whose cost changes and a large request after small ones.
    Calls in worker threads take turns (:attr:`limiter`, one at a time, as on the loop): a
    model object need not be thread-safe, and one that uses every core is not oversubscribed.
    """

    __slots__ = ("limiter", "per_row")

    def __init__(self) -> None:
        self.per_row = 0.0
        self.limiter: Any = None
        """An ``anyio.CapacityLimiter(1)``, made on the event loop at the first thread call."""

    def inline(self, rows: int) -> bool:
        """Whether a call on ``rows`` rows should run on the event loop."""
        return self.per_row * max(rows, 1) <= INLINE_PREDICT_BUDGET_S

    def timed(self, fn: Callable[[Any], Any], data: Any, rows: int) -> Any:
        """``fn(data)``, its time per row folded into the estimate (a failure counts too)."""
        start = time.perf_counter()
        try:
            return fn(data)
        finally:
            took = (time.perf_counter() - start) / max(rows, 1)
            self.per_row += 0.25 * (took - self.per_row)


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
    fast_columns: tuple[str, ...] | None = None
    """Set when the model was checked at warm-up to give the same predictions on a float64
    matrix in these column order as on the table: numeric requests then skip pandas."""
    feature_service: str | None = None
    """The feature service the model declared (``log_model(..., feature_service=...)``): the
    server fetches its features for requests that carry only entity keys."""
    cost: CallCost = field(default_factory=CallCost, compare=False, repr=False)
    """How long this version's unbatched predictions take, which decides where they run."""

    def predict_matrix(self, matrix: Any) -> Any:
        """Predict on a float64 matrix in :attr:`fast_columns` order (the fast path)."""
        with warnings.catch_warnings():
            # scikit-learn warns that a matrix has no feature names; warm-up proved it equal
            warnings.simplefilter("ignore", UserWarning)
            return self.model.predict_unchecked(matrix)

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


BATCHING_MODES = ("auto", "on", "off")


@dataclass(frozen=True)
class BatchingOptions:
    """Micro-batching. ``mode="auto"`` (the default) turns it on for a version only when
    warm-up measured that one call on ``max_rows`` rows costs under a quarter of ``max_rows``
    single-row calls *and* a single-row call takes over 1 ms (below that, HTTP dominates and
    batching only adds latency). ``max_wait_ms`` is how long a batch waits for more requests
    once it has one: 0 takes only what queued while the previous batch ran."""

    mode: str = "auto"
    max_rows: int = 64
    max_wait_ms: float = 0.0

    def __post_init__(self) -> None:
        if self.mode not in BATCHING_MODES:
            raise InvalidInput(f"batching mode {self.mode!r}; use one of {BATCHING_MODES}.")
        if self.max_rows < 1 or self.max_wait_ms < 0:
            raise InvalidInput("max_rows must be 1 or more and max_wait_ms 0 or more.")


class Endpoint:
    """Loads the arms of a spec, keeps them current, and answers which version serves a call."""

    def __init__(
        self,
        workspace: Workspace | Callable[[], Workspace],
        spec: DeploymentSpec,
        *,
        metrics: ServingMetrics | None = None,
        batching: BatchingOptions | None = None,
        traffic_source: TrafficSource | None = None,
    ) -> None:
        self._traffic_source = traffic_source
        self.traffic_revision: int | None = None
        self._workspace = workspace if not callable(workspace) else None
        self._open_workspace = workspace if callable(workspace) else None
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
    def workspace(self) -> Workspace:
        """The workspace; opened on first use when a factory was given (a server of local
        model folders never opens the database)."""
        if self._workspace is None:
            assert self._open_workspace is not None
            self._workspace = self._open_workspace()
        return self._workspace

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
        """Stop polling (waiting up to :data:`CLOSE_WAIT_S` for a registry check under way, so
        nothing uses the workspace after it is closed); close the workspace if this endpoint
        opened it."""
        self._stop.set()
        poller = self._poller
        if poller is not None and poller is not threading.current_thread():
            poller.join(CLOSE_WAIT_S)
            if poller.is_alive():
                log.warning(
                    "endpoint %s: the registry poller was still busy (loading a model?) after "
                    "%.0f s; closing without it",
                    self.name,
                    CLOSE_WAIT_S,
                )
        if self._open_workspace is not None and self._workspace is not None:
            self._workspace.close()
            self._workspace = None
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
            _retire(current.values(), state)

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
            _retire(current.versions.values(), state)
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

    def sync_traffic(self) -> bool:
        """Switch to the managed deployment's persisted traffic when its revision moved (see
        the module docstring). True if it switched."""
        if self._traffic_source is None:
            return False
        found = self._traffic_source(self.workspace)
        if found is None or found[0] == self.traffic_revision:
            return False
        revision, spec = found
        self.set_spec(spec)
        self.traffic_revision = revision
        log.info("endpoint %s: traffic revision %s: %s", self.name, revision, spec.to_dict())
        return True

    def _poll_loop(self) -> None:
        interval = self._spec.poll_interval_s
        if interval <= 0:
            return
        while not self._stop.wait(interval):
            try:
                self.sync_traffic()
            except Exception:
                log.exception("endpoint %s: reading the deployment's traffic failed", self.name)
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
        model = load_model(
            pinned, workspace=self.workspace if pinned.startswith(("models:/", "runs:/")) else None
        )
        if version == "local":
            version = model.content_hash[:12] or "local"
        warm_up(model)
        fast = fast_columns(model)
        batcher = None
        if self.batching.mode == "on" or (
            self.batching.mode == "auto" and batching_pays(model, fast, self.batching.max_rows)
        ):
            probe = Version(arm.name, arm.model, pinned, name, version, model, None, fast)
            batcher = MicroBatcher(
                probe.predict_matrix if fast else model.predict,
                max_rows=self.batching.max_rows,
                max_wait_s=self.batching.max_wait_ms / 1000,
                metrics=self.metrics,
                labels=(("model", name), ("version", version), ("arm", arm.name)),
            )
        elapsed = time.perf_counter() - start
        self.metrics.load_time.observe(elapsed, (("model", name), ("version", version)))
        log.info("loaded %s (%s version %s) in %.2fs", arm.model, name, version, elapsed)
        service = model.manifest.metadata.get("feature_service")
        return Version(
            arm.name, arm.model, pinned, name, version, model, batcher, fast,
            service if isinstance(service, str) else None,
        )  # fmt: skip


def _retire(previous: Iterable[Version], state: ServingState) -> None:
    """Close the batchers of versions the new state no longer serves (after the switch: a
    request already on its way to one is still answered)."""
    kept = {id(v) for v in state.versions.values()}
    for v in previous:
        if id(v) not in kept and v.batcher is not None:
            v.batcher.close()


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


def _sample(model: LoadedModel) -> Any:
    example = model.input_example()
    if example is None:
        example = example_row(model.signature.inputs if model.signature else None)
    return example


def fast_columns(model: LoadedModel) -> tuple[str, ...] | None:
    """The signature's column names when every column is a required ``double`` and the model
    predicts the same on a float64 matrix in that order as on the table (checked here)."""
    import numpy as np
    import pandas as pd

    sig = model.signature
    if sig is None or not sig.inputs.columns:
        return None
    if any(c.type != "double" or c.optional for c in sig.inputs.columns):
        return None
    names = tuple(c.name for c in sig.inputs.columns)
    example = _sample(model)
    if not isinstance(example, pd.DataFrame):
        return None
    try:
        checked = model.predict(example)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            fast = model.predict_unchecked(example[list(names)].to_numpy(np.float64))
        same = np.array_equal(np.asarray(checked), np.asarray(fast))
    except Exception:
        return None
    return names if same else None


def batching_pays(model: LoadedModel, fast: tuple[str, ...] | None, max_rows: int) -> bool:
    """Whether one call on ``max_rows`` rows is much cheaper than that many single-row calls,
    and a single-row call slow enough for that to matter (see :class:`BatchingOptions`)."""
    import numpy as np
    import pandas as pd

    example = _sample(model)
    if not isinstance(example, pd.DataFrame) or example.empty:
        return False
    one = example.iloc[:1]
    many = pd.concat([one] * max_rows, ignore_index=True)
    if fast:
        one, many = one.to_numpy(np.float64), many.to_numpy(np.float64)

    def call(data: Any) -> float:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            model.predict_unchecked(data) if fast else model.predict(data)
        return time.perf_counter() - start

    try:
        t1 = sorted(call(one) for _ in range(5))[2]
        tn = sorted(call(many) for _ in range(3))[1]
    except Exception:
        return False
    return t1 > 0.001 and tn < 0.25 * max_rows * t1


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
