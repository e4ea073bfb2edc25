"""Shipyard vs MLflow: the same tracking workloads against both servers, in one run.

Run it through ``bench/run``, which prepares the two environments (Shipyard's and MLflow's are
separate virtual environments) and passes their interpreters here. See bench/README.md for what
each workload does and how to read the table.

    bench/run                 # the full benchmark
    bench/run --quick         # a small smoke run (checks the harness works; figures are noisy)
    bench/run --only a,c      # some workloads only

Both servers run on SQLite in a temporary folder, on free loopback ports, one worker each. Each
measurement is made by a long-lived client process (``bench/clients.py``), so client start-up and
imports are not timed. Five client/server pairs are measured, interleaved, repetition after
repetition:

* ``http -> shipyard`` and ``http -> mlflow``: the same raw-HTTP client code (standard library,
  one keep-alive connection) against MLflow's REST API on each server: the server's speed;
* ``mlflow -> shipyard``: the unmodified MLflow client against Shipyard's MLflow-compatible API;
* ``sdk -> shipyard``: Shipyard's own SDK (``shipyard.Client``) against the Shipyard server;
* ``mlflow -> mlflow``: the MLflow client against the MLflow server.

The table compares ``http -> shipyard`` with ``http -> mlflow`` (the performance goals), then
``mlflow -> shipyard`` and ``sdk -> shipyard`` with ``mlflow -> mlflow``.
Server CPU (psutil, summed over the server's process tree) is recorded for every measurement.
Figures are medians with (min-max) over repetitions; results are also written as JSON to
``.bench/results-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import psutil

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
MIB = 1024 * 1024
WORKLOADS = ("a", "b", "c", "d", "e", "f")


@dataclass(frozen=True)
class Sizes:
    runs: int  # (a) runs of 10 params, 5 tags, 20 metrics
    history_points: int  # (b)
    history_reads: int  # (b) reads per repetition
    search_runs: int  # (c) runs in the searched experiment
    searches: int  # (c) timed searches per repetition
    artifact_mb: tuple[int, ...]  # (d) sizes; the largest is the headline figure
    imports: int  # (e) fresh interpreters per system
    starts: int  # (e) server starts per system (fresh folder and restart each)
    repeat: int  # repetitions of (a)-(d)
    populate_workers: int  # (c) client processes writing the search runs in parallel
    default_workers_start: bool  # (e) also time MLflow's default (multi-worker) start
    versions: int = 100  # (f) model versions registered per measurement
    loads: int = 20  # (f) warm loads by alias per measurement


FULL = Sizes(200, 10_000, 5, 10_000, 7, (5, 50), 5, 3, 3, 4, True)
QUICK = Sizes(20, 1_000, 3, 300, 3, (2, 10), 2, 1, 1, 2, False, 10, 5)

REGISTRY_PAIRS = (("mlflow", "shipyard"), ("mlflow", "mlflow"), ("shipyard", "shipyard"))
"""The pairs of (f): the model registry has no raw-HTTP driver."""

CLIENT_PAIRS = (
    ("http", "shipyard"),
    ("http", "mlflow"),
    ("mlflow", "shipyard"),
    ("mlflow", "mlflow"),
    ("shipyard", "shipyard"),
)
PAIR_LABEL = {
    ("http", "shipyard"): "http -> shipyard",
    ("http", "mlflow"): "http -> mlflow",
    ("mlflow", "shipyard"): "mlflow -> shipyard",
    ("mlflow", "mlflow"): "mlflow -> mlflow",
    ("shipyard", "shipyard"): "sdk -> shipyard",
}
DRIVER_ENV = {"http": "shipyard", "mlflow": "mlflow", "shipyard": "shipyard"}
"""Whose environment runs each client driver (``http`` is standard library only: one interpreter
drives both servers)."""


def log(msg: str) -> None:
    print(msg, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for servers and clients: no developer SHIPYARD_/MLFLOW_ settings,
    telemetry off."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPYARD_", "MLFLOW_"))}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


# --------------------------------------------------------------------------------- processes


def tree(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in tree(proc):
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def tree_cpu(proc: psutil.Process) -> float:
    total = 0.0
    for p in tree(proc):
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
    return total


class PeakRss:
    """Samples a process tree's RSS in a thread while the ``with`` block runs."""

    def __init__(self, proc: psutil.Process, interval: float = 0.05) -> None:
        self.proc, self.interval, self.peak = proc, interval, 0
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss(self.proc))
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRss:
        self.peak = tree_rss(self.proc)
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, tree_rss(self.proc))


@dataclass
class Server:
    """A Shipyard or MLflow tracking server on a free loopback port."""

    system: str
    home: Path
    command: list[str]
    env: dict[str, str]
    port: int
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def proc(self) -> psutil.Process:
        assert self.popen is not None
        return psutil.Process(self.popen.pid)

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        out = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed on stop
        self.started_at = time.perf_counter()
        self.popen = subprocess.Popen(
            self.command,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.home,
            start_new_session=True,
        )
        out.close()

    def wait_ready(self, timeout: float = 180.0) -> float:
        """Seconds from start until ``/health`` first answered 200."""
        assert self.popen is not None
        deadline = self.started_at + timeout
        while time.perf_counter() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(
                    f"{self.system} server exited with {self.popen.returncode}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        return time.perf_counter() - self.started_at
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.02)
        raise RuntimeError(
            f"{self.system} server not ready after {timeout:.0f} s:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM to the server's process group, then SIGKILL to whatever is left of it."""
        if self.popen is None:
            return
        procs = tree(self.proc) if self.popen.poll() is None else []
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        _, alive = psutil.wait_procs(procs, timeout=15)
        if alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            for p in alive:
                with contextlib.suppress(psutil.Error):
                    p.kill()
            psutil.wait_procs(alive, timeout=15)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=15)


class Environments:
    """Where each system's interpreter and server command live."""

    def __init__(self, shipyard_python: str, mlflow_python: str, workdir: Path) -> None:
        self.python = {"shipyard": shipyard_python, "mlflow": mlflow_python}
        self.workdir = workdir
        self._n = 0

    def server(self, system: str, home: Path | None = None, *, workers: int | None = 1) -> Server:
        self._n += 1
        home = home or self.workdir / f"{system}-server-{self._n}"
        port = free_port()
        bindir = Path(self.python[system]).parent
        if system == "shipyard":
            command = [str(bindir / "shipyard"), "--home", str(home), "server"]
            command += ["--host", "127.0.0.1", "--port", str(port)]
            env = clean_env(SHIPYARD_HOME=str(home))
        else:
            command = [
                str(bindir / "mlflow"),
                "server",
                "--backend-store-uri",
                f"sqlite:///{home / 'mlflow.db'}",
                "--artifacts-destination",
                str(home / "artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ]
            env = clean_env()
        if workers is not None:
            command += ["--workers", str(workers)]
        return Server(system, home, command, env, port, self.workdir / f"{home.name}.log")


class Worker:
    """A long-lived ``bench/clients.py`` process: one client library against one server."""

    def __init__(
        self, envs: Environments, driver: str, server: Server, uri: str | None = None
    ) -> None:
        self.driver, self.server = driver, server
        self.label = PAIR_LABEL.get((driver, server.system), f"{driver} -> {server.system}")
        self.stderr_path = envs.workdir / f"client-{driver}-{server.system}-{free_port()}.log"
        self._stderr: IO[bytes] = open(self.stderr_path, "wb")  # noqa: SIM115 - closed in close()
        python = envs.python[DRIVER_ENV[driver.split("-")[0]]]
        self.popen = subprocess.Popen(
            [python, str(BENCH_DIR / "clients.py"), driver, uri or server.url],
            env=clean_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            cwd=envs.workdir,
        )
        hello = self._read()
        if not hello.get("ready"):
            raise RuntimeError(f"client {self.label} failed to start: {hello}")

    def _read(self) -> dict[str, Any]:
        assert self.popen.stdout is not None
        line = self.popen.stdout.readline()
        if not line:
            self._stderr.flush()
            tail = self.stderr_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"client {self.label} exited:\n{tail}")
        result: dict[str, Any] = json.loads(line)
        return result

    def send(self, command: str, **args: Any) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(json.dumps({"command": command, **args}) + "\n")
        self.popen.stdin.flush()

    def call(self, command: str, **args: Any) -> dict[str, Any]:
        """Run one command; adds the server's CPU seconds and peak RSS while it ran."""
        proc = self.server.proc
        cpu0 = tree_cpu(proc)
        with PeakRss(proc) as peak:
            self.send(command, **args)
            result = self._read()
        result["server_cpu"] = tree_cpu(proc) - cpu0
        result["server_peak_rss"] = peak.peak
        result["client"] = self.label
        return result

    def close(self) -> None:
        if self.popen.stdin:
            with contextlib.suppress(BrokenPipeError):
                self.popen.stdin.close()
        try:
            self.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
        self._stderr.close()


# ------------------------------------------------------------------------------------ results


@dataclass
class Results:
    """Samples per (figure, client/server pair), plus the raw answers for the JSON file."""

    samples: dict[str, dict[str, list[float]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )
    raw: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, figure: str, pair: str, value: float) -> None:
        self.samples[figure][pair].append(value)

    def get(self, figure: str, pair: str) -> list[float]:
        return self.samples.get(figure, {}).get(pair, [])


def med(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def fmt_num(v: float | None, digits: int = 3) -> str:
    if v is None:
        return "-"
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def fmt_samples(values: list[float]) -> str:
    if not values:
        return "-"
    m = statistics.median(values)
    if len(values) == 1:
        return fmt_num(m)
    return f"{fmt_num(m)} ({fmt_num(min(values))}-{fmt_num(max(values))})"


def record(
    results: Results, workload: str, worker: Worker, answer: dict[str, Any], **info: Any
) -> bool:
    answer = {"workload": workload, **info, **answer}
    results.raw.append(answer)
    if "error" in answer:
        msg = f"{workload} [{worker.label}]: {answer['error']}"
        results.errors.append(msg)
        log(f"    ERROR {msg}")
        return False
    return True


def cpu_note(answer: dict[str, Any], per: float, unit: str) -> str:
    if not per:
        return ""
    return f"server {answer['server_cpu'] * 1000 / per:.2f} ms CPU/{unit}"


# ---------------------------------------------------------------------------------- workloads


class Bench:
    def __init__(
        self, envs: Environments, sizes: Sizes, only: set[str], populate_mode: str = "direct"
    ) -> None:
        self.envs, self.sizes, self.only = envs, sizes, only
        self.populate_mode = populate_mode
        self.results = Results()
        self.servers: dict[str, Server] = {}
        self.workers: dict[tuple[str, str], Worker] = {}
        self._embedded: Worker | None = None

    # -- servers and clients for (a)-(d)

    def start_servers(self) -> None:
        for system in ("shipyard", "mlflow"):
            server = self.envs.server(system)
            server.start()
            ready = server.wait_ready()
            self.servers[system] = server
            log(
                f"  {system} server ready in {ready:.2f} s at {server.url} (log: {server.log_path})"
            )
        for driver, system in CLIENT_PAIRS:
            self.workers[(driver, system)] = Worker(self.envs, driver, self.servers[system])

    def stop_servers(self) -> None:
        for worker in [*self.workers.values(), *([self._embedded] if self._embedded else [])]:
            worker.close()
        for server in self.servers.values():
            server.stop()

    def pairs(self, rep: int) -> list[Worker]:
        """The three client/server pairs, rotated each repetition so no system always goes first."""
        order = [self.workers[p] for p in CLIENT_PAIRS]
        k = rep % len(order)
        return order[k:] + order[:k]

    # -- (a)

    def workload_a(self, rep: int) -> None:
        runs = self.sizes.runs
        for worker in self.pairs(rep):
            exp = f"a-single-{worker.driver}-r{rep}"
            ans = worker.call("logging_single", experiment=exp, runs=runs)
            if record(self.results, "a_single", worker, ans, rep=rep):
                rate = ans["calls"] / ans["seconds"]
                self.results.add("a_single", worker.label, rate)
                self.results.add("a_single_cpu", worker.label, ans["server_cpu"] / ans["calls"])
                log(
                    f"    a single  {worker.label:<20} {rate:10,.0f} calls/s     "
                    + cpu_note(ans, ans["calls"], "call")
                )
        for worker in self.pairs(rep):
            exp = f"a-batch-{worker.driver}-r{rep}"
            ans = worker.call("logging_batch", experiment=exp, runs=runs)
            if record(self.results, "a_batch", worker, ans, rep=rep):
                rate = ans["entities"] / ans["seconds"]
                self.results.add("a_batch", worker.label, rate)
                self.results.add("a_batch_cpu", worker.label, ans["server_cpu"] / ans["calls"])
                log(
                    f"    a batch   {worker.label:<20} {rate:10,.0f} entities/s  "
                    + cpu_note(ans, ans["calls"], "batch")
                )

    # -- (b)

    def workload_b(self, rep: int) -> None:
        points, reads = self.sizes.history_points, self.sizes.history_reads
        for worker in self.pairs(rep):
            exp = f"b-history-{worker.driver}-r{rep}"
            ans = worker.call("history_write", experiment=exp, points=points)
            if not record(self.results, "b_write", worker, ans, rep=rep):
                continue
            rate = ans["points"] / ans["seconds"]
            self.results.add("b_write", worker.label, rate)
            log(
                f"    b write   {worker.label:<20} {rate:10,.0f} points/s    "
                + cpu_note(ans, ans["points"] / 1000, "1000 points")
            )
            got = worker.call("history_read", run_id=ans["run_id"], reads=reads)
            if not record(self.results, "b_read", worker, got, rep=rep):
                continue
            if got["points"] != points:
                self.results.errors.append(
                    f"b_read [{worker.label}]: read {got['points']} points, wrote {points}"
                )
            for t in got["times"]:
                self.results.add("b_read", worker.label, t * 1000)
            log(
                f"    b read    {worker.label:<20} {med(got['times']) * 1000:10,.1f} ms        "
                + cpu_note(got, got["ops"], "read")
            )

    # -- (c)

    def populate_c(self) -> dict[str, str]:
        """The search experiment on each server.

        ``direct`` (default): one process per system writes the server's database file with
        that system's own store code (MLflow's SqlAlchemyStore, Shipyard's embedded SDK) while
        the server idles: the same rows as through the API, in minutes instead of the better
        part of an hour for MLflow. ``http``: parallel client processes through the servers.
        """
        n, mode = self.sizes.search_runs, self.populate_mode
        experiment_ids = {}
        for driver, system in (("shipyard", "shipyard"), ("mlflow", "mlflow")):
            server = self.servers[system]
            lead = self.workers[(driver, system)]
            exp = lead.call("create_experiment", experiment="c-search")["experiment_id"]
            experiment_ids[system] = exp
            if mode == "direct":
                if system == "shipyard":
                    uri = f"sqlite:///{server.home / 'shipyard.db'}"
                else:
                    uri = f"sqlite:///{server.home / 'mlflow.db'}|{server.home / 'artifacts'}"
                writers = [Worker(self.envs, f"{driver}-store", server, uri)]
            else:
                k = self.sizes.populate_workers
                writers = [lead, *(Worker(self.envs, driver, server) for _ in range(k - 1))]
            k = len(writers)
            chunks = [(i * n // k, (i + 1) * n // k - i * n // k) for i in range(k)]
            cpu0 = tree_cpu(server.proc)
            t0 = time.perf_counter()
            for w, (start, count) in zip(writers, chunks, strict=True):
                w.send("populate", experiment_id=exp, start=start, count=count)
            answers = [w._read() for w in writers]
            elapsed = time.perf_counter() - t0
            cpu = tree_cpu(server.proc) - cpu0
            for w in writers:
                if w is not lead:
                    w.close()
            bad = [a["error"] for a in answers if "error" in a]
            if bad:
                self.results.errors.append(f"c populate [{system}]: {bad[0]}")
                log(f"    ERROR c populate [{system}]: {bad[0]}")
                experiment_ids.pop(system)
                continue
            self.results.add("c_populate", system, n / elapsed)
            self.results.raw.append(
                {
                    "workload": "c_populate",
                    "system": system,
                    "mode": mode,
                    "runs": n,
                    "seconds": elapsed,
                    "server_cpu": cpu,
                    "writers": k,
                }
            )
            how = "its own store, directly" if mode == "direct" else f"{k} HTTP clients"
            log(
                f"    c populate {system:<19} {n:,} runs in {elapsed:.1f} s "
                f"({n / elapsed:,.0f} runs/s; {how})"
            )
        return experiment_ids

    def workload_c(self, rep: int, experiment_ids: dict[str, str]) -> None:
        for worker in self.pairs(rep):
            exp = experiment_ids.get(worker.server.system)
            if exp is None:
                continue
            ans = worker.call("search", experiment_id=exp, repeats=self.sizes.searches, page=100)
            if not record(self.results, "c_search", worker, ans, rep=rep):
                continue
            for t in ans["times"]:
                self.results.add("c_search", worker.label, t * 1000)
            log(
                f"    c search  {worker.label:<20} {med(ans['times']) * 1000:10,.1f} ms        "
                f"({ans['found']} runs returned; " + cpu_note(ans, ans["ops"], "search") + ")"
            )

    def workload_c_list(self, experiment_ids: dict[str, str]) -> None:
        for worker in self.pairs(0):
            exp = experiment_ids.get(worker.server.system)
            if exp is None:
                continue
            ans = worker.call("list_all", experiment_id=exp, page=1000)
            if record(self.results, "c_list", worker, ans):
                self.results.add("c_list", worker.label, ans["seconds"])
                log(
                    f"    c list    {worker.label:<20} {ans['seconds']:10,.2f} s         ({ans['runs']:,} runs, pages of 1,000)"
                )

    # -- (d)

    def workload_d(self, rep: int) -> None:
        for size in self.sizes.artifact_mb:
            for worker in self.pairs(rep):
                exp = f"d-artifact-{size}mb-{worker.driver}-r{rep}"
                before = tree_rss(worker.server.proc)
                ans = worker.call(
                    "artifact", experiment=exp, size_mb=size, workdir=str(self.envs.workdir)
                )
                if not record(self.results, f"d_{size}", worker, ans, rep=rep, size_mb=size):
                    continue
                mib = ans["bytes"] / MIB
                up, down = mib / ans["upload_seconds"], mib / ans["download_seconds"]
                peak = ans["server_peak_rss"] / MIB
                self.results.add(f"d_up_{size}", worker.label, up)
                self.results.add(f"d_down_{size}", worker.label, down)
                self.results.add(f"d_peak_{size}", worker.label, peak)
                self.results.add(f"d_growth_{size}", worker.label, peak - before / MIB)
                log(
                    f"    d {size:>4} MiB {worker.label:<18} up {up:8,.0f} MiB/s  down {down:8,.0f} MiB/s  "
                    f"server peak RSS {peak:,.0f} MB (+{peak - before / MIB:,.0f})"
                )

    # -- (f)

    def workload_f(self, rep: int) -> None:
        n, loads = self.sizes.versions, self.sizes.loads
        workers = [self.workers[p] for p in REGISTRY_PAIRS]
        k = rep % len(workers)
        embedded = self.embedded_worker()
        for worker in [*workers[k:], *workers[:k], embedded]:
            exp = f"f-registry-{worker.driver}-r{rep}"
            ans = worker.call("registry", experiment=exp, versions=n, loads=loads)
            if not record(self.results, "f", worker, ans, rep=rep):
                continue
            reg = ans["register_seconds"] / n * 1000
            alias = ans["alias_seconds"] / n * 1000
            load = ans["load_seconds"] / loads * 1000
            self.results.add("f_register", worker.label, reg)
            self.results.add("f_alias", worker.label, alias)
            self.results.add("f_load", worker.label, load)
            log(
                f"    f registry {worker.label:<19} register {reg:7.2f} ms/version  "
                f"alias {alias:7.2f} ms/move  load by alias {load:7.2f} ms"
            )

    def embedded_worker(self) -> Worker:
        """Shipyard's SDK on an embedded workspace of its own (SQLite + local folder)."""
        if self._embedded is None:
            db = self.envs.workdir / "embedded" / "shipyard.db"
            db.parent.mkdir(parents=True, exist_ok=True)
            self._embedded = Worker(
                self.envs, "shipyard-store", self.servers["shipyard"], f"sqlite:///{db}"
            )
            self._embedded.label = "sdk (embedded)"
        return self._embedded

    # -- (e)

    def workload_e(self) -> None:
        s = self.sizes
        snippets = {
            "shipyard": ("import shipyard", "shipyard.Client"),
            "mlflow": ("import mlflow", "mlflow.tracking.MlflowClient"),
        }
        for i in range(s.imports + 1):  # the first round warms the bytecode caches
            for system in ("shipyard", "mlflow") if i % 2 == 0 else ("mlflow", "shipyard"):
                stmt, attr = snippets[system]
                code = (
                    "import time; t0 = time.perf_counter(); "
                    f"{stmt}; t1 = time.perf_counter(); {attr}; t2 = time.perf_counter(); "
                    "print(t1 - t0, t2 - t0)"
                )
                out = subprocess.run(
                    [self.envs.python[system], "-c", code],
                    env=clean_env(),
                    cwd=self.envs.workdir,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if out.returncode != 0:
                    self.results.errors.append(f"e import {system}: {out.stderr.strip()[-500:]}")
                    break
                if i == 0:
                    continue
                t_import, t_client = map(float, out.stdout.split())
                self.results.add("e_import", system, t_import)
                self.results.add("e_import_client", system, t_client)
        for system in ("shipyard", "mlflow"):
            log(
                f"    e import  {system:<20} {fmt_samples(self.results.get('e_import', system))} s"
                f"  (+ client class: {fmt_samples(self.results.get('e_import_client', system))} s)"
            )

        for system in ("shipyard", "mlflow"):
            # One start not counted: it loads the server's code into the page cache and writes
            # the bytecode caches, which a freshly installed environment lacks.
            server = self.envs.server(system)
            try:
                server.start()
                warm = server.wait_ready(timeout=300)
            finally:
                server.stop()
            log(f"    e warm-up {system:<20} ready {warm:.2f} s (not counted)")
        for i in range(s.starts):
            for system in ("shipyard", "mlflow") if i % 2 == 0 else ("mlflow", "shipyard"):
                server = self.envs.server(system)
                try:
                    server.start()
                    fresh = server.wait_ready()
                finally:
                    server.stop()
                server.start()  # the same folder again: a restart
                try:
                    restart = server.wait_ready()
                    time.sleep(2.0)  # let it settle before measuring idle memory
                    idle = tree_rss(server.proc) / MIB
                    nproc = len(tree(server.proc))
                finally:
                    server.stop()
                self.results.add("e_ready_fresh", system, fresh)
                self.results.add("e_ready_restart", system, restart)
                self.results.add("e_idle_rss", system, idle)
                log(
                    f"    e start   {system:<20} ready {fresh:.2f} s (new database), "
                    f"{restart:.2f} s (restart); idle RSS {idle:,.0f} MB in {nproc} processes"
                )
        if s.default_workers_start:
            server = self.envs.server("mlflow", workers=None)
            try:
                server.start()
                ready = server.wait_ready(timeout=300)
                time.sleep(2.0)
                idle = tree_rss(server.proc) / MIB
                nproc = len(tree(server.proc))
            finally:
                server.stop()
            self.results.add("e_ready_default", "mlflow", ready)
            self.results.add("e_idle_rss_default", "mlflow", idle)
            log(
                f"    e start   mlflow (default workers)  ready {ready:.2f} s; idle RSS "
                f"{idle:,.0f} MB in {nproc} processes"
            )

    # -- driver

    def run(self) -> None:
        s = self.sizes
        if "e" in self.only:
            log("\n(e) import time, server start, idle memory")
            self.workload_e()
        if not self.only & {"a", "b", "c", "d", "f"}:
            return
        log("\nStarting the servers for (a)-(d) and (f)")
        try:
            self.start_servers()
            experiment_ids: dict[str, str] = {}
            if "c" in self.only:
                log(f"\n(c) populating {s.search_runs:,} runs per server")
                experiment_ids = self.populate_c()
            for rep in range(s.repeat):
                log(f"\nRepetition {rep + 1}/{s.repeat}")
                if "a" in self.only:
                    self.workload_a(rep)
                if "b" in self.only:
                    self.workload_b(rep)
                if "c" in self.only:
                    self.workload_c(rep, experiment_ids)
                if "d" in self.only:
                    self.workload_d(rep)
                if "f" in self.only:
                    self.workload_f(rep)
            if "c" in self.only:
                self.workload_c_list(experiment_ids)
            for system, server in self.servers.items():
                self.results.add("rss_after", system, tree_rss(server.proc) / MIB)
        finally:
            self.stop_servers()


# ------------------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Row:
    label: str
    figure: str
    higher_is_better: bool
    goal: str = ""
    check: Callable[[float, float], bool] | None = None  # (ratio, shipyard median) -> met?


def table_rows(sizes: Sizes) -> list[tuple[str, list[Row]]]:
    big, small = max(sizes.artifact_mb), min(sizes.artifact_mb)
    n = sizes.search_runs
    tracking = [
        Row("(a) single-call logging, calls/s", "a_single", True, ">=10x", lambda r, s: r >= 10),
        Row("(a) log-batch ingest, entities/s", "a_batch", True, ">=30x", lambda r, s: r >= 30),
        Row(f"(b) write {sizes.history_points:,}-point history, points/s", "b_write", True),
        Row(
            f"(b) read {sizes.history_points:,}-point history, ms",
            "b_read",
            False,
            ">=20x",
            lambda r, s: r >= 20,
        ),
        Row(
            f"(c) search 100 of {n:,} runs, ms",
            "c_search",
            False,
            ">=20x, <50 ms",
            lambda r, s: r >= 20 and s < 50,
        ),
        Row(f"(c) list all {n:,} runs, s", "c_list", False),
        Row(f"(d) upload {big} MiB, MiB/s", f"d_up_{big}", True, ">=3x", lambda r, s: r >= 3),
        Row(f"(d) download {big} MiB, MiB/s", f"d_down_{big}", True, ">=3x", lambda r, s: r >= 3),
        Row(f"(d) server peak RSS, {small} MiB artifact, MB", f"d_peak_{small}", False),
        Row(
            f"(d) server peak RSS, {big} MiB artifact, MB",
            f"d_peak_{big}",
            False,
            "independent of size",
        ),
    ]
    startup = [
        Row("(e) import time, s", "e_import", False, "<0.3 s", lambda r, s: s < 0.3),
        Row("(e) import + client class, s", "e_import_client", False),
        Row(
            "(e) server ready, new database, s",
            "e_ready_fresh",
            False,
            "<1.5 s",
            lambda r, s: s < 1.5,
        ),
        Row(
            "(e) server ready, restart, s", "e_ready_restart", False, "<1.5 s", lambda r, s: s < 1.5
        ),
        Row("(e) idle server RSS, MB", "e_idle_rss", False, "<200 MB", lambda r, s: s < 200),
    ]
    n = sizes.versions
    registry_mlflow = [
        Row(
            f"(f) register {n} versions, ms/version",
            "f_register",
            False,
            ">=3x",
            lambda r, s: r >= 3,
        ),
        Row("(f) move an alias, ms", "f_alias", False),
        Row("(f) load models:/name@alias (warm), ms", "f_load", False),
    ]
    registry_sdk = [
        Row(
            f"(f) register {n} versions, ms/version",
            "f_register",
            False,
            ">=10x",
            lambda r, s: r >= 10,
        ),
        Row("(f) move an alias, ms", "f_alias", False),
        Row(
            "(f) load models:/name@alias (warm), ms", "f_load", False, "<50 ms", lambda r, s: s < 50
        ),
    ]
    return [
        (
            "Raw HTTP (the same client code) -> Shipyard server  vs  -> MLflow server (server speed)",
            tracking,
        ),
        (
            "MLflow client -> Shipyard server  vs  MLflow client -> MLflow server (compatibility path)",
            tracking,
        ),
        (
            "Shipyard SDK -> Shipyard server  vs  MLflow client -> MLflow server (each system's own client)",
            tracking,
        ),
        ("Start-up and memory (server-side, no client)", startup),
        (
            "Model registry: MLflow client -> Shipyard server  vs  MLflow client -> MLflow server",
            registry_mlflow,
        ),
        (
            "Model registry: Shipyard SDK -> Shipyard server  vs  MLflow client -> MLflow server",
            registry_sdk,
        ),
    ]


def summarize(results: Results, sizes: Sizes) -> list[dict[str, Any]]:
    """One entry per table row: medians, ranges, ratio (how many times better Shipyard is)."""
    out = []
    sections = table_rows(sizes)
    pair_sets = [
        ("http -> shipyard", "http -> mlflow"),
        ("mlflow -> shipyard", "mlflow -> mlflow"),
        ("sdk -> shipyard", "mlflow -> mlflow"),
        ("shipyard", "mlflow"),
        ("mlflow -> shipyard", "mlflow -> mlflow"),
        ("sdk -> shipyard", "mlflow -> mlflow"),
    ]
    for (title, rows), (ours, theirs) in zip(sections, pair_sets, strict=True):
        for row in rows:
            a, b = results.get(row.figure, ours), results.get(row.figure, theirs)
            ma, mb = med(a), med(b)
            ratio = None
            if ma and mb:
                ratio = ma / mb if row.higher_is_better else mb / ma
            met = None
            if row.check and ratio is not None and ma is not None:
                met = row.check(ratio, ma)
            elif row.check and ma is not None and row.figure.startswith("e_"):
                met = row.check(0.0, ma)
            out.append(
                {
                    "section": title,
                    "metric": row.label,
                    "figure": row.figure,
                    "shipyard": a,
                    "mlflow": b,
                    "shipyard_median": ma,
                    "mlflow_median": mb,
                    "ratio": ratio,
                    "goal": row.goal,
                    "goal_met": met,
                    "higher_is_better": row.higher_is_better,
                }
            )
    # Memory independence: the growth of Shipyard's peak from the smallest to the largest size.
    big, small = max(sizes.artifact_mb), min(sizes.artifact_mb)
    section_pair = {title: ours for (title, _), (ours, _) in zip(sections, pair_sets, strict=True)}
    for entry in out:
        if entry["figure"] == f"d_peak_{big}" and entry["shipyard_median"] is not None:
            pair = section_pair[entry["section"]]
            small_peak = med(results.get(f"d_peak_{small}", pair))
            if small_peak is not None and big != small:
                growth = entry["shipyard_median"] - small_peak
                entry["goal"] = f"independent of size (+{growth:.0f} MB from {small} to {big} MiB)"
                entry["goal_met"] = growth < 0.5 * (big - small)
    return out


def print_table(summary: list[dict[str, Any]], results: Results) -> None:
    header = ("metric", "Shipyard", "MLflow", "ratio", "goal", "met")
    section = None
    rows: list[tuple[str, ...]] = []
    lines: list[tuple[str, list[tuple[str, ...]]]] = []
    for e in summary:
        if e["section"] != section:
            section = e["section"]
            rows = []
            lines.append((section, rows))
        ratio = "-" if e["ratio"] is None else f"{e['ratio']:.1f}x"
        met = {True: "yes", False: "NO", None: ""}[e["goal_met"]]
        rows.append(
            (
                e["metric"],
                fmt_samples(e["shipyard"]),
                fmt_samples(e["mlflow"]),
                ratio,
                e["goal"],
                met,
            )
        )
    all_rows = [header] + [r for _, rs in lines for r in rs]
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(header))]

    def fmt(r: tuple[str, ...]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 or i >= 4 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()

    log("\n" + "=" * sum(widths))
    log(
        "Results: median (min-max); ratio = how many times better Shipyard is (>1: Shipyard better)"
    )
    for title, rs in lines:
        log(f"\n{title}")
        log(fmt(header))
        log("  ".join("-" * w for w in widths))
        for r in rs:
            log(fmt(r))
    extra = []
    for fig, label, unit in (
        ("c_populate", "(c) populate search runs", "runs/s"),
        ("e_ready_default", "(e) MLflow server ready with its default workers", "s"),
        ("e_idle_rss_default", "(e) MLflow idle RSS with its default workers", "MB"),
        ("rss_after", "server RSS after the workloads", "MB"),
        ("f_register", "(f) register a version", "ms"),
        ("f_alias", "(f) move an alias", "ms"),
        ("f_load", "(f) load models:/name@alias (warm)", "ms"),
    ):
        if fig.startswith("f_"):
            vals = results.samples.get(fig, {}).get("sdk (embedded)")
            if vals:
                extra.append(f"  {label} [sdk (embedded)]: {fmt_samples(vals)} {unit}")
            continue
        for pair, vals in results.samples.get(fig, {}).items():
            extra.append(f"  {label} [{pair}]: {fmt_samples(vals)} {unit}")
    for fig, label in (("a_single_cpu", "(a) single call"), ("a_batch_cpu", "(a) log-batch call")):
        for pair, vals in results.samples.get(fig, {}).items():
            extra.append(
                f"  server CPU per {label} [{pair}]: {fmt_samples([v * 1000 for v in vals])} ms"
            )
    if extra:
        log("\nAlso measured:")
        for line in extra:
            log(line)
    if results.errors:
        log(f"\n{len(results.errors)} measurement(s) failed:")
        for err in results.errors:
            log(f"  - {err[:500]}")


def versions(envs: Environments) -> dict[str, str]:
    out = {}
    for system, package in (("shipyard", "shipyard"), ("mlflow", "mlflow")):
        code = f"from importlib.metadata import version; print(version({package!r}))"
        res = subprocess.run(
            [envs.python[system], "-c", code],
            capture_output=True,
            text=True,
            check=False,
            env=clean_env(),
        )
        out[system] = res.stdout.strip() or f"unknown ({res.stderr.strip()[-200:]})"
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Shipyard vs MLflow tracking benchmark.")
    p.add_argument("--quick", action="store_true", help="small sizes, one repetition (smoke run)")
    p.add_argument(
        "--only",
        default=",".join(WORKLOADS),
        help="comma-separated workloads to run: a,b,c,d,e,f (default: all)",
    )
    p.add_argument("--repeat", type=int, help="repetitions of (a)-(d)")
    p.add_argument("--runs", type=int, help="(a) runs per measurement")
    p.add_argument("--history-points", type=int, help="(b) points in the metric history")
    p.add_argument("--search-runs", type=int, help="(c) runs in the searched experiment")
    p.add_argument(
        "--populate",
        choices=("direct", "http"),
        default="direct",
        help="(c) write the search runs with each system's own store code into its server's "
        "database (direct, default) or through the servers' APIs (http, much slower for MLflow)",
    )
    p.add_argument("--artifact-mb", help="(d) comma-separated artifact sizes in MiB")
    p.add_argument("--versions", type=int, help="(f) model versions registered per measurement")
    p.add_argument(
        "--shipyard-python",
        default=sys.executable,
        help="interpreter of the Shipyard environment (default: this one)",
    )
    p.add_argument(
        "--mlflow-python",
        default=str(BENCH_DIR / ".venv-mlflow" / "bin" / "python"),
        help="interpreter of the MLflow environment",
    )
    p.add_argument("--out", default=str(ROOT / ".bench"), help="folder for the JSON results")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (server logs)")
    args = p.parse_args(argv)
    only = {w.strip() for w in args.only.split(",") if w.strip()}
    if not only or only - set(WORKLOADS):
        p.error(f"--only takes a comma-separated subset of {','.join(WORKLOADS)}")
    args.only = only
    return args


def sizes_from(args: argparse.Namespace) -> Sizes:
    base = QUICK if args.quick else FULL
    changes: dict[str, Any] = {}
    for name in ("repeat", "runs", "history_points", "search_runs", "versions"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    if args.artifact_mb:
        changes["artifact_mb"] = tuple(int(x) for x in args.artifact_mb.split(","))
    return Sizes(**{**base.__dict__, **changes})


@contextlib.contextmanager
def workdir(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="shipyard-bench-"))
    try:
        yield path
    finally:
        if keep:
            log(f"\nkept {path}")
        else:
            import shutil

            shutil.rmtree(path, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = sizes_from(args)
    started = time.perf_counter()
    with workdir(args.keep) as tmp:
        envs = Environments(args.shipyard_python, args.mlflow_python, tmp)
        vers = versions(envs)
        log(
            f"Shipyard {vers['shipyard']} vs MLflow {vers['mlflow']} on {platform.platform()}, "
            f"{psutil.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB"
        )
        log(f"workloads {','.join(sorted(args.only))}; sizes {sizes}")
        bench = Bench(envs, sizes, args.only, args.populate)
        try:
            bench.run()
        except KeyboardInterrupt:
            log("\ninterrupted: reporting what was measured")
        summary = summarize(bench.results, sizes)
        print_table(summary, bench.results)
    elapsed = time.perf_counter() - started
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out_dir / f"results-{stamp}.json"
    payload = {
        "created": stamp,
        "seconds": elapsed,
        "quick": args.quick,
        "workloads": sorted(args.only),
        "sizes": sizes.__dict__,
        "versions": vers,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": psutil.cpu_count(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        },
        "summary": summary,
        "samples": {k: dict(v) for k, v in bench.results.samples.items()},
        "raw": bench.results.raw,
        "errors": bench.results.errors,
    }
    path.write_text(json.dumps(payload, indent=2, default=str))
    log(f"\nResults written to {path} ({elapsed:.0f} s in all)")
    return 1 if bench.results.errors else 0


if __name__ == "__main__":
    sys.exit(main())
