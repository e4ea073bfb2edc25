"""The web UI at scale: page and chart-data latency of a real ``shipyard server``.

Populates one experiment with N runs (10 params, 5 tags, 20 metrics each: the bulk inserts of
``bench/search_scale.py``) and gives one run a metric history of P points (logged with the
store's ``log_batch``, 1,000 points a call), starts ``shipyard server`` over that store on a free
loopback port, and times what a browser asks for: the runs table (first page, filtered and
sorted, a deep page by keyset token, many columns), the run page, the metric chart's data on the
step and time axes (the whole history read, downsampled on the server), and a 50-run compare
view with its overlay. The goal: each answers in under 1 s at 100,000 runs and a 100,000-point
history::

    .venv/bin/python bench/ui.py                       # 100,000 runs, 100,000 points
    .venv/bin/python bench/ui.py --runs 10000 --points 20000 --repeats 5   # a quick look
    .venv/bin/python bench/ui.py --db /tmp/ui-bench.db # keep (and reuse) the populated store
    .venv/bin/python bench/ui.py --browser             # also time the pages in Chromium

MLflow's UI as an anchor is left out: its pages are a React app that fetches
``runs/search`` and ``metrics/get-history`` itself, so there is no single page to time; the
``bench/run`` search and history workloads compare the API calls underneath.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import search_scale  # noqa: E402  (bench/search_scale.py: the bulk inserts)

from shipyard.entities import Metric  # noqa: E402
from shipyard.store.sql import SqlTrackingStore  # noqa: E402

HISTORY_KEY = "loss_curve"
GOAL_MS = 1000.0


def add_history(url: str, exp_id: str, points: int) -> str:
    """Give the newest run a ``points``-long history of :data:`HISTORY_KEY`; its id."""
    with SqlTrackingStore(url) as store:
        run = store.search_runs([exp_id], max_results=1).items[0]
        rid = run.info.run_id
        if HISTORY_KEY in run.data.metrics:
            have = len(store.get_metric_history(rid, HISTORY_KEY).items)
            if have == points:
                print(f"reusing a {points:,}-point history on run {rid[:8]}")
                return rid
            raise SystemExit(
                f"run {rid} already has {have:,} points, not {points:,}; use a new --db"
            )
        started = time.perf_counter()
        base = 1_700_000_000_000
        for first in range(0, points, 1000):
            batch = [
                Metric(HISTORY_KEY, 1.0 / (1 + s / 1000) + (s % 97) * 1e-4, base + s * 100, s)
                for s in range(first, min(points, first + 1000))
            ]
            store.log_batch(rid, batch)
        print(f"logged {points:,} points in {time.perf_counter() - started:.1f} s (log_batch)")
        return rid


@contextmanager
def server(url: str, home: Path) -> Iterator[str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPYARD_", "MLFLOW_"))}
    env.update(SHIPYARD_HOME=str(home), SHIPYARD_TRACKING_URI=url)
    cmd = [sys.executable, "-m", "shipyard", "server", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--log-level", "warning", "--no-scheduler"]
    log = home / "server.log"
    home.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"the server exited:\n{log.read_text()}")
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"the server did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def timed(client: httpx.Client, path: str, repeats: int) -> tuple[float, float, int]:
    """Median and max milliseconds of ``GET path`` after one warm-up, and the body size."""
    r = client.get(path)
    if r.status_code != 200:
        raise SystemExit(f"GET {path} answered {r.status_code}: {r.text[:500]}")
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        r = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        r.raise_for_status()
    return statistics.median(times), max(times), len(r.content)


def next_token(client: httpx.Client, path: str, pages: int) -> str:
    """Follow the runs table's Next link ``pages`` times; the path of the last page."""
    import html
    import re

    for _ in range(pages):
        body = client.get(path).text
        found = re.search(r'href="([^"]+)" rel="next"', body)
        if found is None:
            raise SystemExit(f"no Next link on {path}")
        path = html.unescape(found.group(1))
    return path


def browser_timings(base: str, runs: str, rid: str, repeats: int) -> None:
    """What a person waits for in Chromium (Debian's, through Playwright): the runs page
    loaded, and the run page with the history's chart drawn."""
    from playwright.sync_api import sync_playwright

    drawn = "() => document.querySelectorAll('figure[data-chart] .uplot canvas').length >= 1"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        cases = [
            ("browser: runs page loaded", f"{base}{runs}", None),
            (
                "browser: run page, 100k-point chart drawn",
                f"{base}/runs/{rid}?chart={HISTORY_KEY}",
                drawn,
            ),
        ]
        for label, url, wait in cases:
            times = []
            for _ in range(repeats + 1):
                started = time.perf_counter()
                page.goto(url)
                if wait:
                    page.wait_for_function(wait, timeout=60_000)
                times.append((time.perf_counter() - started) * 1000)
            median, top = statistics.median(times[1:]), max(times[1:])
            print(
                f"{label:<52} {median:10.1f} {top:8.1f} {'':>7}  {'ok' if median < GOAL_MS else 'SLOW'}"
            )
        browser.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=100_000)
    p.add_argument("--points", type=int, default=100_000, help="points in the charted history")
    p.add_argument("--db", help="keep the SQLite store in this file (reused if populated)")
    p.add_argument("--repeats", type=int, default=7, help="timed requests per page")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument(
        "--browser",
        action="store_true",
        help="also time the pages in Debian's Chromium (needs /usr/bin/chromium and playwright)",
    )
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="shipyard-ui-bench-") as tmp:
        db = Path(args.db).absolute() if args.db else Path(tmp) / "ui.db"
        url = f"sqlite:///{db}"
        exp_id = search_scale.populate(url, args.runs, args.seed)
        rid = add_history(url, exp_id, args.points)
        with SqlTrackingStore(url) as store:
            compare_ids = [r.info.run_id for r in store.search_runs([exp_id], max_results=50).items]
        with server(url, Path(tmp) / "home") as base, httpx.Client(base_url=base, timeout=60) as c:
            runs = f"/experiments/{exp_id}"
            cols = "&".join(f"cols=metrics.m{k}" for k in range(20))
            cols += "&" + "&".join(f"cols=params.p{k}" for k in range(10))
            compare = "&".join(f"runs={i}" for i in compare_ids)
            deep = next_token(c, f"{runs}?filter=metrics.m1+%3E+0.5&order=metrics.m2+DESC", 5)
            cases = [
                ("runs page: first 50, newest first", f"{runs}"),
                (
                    "runs page: filter + order by metric",
                    f"{runs}?filter=metrics.m1+%3E+0.5+and+params.p1+%3D+%27x%27"
                    "&order=metrics.m2+DESC",
                ),
                ("runs page: page 6 of that (keyset token)", deep),
                ("runs page: 200 runs x 30 columns", f"{runs}?per_page=200&{cols}"),
                ("run page (charts load their data apart)", f"/runs/{rid}"),
                (
                    f"metric chart data: {args.points:,} points, step axis",
                    f"/ui/data/runs/{rid}/metric?key={HISTORY_KEY}&x=step&points=2000",
                ),
                (
                    f"metric chart data: {args.points:,} points, time axis",
                    f"/ui/data/runs/{rid}/metric?key={HISTORY_KEY}&x=time&points=2000",
                ),
                ("compare page: 50 runs", f"/compare?{compare}"),
                (
                    "compare overlay data: 50 runs",
                    f"/ui/data/compare/metric?{compare}&key=m1&x=step",
                ),
            ]
            print(
                f"\n{args.runs:,} runs, {args.points:,}-point history, SQLite, one worker; "
                f"median (max) of {args.repeats} requests\n"
            )
            print(f"{'request':<52} {'median ms':>10} {'max ms':>8} {'KiB':>7}  goal < 1 s")
            worst = 0.0
            for label, path in cases:
                median, top, size = timed(c, path, args.repeats)
                worst = max(worst, median)
                verdict = "ok" if median < GOAL_MS else "SLOW"
                print(f"{label:<52} {median:10.1f} {top:8.1f} {size / 1024:7.1f}  {verdict}")
            if args.browser:
                browser_timings(base, runs, rid, args.repeats)
            print(f"\nslowest median {worst:.0f} ms: goal {'met' if worst < GOAL_MS else 'MISSED'}")


if __name__ == "__main__":
    main()
