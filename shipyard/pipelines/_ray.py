"""The Ray executor: each attempt is a Ray task (``pip install 'shipyard[ray]'``).

Ray is imported here only. With no ``address`` and no Ray running in this process,
``ray.init()`` starts a local Ray instance (or joins the cluster ``RAY_ADDRESS`` names);
``address="ray://host:10001"`` or ``"auto"`` joins a cluster. Step modules must be importable on
the workers (the same code on every node, or a Ray ``runtime_env``).
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from shipyard.errors import missing_extra
from shipyard.pipelines.executors import Executor, Task, TaskResult, run_task


class RayExecutor(Executor):
    """Attempts as Ray tasks; a timed-out or cancelled attempt is cancelled in Ray."""

    name = "ray"

    def __init__(self, *, address: str | None = None, max_workers: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise missing_extra("ray", "ray") from None
        self._ray = ray
        self._started_here = False
        if not ray.is_initialized():
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address:
                options["address"] = address
            elif max_workers:
                options["num_cpus"] = max_workers
            ray.init(**options)
            self._started_here = True
        self._remote = ray.remote(num_cpus=1, max_retries=0)(run_task)
        self._refs: dict[int, Any] = {}

    def submit(self, task: Task) -> Future[TaskResult]:
        ref = self._remote.remote(task)
        future: Future[TaskResult] = ref.future()
        self._refs[id(future)] = ref
        future.add_done_callback(lambda f: self._refs.pop(id(f), None))
        return future

    def cancel(self, future: Future[TaskResult]) -> None:
        ref = self._refs.pop(id(future), None)
        if ref is not None:
            try:
                self._ray.cancel(ref, force=True)
            except Exception:  # already finished
                pass
        future.cancel()

    def shutdown(self) -> None:
        for ref in list(self._refs.values()):
            try:
                self._ray.cancel(ref, force=True)
            except Exception:
                pass
        self._refs.clear()
        if self._started_here:
            self._ray.shutdown()
