"""Adaptive micro-batching: concurrent requests coalesced into one model call.

Requests queue up; a collector takes the first one, then waits at most ``max_wait_s`` for more,
stopping early once ``max_rows`` rows are in hand (batch size counts **rows**, not requests, so a
request of 500 rows is never merged past the limit; a request larger than ``max_rows`` runs
alone). It calls the model once on the concatenated table, in a worker thread so the event
loop keeps reading requests, and splits the predictions back by row counts. When only one
request is waiting the batch is that request, so a lone caller pays at most ``max_wait_s``.

Batch sizes and queue waits go to :class:`~shipyard.serving.metrics.ServingMetrics`. Batching
helps models whose cost per call dwarfs their cost per row (forests, boosted trees, neural nets
on many concurrent single-row callers); for a linear model it only adds latency. By default
(``--batching auto``) warm-up measures whether it pays for each version
(:func:`~shipyard.serving.endpoint.batching_pays`); see ``docs/serving.md`` for when to turn it
on or off.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.serving.metrics import Labels, ServingMetrics

_Item = tuple[Any, int, float, "asyncio.Future[Any]"]
"""A queued request: its table, its row count, when it was queued, the future it waits on."""


class MicroBatcher:
    """Coalesces ``submit`` calls (DataFrames, or float matrices on the fast path) into ``predict`` calls of up to ``max_rows``."""

    def __init__(
        self,
        predict: Callable[[Any], Any],
        *,
        max_rows: int,
        max_wait_s: float,
        metrics: ServingMetrics,
        labels: Labels,
    ) -> None:
        self.predict = predict
        self.max_rows = max(1, max_rows)
        self.max_wait_s = max_wait_s
        self.metrics = metrics
        self.labels = labels
        self._queue: asyncio.Queue[_Item | None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    async def submit(self, frame: Any) -> Any:
        if self._closed:
            # A request that picked this version just before it was switched out: answered
            # alone, never lost.
            return await asyncio.to_thread(self.predict, frame)
        loop = asyncio.get_running_loop()
        if self._queue is None or self._loop is not loop:
            self._loop = loop
            self._queue = asyncio.Queue()
            self._task = loop.create_task(self._collect())
        future: asyncio.Future[Any] = loop.create_future()
        # An unbounded queue: the check above and this put run in one step of the loop, so
        # nothing lands behind the stop marker that close() queues.
        self._queue.put_nowait((frame, len(frame), time.perf_counter(), future))
        return await future

    def close(self) -> None:
        """Stop collecting once the requests already queued are answered (callable from any
        thread, e.g. when a version is switched out); later calls predict alone."""
        self._closed = True
        loop, queue = self._loop, self._queue
        if queue is not None and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(queue.put_nowait, None)

    @property
    def collecting(self) -> bool:
        """Whether the collector task is running."""
        return self._task is not None and not self._task.done()

    async def _collect(self) -> None:
        assert self._queue is not None
        queue = self._queue
        carry: _Item | None = None
        stop = False
        while not stop:
            first = carry if carry is not None else await queue.get()
            carry = None
            if first is None:  # the stop marker: everything before it was answered
                return
            batch = [first]
            rows = first[1]
            deadline = time.perf_counter() + self.max_wait_s
            while rows < self.max_rows:
                timeout = deadline - time.perf_counter()
                try:
                    item = (
                        queue.get_nowait()
                        if timeout <= 0
                        else await asyncio.wait_for(queue.get(), timeout)
                    )
                except (TimeoutError, asyncio.QueueEmpty):
                    break
                if item is None:
                    stop = True
                    break
                if rows + item[1] > self.max_rows:
                    carry = item
                    break
                batch.append(item)
                rows += item[1]
            await self._run(batch, rows)

    async def _run(self, batch: list[_Item], rows: int) -> None:
        import numpy as np
        import pandas as pd

        now = time.perf_counter()
        for _, _, queued, _ in batch:
            self.metrics.queue_wait.observe(now - queued, self.labels)
        self.metrics.batch_rows.observe(rows, self.labels)
        frames = [b[0] for b in batch]
        # Joining the tables and splitting the answer are inside the try too: an exception
        # escaping here would end the collector, and every queued and later request on this
        # version would wait forever (e.g. a table with duplicate column names, which pandas
        # will not concatenate, or a model answering with something that does not slice).
        try:
            if len(frames) == 1:
                table = frames[0]
            elif isinstance(frames[0], np.ndarray):
                table = np.concatenate(frames)
            else:
                table = pd.concat(frames, ignore_index=True)
            out = await asyncio.to_thread(self.predict, table)
            parts, start = [], 0
            for _, n, _, _ in batch:
                parts.append(_slice(out, start, start + n))
                start += n
        except Exception as exc:
            if len(batch) > 1:  # one bad request must not fail the others: run them alone
                for item in batch:
                    await self._run([item], item[1])
                return
            if not batch[0][3].done():
                batch[0][3].set_exception(exc)
            return
        for (_, _, _, future), part in zip(batch, parts, strict=True):
            if not future.done():
                future.set_result(part)


def _slice(out: Any, start: int, stop: int) -> Any:
    if hasattr(out, "iloc"):
        return out.iloc[start:stop]
    if isinstance(out, dict):
        return {k: v[start:stop] for k, v in out.items()}
    return out[start:stop]
