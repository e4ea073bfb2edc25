"""Materialization on a schedule, through the pipeline scheduler.

:data:`materialize_pipeline` is a built-in pipeline (reference
``shipyard.features.schedule:materialize_pipeline``) with one uncached step that runs
:meth:`FeatureStore.materialize` with ``incremental=True`` on the pipeline's workspace; each
firing is an ordinary pipeline run with its step's output (one summary per view) and logs.
:func:`schedule_materialization` (``shipyard features schedule``) creates the schedule::

    schedule_materialization(ws, "features-hourly", cron="0 * * * *")

or by hand: ``shipyard pipelines schedule add features-hourly
shipyard.features.schedule:materialize_pipeline --cron '0 * * * *' -p views=customer_stats``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from shipyard.pipelines.dsl import pipeline, step

if TYPE_CHECKING:
    from shipyard.store.pipelines import Schedule
    from shipyard.workspace import Workspace

REFERENCE = "shipyard.features.schedule:materialize_pipeline"


@step(cache=False)
def materialize_incremental(views: str = "") -> list[dict[str, Any]]:
    """Materialize incrementally (``views``: comma-separated names; empty: every online view)."""
    from shipyard.features.service import FeatureStore
    from shipyard.pipelines import current

    fs = FeatureStore(current().client.workspace)
    try:
        done = fs.materialize(
            [v for v in views.split(",") if v] or None, incremental=True, progress=_LogProgress()
        )
    finally:
        fs.close()
    for m in done:
        print(f"{m.view}: {m.num_rows} entity row(s) -> {m.online_store}")
    return [
        {"view": m.view, "view_version": m.view_version, "rows": m.num_rows,
         "end_time": m.end_time, "watermark": m.watermark}
        for m in done
    ]  # fmt: skip


class _LogProgress:
    """Progress lines in the step's log (``shipyard pipelines show RUN --logs``): a view's
    start, each tenth of its rows, and its end."""

    def __init__(self) -> None:
        self._tenths: dict[str, int] = {}

    def __call__(self, view: str, done: int, total: int) -> None:
        tenth = done * 10 // total if total else 10
        if done == 0 or tenth > self._tenths.get(view, 0):
            self._tenths[view] = tenth
            print(f"{view}: {done}/{total} entity row(s) written", flush=True)


@pipeline(name="features-materialize")
def materialize_pipeline(views: str = "") -> None:
    """Incremental materialization of the feature views named (comma-separated), or all."""
    materialize_incremental(views)


def schedule_materialization(
    workspace: Workspace,
    name: str,
    *,
    every_s: float | None = None,
    cron: str | None = None,
    views: Sequence[str] = (),
) -> Schedule:
    """A pipeline schedule firing :data:`materialize_pipeline` (exactly one of ``every_s`` and
    ``cron``)."""
    from shipyard.pipelines.scheduler import add_schedule

    return add_schedule(
        workspace, name, REFERENCE, cron=cron, every_s=every_s, params={"views": ",".join(views)}
    )
