"""Authoring: ``@step`` and ``@pipeline`` on plain functions, and the graph a pipeline builds.

A pipeline's body runs once, when the pipeline is built with its parameters; each step call in
it adds a node and returns a :class:`StepOutput` (a reference to the value the step will return),
which later step calls take as inputs. That is how steps connect::

    @step
    def load(n: int) -> list[int]: ...

    @pipeline
    def demo(n: int = 10):
        total(square.map(load(n)))        # fan-out over a list known now, fan-in as a list

Options: ``@step(retries=2, retry_delay_s=1, timeout_s=60, cache=False, reads=["data/*.csv"],
track=True)``; per call, ``step.options(name=..., when=ref)`` (or ``with when(ref):``) runs a step
only if the referenced output is truthy. Called outside a pipeline, a step is its plain function.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import inspect
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInput, ShipyardError

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.[]")
_local = threading.local()
FAILURE_POLICIES = ("continue", "cancel")


@dataclass(frozen=True)
class StepOutput:
    """What a step call inside a pipeline returns: a reference to the step's future output.

    ``out["key"]`` / ``out[0]`` refer to one item of it (a dict key, a list index)."""

    node: str
    path: tuple[Any, ...] = ()

    def __getitem__(self, key: Any) -> StepOutput:
        return StepOutput(self.node, (*self.path, key))

    def __bool__(self) -> bool:
        raise InvalidInput(
            f"the output of step {self.node!r} is not known while the pipeline is built, so it "
            "can't decide an `if`; run the next step conditionally with "
            "step.options(when=output) or `with when(output):`."
        )

    def __iter__(self) -> Iterator[Any]:
        raise InvalidInput(
            f"the output of step {self.node!r} is not known while the pipeline is built, so it "
            "can't be iterated; fan out over a list the pipeline knows (a parameter), or pass "
            "the whole output to one step."
        )


@dataclass(frozen=True)
class Condition:
    """Run a step only when ``predicate(value of ref)`` is true (``bool`` by default)."""

    ref: StepOutput
    predicate: Callable[[Any], bool] = bool


@dataclass
class Node:
    """One step call in a built pipeline."""

    name: str
    step: Step
    arguments: dict[str, Any]
    when: Condition | None = None
    cache: bool = True

    @property
    def upstream(self) -> set[str]:
        found = {r.node for r in refs_in(self.arguments)}
        if self.when is not None:
            found.add(self.when.ref.node)
        return found


@dataclass
class Graph:
    """The nodes a pipeline built, in the order their calls ran (a topological order)."""

    pipeline: Pipeline
    params: dict[str, Any]
    nodes: dict[str, Node] = field(default_factory=dict)

    def downstream(self, name: str) -> set[str]:
        """``name`` and every node that depends on it, directly or not."""
        found = {name}
        for node in self.nodes.values():  # calls come in dependency order
            if node.upstream & found:
                found.add(node.name)
        return found


def refs_in(value: Any) -> Iterator[StepOutput]:
    """Every :class:`StepOutput` in an argument (nested in lists, tuples and dicts)."""
    if isinstance(value, StepOutput):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from refs_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from refs_in(item)


def resolve(value: Any, lookup: Callable[[StepOutput], Any]) -> Any:
    """``value`` with every reference replaced by ``lookup(ref)``."""
    if isinstance(value, StepOutput):
        return lookup(value)
    if isinstance(value, list):
        return [resolve(v, lookup) for v in value]
    if isinstance(value, tuple):
        return tuple(resolve(v, lookup) for v in value)
    if isinstance(value, dict):
        return {k: resolve(v, lookup) for k, v in value.items()}
    return value


def select(value: Any, path: Sequence[Any]) -> Any:
    """The item of ``value`` that a reference's ``path`` names."""
    for key in path:
        value = value[key]
    return value


# ---------------------------------------------------------------------------- steps


class Step:
    """A function marked with ``@step``: a unit of a pipeline, cached and retried on its own."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        retries: int = 0,
        retry_delay_s: float = 1.0,
        backoff: float = 2.0,
        timeout_s: float | None = None,
        cache: bool = True,
        reads: Sequence[Any] = (),
        track: bool = False,
    ) -> None:
        if retries < 0 or retry_delay_s < 0 or backoff < 1:
            raise InvalidInput(
                f"step {fn.__name__!r}: retries and retry_delay_s must be >= 0 and backoff >= 1 "
                f"(got retries={retries}, retry_delay_s={retry_delay_s}, backoff={backoff})."
            )
        if timeout_s is not None and timeout_s <= 0:
            raise InvalidInput(f"step {fn.__name__!r}: timeout_s must be positive.")
        self.fn = fn
        self.name = check_name(name or fn.__name__, "step")
        self.retries = retries
        self.retry_delay_s = retry_delay_s
        self.backoff = backoff
        self.timeout_s = timeout_s
        self.cache = cache
        self.reads = tuple(reads)
        self.track = track
        self.signature = inspect.signature(fn)
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        return f"<Step {self.name}>"

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled by reference (process pools and Ray import the module again).
        module = self.fn.__module__
        source = getattr(sys.modules.get(module), "__file__", None)
        return (load_attribute, (module, self.fn.__qualname__, source))

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1 = the first retry)."""
        return float(self.retry_delay_s * self.backoff ** (attempt - 1))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        graph = _building()
        if graph is None:
            return self.fn(*args, **kwargs)
        return _add(graph, self, args, kwargs, name=None, when=_current_when(), cache=None)

    def options(
        self,
        *,
        name: str | None = None,
        when: StepOutput | Condition | None = None,
        cache: bool | None = None,
    ) -> Callable[..., StepOutput]:
        """This step called with per-call options: ``train.options(when=ok)(data)``."""

        def call(*args: Any, **kwargs: Any) -> StepOutput:
            graph = _building()
            if graph is None:
                raise InvalidInput(
                    f"step {self.name!r}: options() only apply inside a @pipeline body."
                )
            return _add(
                graph, self, args, kwargs, name=name, when=when or _current_when(), cache=cache
            )

        return call

    def map(self, items: Sequence[Any], **kwargs: Any) -> list[StepOutput]:
        """Fan out: one call per item (as the first argument), named ``step[0]``, ``step[1]``...
        Pass the returned list to another step to fan in."""
        graph = _building()
        if graph is None:
            return [self.fn(item, **kwargs) for item in items]
        if isinstance(items, StepOutput):
            raise InvalidInput(
                f"step {self.name!r}: map() fans out over a list known while the pipeline is "
                "built (a parameter or a literal), not over another step's output; pass that "
                "output to one step that loops over it instead."
            )
        return [
            _add(
                graph,
                self,
                (item,),
                kwargs,
                name=f"{self.name}[{i}]",
                when=_current_when(),
                cache=None,
            )
            for i, item in enumerate(items)
        ]


def step(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    retries: int = 0,
    retry_delay_s: float = 1.0,
    backoff: float = 2.0,
    timeout_s: float | None = None,
    cache: bool = True,
    reads: Sequence[Any] = (),
    track: bool = False,
) -> Any:
    """Mark a function as a pipeline step (``@step`` or ``@step(retries=2, ...)``).

    ``retries`` re-runs a failing step, waiting ``retry_delay_s * backoff**(n-1)`` seconds before
    retry ``n``; ``timeout_s`` fails an attempt that runs longer; ``cache=False`` always runs it;
    ``reads`` declares external inputs (file paths, globs, ``http(s)://`` URLs,
    :class:`~shipyard.pipelines.fingerprint.Query` objects or callables) whose fingerprint enters
    the cache key; ``track=True`` gives each execution a tracking run.
    """

    def wrap(f: Callable[..., Any]) -> Step:
        return Step(
            f,
            name=name,
            retries=retries,
            retry_delay_s=retry_delay_s,
            backoff=backoff,
            timeout_s=timeout_s,
            cache=cache,
            reads=reads,
            track=track,
        )

    return wrap(fn) if fn is not None else wrap


# ---------------------------------------------------------------------------- pipelines


class Pipeline:
    """A function marked with ``@pipeline``: its body calls steps; its parameters have defaults
    that runs override."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        on_failure: str = "continue",
        cache: bool = True,
    ) -> None:
        if on_failure not in FAILURE_POLICIES:
            raise InvalidInput(
                f"pipeline {fn.__name__!r}: on_failure={on_failure!r}; use one of "
                f"{', '.join(FAILURE_POLICIES)}."
            )
        self.fn = fn
        self.name = check_name(name or fn.__name__, "pipeline")
        self.on_failure = on_failure
        self.cache = cache
        self.signature = inspect.signature(fn)
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        return f"<Pipeline {self.name}>"

    @property
    def defaults(self) -> dict[str, Any]:
        """The parameters that have defaults, with them."""
        return {
            p.name: p.default
            for p in self.signature.parameters.values()
            if p.default is not inspect.Parameter.empty
        }

    @property
    def reference(self) -> str:
        """How to import this pipeline again (``module:name``, or ``file.py:name`` for a script)."""
        module = sys.modules.get(self.fn.__module__)
        source = getattr(module, "__file__", None)
        by_file = self.fn.__module__ == "__main__" or self.fn.__module__.startswith(
            _FILE_MODULE_PREFIX
        )
        if by_file and source:
            return f"{source}:{self.fn.__qualname__}"
        return f"{self.fn.__module__}:{self.fn.__qualname__}"

    def bind(self, params: dict[str, Any]) -> dict[str, Any]:
        """All parameters of a run: the defaults overridden by ``params``."""
        unknown = sorted(set(params) - set(self.signature.parameters))
        if unknown:
            raise InvalidInput(
                f"pipeline {self.name!r} has no parameter {', '.join(map(repr, unknown))}; its "
                f"parameters are: {', '.join(self.signature.parameters) or 'none'}."
            )
        bound = {**self.defaults, **params}
        missing = [p for p in self.signature.parameters if p not in bound]
        if missing:
            raise InvalidInput(
                f"pipeline {self.name!r} needs a value for {', '.join(map(repr, missing))}; pass "
                "it as -p NAME=VALUE (CLI) or as a keyword argument."
            )
        return bound

    def build(self, params: dict[str, Any] | None = None) -> Graph:
        """Run the body with the parameters and return the graph of step calls it made."""
        bound = self.bind(dict(params or {}))
        graph = Graph(self, bound)
        previous = getattr(_local, "graph", None)
        _local.graph = graph
        try:
            self.fn(**bound)
        except ShipyardError:
            raise
        except Exception as exc:  # the user's body: one readable error, the original chained
            raise InvalidInput(
                f"pipeline {self.name!r} could not be built: its body raised "
                f"{type(exc).__name__}: {exc}. Fix the @pipeline function and run it again."
            ) from exc
        finally:
            _local.graph = previous
        if not graph.nodes:
            raise InvalidInput(
                f"pipeline {self.name!r} calls no step; decorate its steps with @step."
            )
        return graph

    def __call__(self, **params: Any) -> Any:
        """Run the pipeline on the default workspace, in-process (see :func:`run`)."""
        from shipyard.pipelines.service import run

        return run(self, params)


def pipeline(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    on_failure: str = "continue",
    cache: bool = True,
) -> Any:
    """Mark a function as a pipeline (``@pipeline`` or ``@pipeline(on_failure="cancel")``).

    ``on_failure``: when a step fails for good, ``"continue"`` lets independent branches finish,
    ``"cancel"`` cancels everything not finished yet. ``cache=False`` turns caching off for every
    step of every run.
    """

    def wrap(f: Callable[..., Any]) -> Pipeline:
        return Pipeline(f, name=name, on_failure=on_failure, cache=cache)

    return wrap(fn) if fn is not None else wrap


@contextlib.contextmanager
def when(ref: StepOutput | Condition) -> Iterator[None]:
    """Inside a pipeline body: run the steps called in this block only if ``ref`` is truthy."""
    previous = getattr(_local, "when", None)
    _local.when = ref if isinstance(ref, Condition) else Condition(ref)
    try:
        yield
    finally:
        _local.when = previous


def _building() -> Graph | None:
    return getattr(_local, "graph", None)


def _current_when() -> Condition | None:
    return getattr(_local, "when", None)


def _add(
    graph: Graph,
    s: Step,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    name: str | None,
    when: StepOutput | Condition | None,
    cache: bool | None,
) -> StepOutput:
    try:
        bound = s.signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise InvalidInput(f"step {s.name!r} called with the wrong arguments: {exc}.") from None
    bound.apply_defaults()
    base = check_name(name, "step") if name else s.name
    unique, n = base, 1
    while unique in graph.nodes:
        n += 1
        unique = f"{base}-{n}"
    condition = when if isinstance(when, Condition) or when is None else Condition(when)
    node = Node(unique, s, dict(bound.arguments), condition, s.cache if cache is None else cache)
    for ref in refs_in(node.arguments):
        if ref.node not in graph.nodes:
            raise InvalidInput(
                f"step {unique!r} uses an output of {ref.node!r}, which is not in this pipeline."
            )
    graph.nodes[unique] = node
    return StepOutput(unique)


def check_name(name: str, what: str) -> str:
    if not name or len(name) > 200 or not set(name) <= _NAME_CHARS:
        raise InvalidInput(
            f"{what} name {name!r} is not allowed; use 1-200 letters, digits, '_', '-' or '.'."
        )
    return name


# ---------------------------------------------------------------------------- references

_FILE_MODULE_PREFIX = "_shipyard_pipeline_file_"


def load_attribute(module: str, qualname: str, source: str | None = None) -> Any:
    """Import ``module`` (or load the file ``source`` it came from) and return ``qualname``."""
    mod = sys.modules.get(module)
    if mod is None:
        if module.startswith(_FILE_MODULE_PREFIX) or module == "__main__":
            if not source:
                raise InvalidInput(f"can't import {qualname!r}: its module {module!r} has no file.")
            mod = _load_file(Path(source))
        else:
            try:
                mod = importlib.import_module(module)
            except ModuleNotFoundError:
                # A worker whose import path lacks the module's folder: load the file itself.
                if not source or not Path(source).is_file():
                    raise
                spec = importlib.util.spec_from_file_location(module, source)
                if spec is None or spec.loader is None:
                    raise
                mod = importlib.util.module_from_spec(spec)
                sys.modules[module] = mod
                spec.loader.exec_module(mod)
    value: Any = mod
    for part in qualname.split("."):
        value = getattr(value, part)
    return value


def _load_file(path: Path) -> Any:
    import hashlib

    path = path.resolve()
    name = _FILE_MODULE_PREFIX + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    stat = path.stat()
    stamp = (stat.st_mtime_ns, stat.st_size)
    loaded = sys.modules.get(name)
    if loaded is not None and getattr(loaded, "__shipyard_stamp__", None) == stamp:
        return loaded  # unchanged since it was loaded; an edited file is loaded again
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InvalidInput(f"{path} is not a Python file that can be imported.")
    module = importlib.util.module_from_spec(spec)
    module.__shipyard_stamp__ = stamp  # type: ignore[attr-defined]
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load_module(target: str) -> Any:
    """The module a user's Python file (``path/to/file.py``) or importable module name
    (``package.module``) holds, run or imported. A missing one, or its own code failing while it
    runs, is one readable ``InvalidInput`` (the original exception chained)."""
    try:
        if target.endswith(".py") or "/" in target or Path(target).is_file():
            path = Path(target)
            if not path.is_file():
                raise InvalidInput(
                    f"{target} does not exist; give the path of a Python file or a module name."
                )
            return _load_file(path)
        try:
            return importlib.import_module(target)
        except ModuleNotFoundError as exc:
            raise InvalidInput(
                f"can't import module {target!r} ({exc}); check the name, or give a file path."
            ) from None
    except ShipyardError:
        raise
    except Exception as exc:
        raise InvalidInput(
            f"can't load {target}: running it raised {type(exc).__name__}: {exc}. Fix the file "
            "and run again (SHIPYARD_DEBUG=1 shows the traceback)."
        ) from exc


def load_pipeline(reference: str) -> Pipeline:
    """The pipeline a reference names: ``package.module:name`` or ``path/to/file.py:name``."""
    target, sep, attr = reference.rpartition(":")
    if not sep or not target or not attr:
        raise InvalidInput(
            f"{reference!r} does not name a pipeline; write FILE.py:PIPELINE or MODULE:PIPELINE "
            "(for example examples/pipeline_demo.py:breast_cancer)."
        )
    module = load_module(target)
    value: Any = module
    for part in attr.split("."):
        value = getattr(value, part, None)
        if value is None:
            raise InvalidInput(f"{target} has no attribute {attr!r}.")
    if not isinstance(value, Pipeline):
        raise InvalidInput(f"{reference} is not a @pipeline (it is a {type(value).__name__}).")
    return value
