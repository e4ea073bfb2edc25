"""Where step code runs: in this process (threads), in a local process pool, or on Ray.

Every executor runs :func:`run_task` (the error boundary around user code: whatever the step
raises becomes a failed :class:`TaskResult` with the error and its traceback) and hands back a
:class:`concurrent.futures.Future`. The driver (:mod:`shipyard.pipelines.engine`) decides
retries, timeouts and caching; executors only run attempts.

* ``inprocess`` (default): a thread pool; steps share the process, so nothing is pickled. A
  timed-out attempt is failed and abandoned (Python threads can't be killed).
* ``process``: a ``spawn`` process pool; step functions are imported again in the workers (define
  them in an importable module or file), arguments and outputs are pickled. A timed-out attempt
  is failed; its worker finishes the call in the background.
* ``ray``: Ray tasks (``pip install 'shipyard[ray]'``), on a local Ray started with
  ``ray.init()`` or the cluster at ``address``; a timed-out attempt is cancelled.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
import time
import traceback
from abc import ABC, abstractmethod
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput
from shipyard.pipelines import materialize

if TYPE_CHECKING:
    from shipyard.config import Settings
    from shipyard.pipelines.dsl import Step
    from shipyard.tracking.client import Client

EXECUTORS = ("inprocess", "process", "ray")
MAX_LOG_CHARS = 1_000_000


@dataclass
class Task:
    """One attempt of one step: the function and its resolved arguments."""

    step: Step
    node: str
    run_id: str
    step_run_id: str
    attempt: int
    arguments: dict[str, Any]
    tracking_run_id: str | None = None
    settings: Settings | None = None
    keep_value: bool = False


@dataclass
class TaskResult:
    """What an attempt produced: the output as files, or the error."""

    ok: bool
    output: materialize.Materialized | None = None
    value: Any = None
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = None
    logs: str = ""
    links: list[dict[str, str]] = field(default_factory=list)
    started: int = 0
    ended: int = 0
    exception: BaseException | None = field(default=None, repr=False)


# ---------------------------------------------------------------------------- step context

_context = threading.local()


@dataclass
class StepContext:
    """What a running step can ask about itself: :func:`shipyard.pipelines.current`."""

    step: str
    run_id: str
    step_run_id: str
    attempt: int
    tracking_run_id: str | None
    settings: Settings | None
    links: list[dict[str, str]] = field(default_factory=list)
    _client: Client | None = None

    @property
    def client(self) -> Client:
        """A tracking client on the pipeline's workspace (log to :attr:`tracking_run_id`)."""
        if self._client is None:
            from shipyard.tracking.client import Client

            self._client = Client(settings=self.settings)
        return self._client

    def link(self, kind: str, name: str, version: Any) -> None:
        """Record that this step produced ``name`` version ``version`` (``kind``
        ``"model_version"`` or ``"dataset_version"``) for the run's lineage."""
        self.links.append({"kind": kind, "name": name, "version": str(version)})

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.flush()
            if self.settings is not None:
                with contextlib.suppress(Exception):
                    self._client.workspace.close()


def current() -> StepContext:
    """The context of the step running in this thread; ``InvalidInput`` outside a step."""
    ctx = getattr(_context, "value", None)
    if ctx is None:
        raise InvalidInput("shipyard.pipelines.current() was called outside a running step.")
    return ctx


# ---------------------------------------------------------------------------- logs


class _Router(io.TextIOBase):
    """A stand-in for ``sys.stdout``/``sys.stderr`` that sends each thread's writes to that
    thread's buffer while it runs a step, and everything else to the original stream."""

    def __init__(self, original: Any) -> None:
        self.original = original
        self.buffers = threading.local()

    def write(self, text: str) -> int:
        buf = getattr(self.buffers, "value", None)
        if buf is not None:
            buf.append(text)
            return len(text)
        return int(self.original.write(text))

    def flush(self) -> None:
        with contextlib.suppress(Exception):
            self.original.flush()

    def isatty(self) -> bool:
        return bool(getattr(self.original, "isatty", lambda: False)())


_routers_lock = threading.Lock()
_routers_users = 0


@contextlib.contextmanager
def routed_output() -> Any:
    """While active, step output printed from any thread is captured per step."""
    global _routers_users
    with _routers_lock:
        if _routers_users == 0:
            sys.stdout = _Router(sys.stdout)
            sys.stderr = _Router(sys.stderr)
        _routers_users += 1
    try:
        yield
    finally:
        with _routers_lock:
            _routers_users -= 1
            if _routers_users == 0:
                for name in ("stdout", "stderr"):
                    stream = getattr(sys, name)
                    if isinstance(stream, _Router):
                        setattr(sys, name, stream.original)


@contextlib.contextmanager
def _captured(chunks: list[str]) -> Any:
    routers = [s for s in (sys.stdout, sys.stderr) if isinstance(s, _Router)]
    if routers:
        for r in routers:
            r.buffers.value = chunks
        try:
            yield
        finally:
            for r in routers:
                r.buffers.value = None
        return
    sink = _ListWriter(chunks)
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):  # type: ignore[type-var]
        yield


class _ListWriter(io.TextIOBase):
    def __init__(self, chunks: list[str]) -> None:
        self.chunks = chunks

    def write(self, text: str) -> int:
        self.chunks.append(text)
        return len(text)


def _ms() -> int:
    return int(time.time() * 1000)


def run_task(task: Task) -> TaskResult:
    """Run one attempt inside the error boundary (called in the executor's worker)."""
    ctx = StepContext(
        task.node,
        task.run_id,
        task.step_run_id,
        task.attempt,
        task.tracking_run_id,
        task.settings,
    )
    chunks: list[str] = []
    started = _ms()
    _context.value = ctx
    try:
        with _captured(chunks):
            value = task.step.fn(**task.arguments)
            output = materialize.dump(value)
        return TaskResult(
            True,
            output,
            value if task.keep_value else None,
            logs=_logs(chunks),
            links=list(ctx.links),
            started=started,
            ended=_ms(),
        )
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt | SystemExit) and task.keep_value:
            raise
        return TaskResult(
            False,
            error_type=type(exc).__name__,
            error_message=str(exc),
            traceback="".join(traceback.format_exception(exc)),
            logs=_logs(chunks),
            links=list(ctx.links),
            started=started,
            ended=_ms(),
            exception=exc if task.keep_value else None,
        )
    finally:
        _context.value = None
        ctx.close()


def _logs(chunks: list[str]) -> str:
    text = "".join(chunks)
    if len(text) > MAX_LOG_CHARS:
        return text[:MAX_LOG_CHARS] + f"\n[... {len(text) - MAX_LOG_CHARS} more characters cut]"
    return text


# ---------------------------------------------------------------------------- executors


class Executor(ABC):
    """Runs attempts and hands back futures of :class:`TaskResult`."""

    name: str
    in_process: bool = False

    @abstractmethod
    def submit(self, task: Task) -> Future[TaskResult]:
        """Start an attempt."""

    def cancel(self, future: Future[TaskResult]) -> None:
        """Stop an attempt if the backend can (a timeout, a cancelled run)."""
        future.cancel()

    @abstractmethod
    def shutdown(self) -> None:
        """Release the workers (attempts still running are not waited for)."""


class InProcessExecutor(Executor):
    """Threads in this process."""

    name = "inprocess"
    in_process = True

    def __init__(self, max_workers: int | None = None) -> None:
        self._pool = ThreadPoolExecutor(
            max_workers=max_workers or min(32, (os.cpu_count() or 1) + 4),
            thread_name_prefix="shipyard-step",
        )

    def submit(self, task: Task) -> Future[TaskResult]:
        task.keep_value = True
        return self._pool.submit(run_task, task)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class ProcessExecutor(Executor):
    """A local pool of ``spawn``-ed processes."""

    name = "process"

    def __init__(self, max_workers: int | None = None) -> None:
        import multiprocessing

        self._pool = ProcessPoolExecutor(
            max_workers=max_workers or os.cpu_count() or 1,
            mp_context=multiprocessing.get_context("spawn"),
        )

    def submit(self, task: Task) -> Future[TaskResult]:
        return self._pool.submit(run_task, task)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def make_executor(
    name: str, *, max_workers: int | None = None, ray_address: str | None = None
) -> Executor:
    """The executor called ``name`` (one of :data:`EXECUTORS`)."""
    if name == "inprocess":
        return InProcessExecutor(max_workers)
    if name == "process":
        return ProcessExecutor(max_workers)
    if name == "ray":
        from shipyard.pipelines._ray import RayExecutor

        return RayExecutor(address=ray_address, max_workers=max_workers)
    raise InvalidInput(f"unknown executor {name!r}; use one of {', '.join(EXECUTORS)}.")


def failure_message(result: TaskResult) -> str:
    return f"{result.error_type}: {result.error_message}"
