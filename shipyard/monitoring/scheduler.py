"""The monitor scheduler: runs every due monitor on its interval, in a background thread.

``shipyard server`` starts one per worker next to the pipeline scheduler. Several schedulers on
one database compute each window once: a window's result is stored only by the process that
moved the monitor's watermark past it (compare-and-set in the store).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING

from shipyard.errors import ShipyardError

if TYPE_CHECKING:
    from shipyard.workspace import Workspace

logger = logging.getLogger("shipyard.monitoring.scheduler")


class MonitorScheduler:
    """Runs due monitors of one workspace (see the module docstring)."""

    def __init__(self, workspace: Workspace, *, poll_interval_s: float = 15.0) -> None:
        self.ws = workspace
        self.poll_interval_s = poll_interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self, now_ms: int | None = None) -> list[str]:
        """One poll: run every due monitor; the names of those that ran."""
        from shipyard.monitoring.monitors import due_monitors, run_monitor

        now = now_ms if now_ms is not None else int(time.time() * 1000)
        ran = []
        for m in due_monitors(self.ws, now):
            try:
                run_monitor(self.ws, m.name, now_ms=now)
                ran.append(m.name)
            except Exception as exc:  # a monitor without a log yet, say: the others still run
                if isinstance(exc, ShipyardError):
                    logger.warning("monitor %s: %s", m.name, exc.message)
                else:
                    logger.exception("monitor %s failed", m.name)
                # Tried: the next try waits the monitor's interval, not the next poll.
                with contextlib.suppress(ShipyardError):
                    self.ws.monitors.update_monitor(m.name, last_run_time=now)
        return ran

    def run_forever(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # keep polling through database hiccups
                logger.exception("monitor scheduler poll failed")
            self._stop.wait(self.poll_interval_s)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.run_forever, name="shipyard-monitor-scheduler", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
