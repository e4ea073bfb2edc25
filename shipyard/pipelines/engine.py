"""The driver: runs a built pipeline graph on an executor, with caching, retries and timeouts.

One loop in the calling thread. Each pass it takes the nodes whose upstream steps are finished,
and for each one either skips it (an upstream step did not succeed, or its ``when`` condition is
false), reuses an earlier output (a resumed run's, or a cache hit), or submits an attempt to the
executor. Independent nodes are submitted together, so they run in parallel. Then it waits for
the first attempt to finish, a timeout to pass, or a retry to become due.

Every step run is written to the pipeline store when it starts and when it ends; outputs go to
the content-addressed artifact store under the step run's owner (``ps-<id>``), so identical
outputs share bytes and downstream cache keys use their content digests.
"""

from __future__ import annotations

import contextlib
import io
import time
import uuid
import warnings
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from shipyard.entities import RunStatus
from shipyard.errors import ShipyardError, ShipyardWarning, StepFailed, StepTimeout
from shipyard.pipelines import fingerprint, materialize
from shipyard.pipelines.dsl import Graph, Node, StepOutput, refs_in, resolve, select
from shipyard.pipelines.executors import Executor, Task, TaskResult, routed_output
from shipyard.store.pipelines import (
    PipelineRun,
    PipelineStatus,
    StepRun,
    StepStatus,
    step_owner,
)

if TYPE_CHECKING:
    from shipyard.workspace import Workspace

ProgressCallback = Callable[[str, StepRun], None]
_MISSING = object()


def _ms() -> int:
    return int(time.time() * 1000)


@dataclass
class _State:
    node: Node
    record: StepRun
    value: Any = _MISSING
    future: Future[TaskResult] | None = None
    deadline: float | None = None
    retry_at: float | None = None
    exception: BaseException | None = None
    components: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return self.record.status


class Engine:
    """Runs one pipeline run of ``graph`` (see the module docstring)."""

    def __init__(
        self,
        workspace: Workspace,
        graph: Graph,
        executor: Executor,
        *,
        reference: str,
        cache: bool = True,
        trigger: dict[str, Any] | None = None,
        resume: PipelineRun | None = None,
        rerun: set[str] | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.ws = workspace
        self.store = workspace.pipelines
        self.graph = graph
        self.executor = executor
        self.cache = cache and graph.pipeline.cache
        self.reference = reference
        self.trigger = trigger or {"kind": "manual"}
        self.resume = resume
        self.rerun = rerun or set()
        self.progress = progress
        self.run_id = uuid.uuid4().hex
        self.states: dict[str, _State] = {}
        self.cancelled = False

    # ---------------------------------------------------------------- the loop

    def run(self) -> PipelineRun:
        pipeline = self.graph.pipeline
        run = PipelineRun(
            run_id=self.run_id,
            pipeline=pipeline.name,
            reference=self.reference,
            params=_jsonable(self.graph.params),
            status=PipelineStatus.RUNNING,
            executor=self.executor.name,
            cache_enabled=self.cache,
            start_time=_ms(),
            resumed_from=self.resume.run_id if self.resume else None,
            trigger=self.trigger,
        )
        self.store.create_run(run)
        for name, node in self.graph.nodes.items():
            record = StepRun(
                uuid.uuid4().hex, self.run_id, name, StepStatus.PENDING, executor=self.executor.name
            )
            self.states[name] = _State(node, record)
        error: str | None = None
        try:
            with routed_output() if self.executor.in_process else contextlib.nullcontext():
                self._loop()
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"
            self._cancel_all(f"the run stopped: {error}")
            self.store.finish_run(self.run_id, PipelineStatus.FAILED, error=error)
            raise
        finally:
            self.executor.shutdown()
        statuses = {s.status for s in self.states.values()}
        if StepStatus.FAILED in statuses:
            status = PipelineStatus.FAILED
            failed = [n for n, s in self.states.items() if s.status == StepStatus.FAILED]
            error = f"step {failed[0]!r} failed: {self.states[failed[0]].record.error}"
        elif StepStatus.CANCELLED in statuses:
            status = PipelineStatus.CANCELLED
        else:
            status = PipelineStatus.SUCCEEDED
        return self.store.finish_run(self.run_id, status, error=error)

    def _loop(self) -> None:
        while True:
            self._start_ready()
            running = {s.future: s for s in self.states.values() if s.future is not None}
            waiting = [s for s in self.states.values() if s.retry_at is not None]
            if not running and not waiting:
                if all(StepStatus(s.status).is_terminal for s in self.states.values()):
                    return
                continue  # retries became due, or nodes became ready
            now = time.monotonic()
            marks = [s.deadline for s in running.values() if s.deadline is not None]
            marks += [s.retry_at for s in waiting if s.retry_at is not None]
            timeout = max(0.0, min(marks) - now) if marks else None
            if running:
                done, _ = wait(list(running), timeout=timeout, return_when=FIRST_COMPLETED)
            else:
                time.sleep(timeout or 0)
                done = set()
            for future in done:
                self._finished(running[future], future)
            now = time.monotonic()
            for state in running.values():
                if (
                    state.future is not None
                    and state.deadline is not None
                    and now >= state.deadline
                ):
                    self._timed_out(state)
            for state in waiting:
                if state.retry_at is not None and now >= state.retry_at:
                    state.retry_at = None
                    self._submit(state)

    def _start_ready(self) -> None:
        for name, state in self.states.items():
            if state.status != StepStatus.PENDING or state.retry_at is not None:
                continue
            if self.cancelled:
                self._set(
                    state,
                    status=StepStatus.CANCELLED,
                    end_time=_ms(),
                    error="the run was cancelled",
                )
                continue
            upstream = [self.states[u] for u in state.node.upstream]
            if any(not StepStatus(u.status).is_terminal for u in upstream):
                continue
            blocked = [u for u in upstream if u.status != StepStatus.SUCCEEDED]
            if blocked:
                u = blocked[0]
                self._set(
                    state,
                    status=StepStatus.SKIPPED,
                    end_time=_ms(),
                    error=f"upstream step {u.node.name!r} is {u.status}",
                )
                continue
            self._begin(name, state)

    def _begin(self, name: str, state: _State) -> None:
        node = state.node
        if node.when is not None:
            try:
                go = bool(node.when.predicate(self._value_of(node.when.ref)))
            except Exception as exc:
                self._fail(state, f"its condition raised {type(exc).__name__}: {exc}", None, exc)
                return
            if not go:
                self._set(
                    state,
                    status=StepStatus.SKIPPED,
                    end_time=_ms(),
                    error="its condition was false",
                )
                return
        components = self._components(node)
        key = fingerprint.key_of(components)
        state.components = components
        inputs = {
            arg: [self._input_record(r) for r in refs_in(value)]
            for arg, value in node.arguments.items()
            if any(True for _ in refs_in(value))
        }
        state.record = replace(
            state.record, cache_key=key, cache_components=components, inputs=inputs
        )
        reused = self._reusable(name, components) if name not in self.rerun else None
        if reused is None and self.cache and node.cache and name not in self.rerun:
            reused = self.store.find_cached(key)
        if reused is not None and reused.output is not None:
            now = _ms()
            self._set(
                state,
                status=StepStatus.SUCCEEDED,
                cached=True,
                cache_source=reused.cache_source or reused.step_run_id,
                output=reused.output,
                start_time=now,
                end_time=now,
                tracking_run_id=reused.tracking_run_id,
            )
            return
        state.record = replace(state.record, start_time=_ms())
        self._submit(state)

    def _reusable(self, name: str, components: dict[str, Any]) -> StepRun | None:
        """The resumed run's successful execution of this step, if its parameters and inputs are
        the same (its code and the code downstream may have changed: that is what resuming is
        for; an upstream step that ran again with a different output makes this one run again)."""
        if self.resume is None:
            return None
        try:
            earlier = self.resume.step(name)
        except KeyError:
            return None
        if earlier.status != StepStatus.SUCCEEDED or earlier.output is None:
            return None
        if any(earlier.cache_components.get(c) != components.get(c) for c in ("params", "inputs")):
            return None
        return earlier

    # ---------------------------------------------------------------- attempts

    def _submit(self, state: _State) -> None:
        node = state.node
        attempt = state.record.attempts + 1
        tracking = state.record.tracking_run_id
        if node.step.track and tracking is None:
            tracking = self._tracking_run(node)
        try:
            arguments = resolve(node.arguments, self._value_of)
        except Exception as exc:
            self._fail(
                state, f"its inputs could not be loaded: {type(exc).__name__}: {exc}", None, exc
            )
            return
        self._set(state, status=StepStatus.RUNNING, attempts=attempt, tracking_run_id=tracking)
        task = Task(
            node.step,
            node.name,
            self.run_id,
            state.record.step_run_id,
            attempt,
            arguments,
            tracking_run_id=tracking,
            settings=self.ws.settings,
        )
        state.future = self.executor.submit(task)
        timeout = node.step.timeout_s
        state.deadline = time.monotonic() + timeout if timeout else None

    def _finished(self, state: _State, future: Future[TaskResult]) -> None:
        state.future, state.deadline = None, None
        if state.status != StepStatus.RUNNING:  # cancelled meanwhile
            return
        try:
            result = future.result()
        except BaseException as exc:  # the executor itself failed (a worker died, Ray lost it)
            result = TaskResult(
                False,
                error_type=type(exc).__name__,
                error_message=str(exc) or "the executor lost the attempt",
                traceback=None,
            )
        if not result.ok or result.output is None:
            self._attempt_failed(state, result)
            return
        try:
            output = self._store_output(state, result.output)
        except ShipyardError as exc:
            self._fail(state, f"its output could not be stored: {exc.message}", None, exc)
            return
        if self.executor.in_process:  # the value itself came back: no need to read it again
            state.value = result.value
        links = list(result.links)
        if state.record.tracking_run_id:
            self._end_tracking(state.record.tracking_run_id, ok=True)
            links += self._model_links(state.record.tracking_run_id)
        if links:
            self.store.add_links(state.record.step_run_id, links)
        self._set(
            state,
            status=StepStatus.SUCCEEDED,
            output=output,
            end_time=_ms(),
            logs=_join_logs(state.record.logs, result.logs),
            links=links,
        )

    def _attempt_failed(self, state: _State, result: TaskResult) -> None:
        step = state.node.step
        message = f"{result.error_type}: {result.error_message}"
        logs = _join_logs(state.record.logs, result.logs)
        if state.record.attempts <= step.retries and not self.cancelled:
            delay = step.delay_before(state.record.attempts)
            state.retry_at = time.monotonic() + delay
            state.record = replace(
                state.record,
                status=StepStatus.PENDING,
                logs=logs,
                error=message,
                traceback=result.traceback,
            )
            self.store.put_step_run(state.record)
            self._notify(state)
            return
        state.record = replace(state.record, logs=logs)
        self._fail(state, message, result.traceback, result.exception)

    def _timed_out(self, state: _State) -> None:
        assert state.future is not None
        self.executor.cancel(state.future)
        state.future, state.deadline = None, None
        timeout = state.node.step.timeout_s
        self._attempt_failed(
            state,
            TaskResult(
                False,
                error_type="StepTimeout",
                error_message=f"attempt {state.record.attempts} ran past its timeout of {timeout} s",
            ),
        )

    def _fail(self, state: _State, message: str, tb: str | None, exc: BaseException | None) -> None:
        if state.record.tracking_run_id:
            self._end_tracking(state.record.tracking_run_id, ok=False)
        state.exception = exc
        self._set(state, status=StepStatus.FAILED, end_time=_ms(), error=message, traceback=tb)
        if self.graph.pipeline.on_failure == "cancel":
            self._cancel_all(f"step {state.node.name!r} failed")

    def _cancel_all(self, why: str) -> None:
        self.cancelled = True
        for state in self.states.values():
            if state.future is not None:
                self.executor.cancel(state.future)
                state.future = None
            if not StepStatus(state.status).is_terminal:
                state.retry_at = None
                self._set(
                    state, status=StepStatus.CANCELLED, end_time=_ms(), error=f"cancelled: {why}"
                )

    # ---------------------------------------------------------------- values and records

    def _components(self, node: Node) -> dict[str, Any]:
        code_hash, code_parts, env = fingerprint.code_fingerprint(node.step.fn)
        params: dict[str, str] = {}
        inputs: dict[str, str] = {}
        for arg, value in node.arguments.items():
            refs = list(refs_in(value))
            if not refs:
                params[arg] = fingerprint.value_hash(value)
                continue
            digests = resolve(value, lambda r: self._digest_of(r))
            inputs[arg] = (
                fingerprint.value_hash(digests) if not isinstance(value, StepOutput) else digests
            )
        external = dict(fingerprint.external_fingerprint(r) for r in node.step.reads)
        return {
            "code": code_hash,
            "code_parts": code_parts,
            "params": params,
            "inputs": inputs,
            "external": external,
            "env": env,
        }

    def _digest_of(self, ref: StepOutput) -> str:
        output = self.states[ref.node].record.output or {}
        digest = str(output.get("digest", ""))
        return digest + ("" if not ref.path else "/" + "/".join(map(str, ref.path)))

    def _input_record(self, ref: StepOutput) -> dict[str, Any]:
        upstream = self.states[ref.node].record
        return {
            "step": ref.node,
            "path": list(ref.path),
            "step_run_id": upstream.step_run_id,
            "digest": (upstream.output or {}).get("digest"),
        }

    def _value_of(self, ref: StepOutput) -> Any:
        state = self.states[ref.node]
        if state.value is _MISSING:
            output = state.record.output
            if output is None:
                raise StepFailed(f"step {ref.node!r} has no output to read.")
            files = {path: self._read(output["owner"], path) for path in output["files"]}
            state.value = materialize.load(output["kind"], files)
        return select(state.value, ref.path)

    def _read(self, owner: str, path: str) -> bytes:
        with self.ws.artifacts.open(owner, f"{materialize.OUTPUT_DIR}/{path}") as src:
            return src.read()

    def _store_output(self, state: _State, out: materialize.Materialized) -> dict[str, Any]:
        owner = step_owner(state.record.step_run_id)
        for path, data in out.files.items():
            self.ws.artifacts.upload(owner, f"{materialize.OUTPUT_DIR}/{path}", io.BytesIO(data))
        if out.kind == "pickle":
            warnings.warn(
                f"step {state.node.name!r} returned a {out.type_name}, which has no storage format "
                "of its own, so it was pickled: loading it needs the same code and library "
                "versions. Return a DataFrame, an array, a model or JSON-able data to avoid this.",
                ShipyardWarning,
                stacklevel=2,
            )
        return {
            "kind": out.kind,
            "type": out.type_name,
            "owner": owner,
            "files": sorted(out.files),
            "digest": out.digest,
            "size": out.size,
        }

    def _set(self, state: _State, **changes: Any) -> None:
        state.record = replace(state.record, **changes)
        self.store.put_step_run(state.record)
        self._notify(state)

    def _notify(self, state: _State) -> None:
        if self.progress is not None:
            try:
                self.progress(state.node.name, state.record)
            except Exception:  # a display problem must not fail the run
                pass

    # ---------------------------------------------------------------- tracking and lineage

    def _tracking_run(self, node: Node) -> str:
        store = self.ws.store
        name = self.graph.pipeline.name
        experiment = store.get_experiment_by_name(name)
        experiment_id = (
            experiment.experiment_id if experiment is not None else store.create_experiment(name)
        )
        run = store.create_run(
            experiment_id,
            run_name=f"{name}.{node.name}"[:250],
            tags={
                "shipyard.pipeline": name,
                "shipyard.pipeline.run_id": self.run_id,
                "shipyard.pipeline.step": node.name,
            },
        )
        return run.info.run_id

    def _end_tracking(self, run_id: str, *, ok: bool) -> None:
        """Finish a step's tracking run, unless the step ended it itself."""
        try:
            if not RunStatus(self.ws.store.get_run(run_id).info.status).is_terminal:
                status = RunStatus.FINISHED if ok else RunStatus.FAILED
                self.ws.store.update_run(run_id, status=status, end_time=_ms())
        except ShipyardError:
            pass

    def _model_links(self, run_id: str) -> list[dict[str, str]]:
        if self.ws.registry_store is None:
            return []
        try:
            page = self.ws.registry.search_model_versions(f"run_id = '{run_id}'", max_results=100)
        except ShipyardError:
            return []
        return [
            {"kind": "model_version", "name": v.name, "version": str(v.version)} for v in page.items
        ]

    def failure(self) -> StepFailed | None:
        """The error boundary's answer for the first failed step (``None`` if none failed),
        chaining the original exception when the step ran in this process."""
        for state in self.states.values():
            if state.status == StepStatus.FAILED:
                cls = (
                    StepTimeout
                    if (state.record.error or "").startswith("StepTimeout")
                    else StepFailed
                )
                err = cls(
                    f"Step {state.node.name!r} of pipeline run {self.run_id} failed after "
                    f"{state.record.attempts} attempt(s): {state.record.error}. See its traceback "
                    f"with `shipyard pipelines show {self.run_id}`; after fixing it, resume with "
                    f"`shipyard pipelines resume {self.run_id}`.",
                    details={
                        "step": state.node.name,
                        "run_id": self.run_id,
                        "error_type": (state.record.error or "").split(":", 1)[0],
                        "attempts": state.record.attempts,
                    },
                )
                err.__cause__ = state.exception
                return err
        return None


def _join_logs(before: str | None, new: str) -> str | None:
    if not new:
        return before
    return (before + "\n" if before else "") + new


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return repr(value)
