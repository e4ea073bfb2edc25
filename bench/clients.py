"""Benchmark client worker: runs one tracking client against one server, driven by bench.py.

Started as ``python bench/clients.py DRIVER URI`` with DRIVER ``http`` (raw HTTP against MLflow's
REST API, standard library only: the same code against both servers), ``mlflow`` (the unmodified
MLflow client, in the MLflow environment) or ``shipyard`` (Shipyard's SDK, in the Shipyard
environment);
``mlflow-store`` and ``shipyard-store`` write a server's database file directly, and are used only
to populate the search workload quickly.
It reads one JSON command per line on stdin and answers one JSON line on stdout, so the client
library is imported once and only the work itself is timed. Each answer carries ``seconds`` (wall
clock of the timed part), ``client_cpu`` (CPU seconds this process spent in it), ``ops`` (what was
counted) and workload-specific figures; a failure answers ``{"error": "..."}``.

This file imports only the standard library at module level: each driver imports its client.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Timer:
    """Wall-clock and process-CPU time of a ``with`` block, accumulated over several blocks."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.cpu = 0.0

    def __enter__(self) -> Timer:
        self._t0 = time.perf_counter()
        self._c0 = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds += time.perf_counter() - self._t0
        self.cpu += time.process_time() - self._c0


# ------------------------------------------------------------------------------------- drivers


class MlflowDriver:
    """The unmodified ``mlflow`` client (MlflowClient), synchronous calls as users make them."""

    def __init__(self, uri: str) -> None:
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.tracking import MlflowClient

        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri)
        self._metric, self._param, self._tag = Metric, Param, RunTag

    def create_experiment(self, name: str) -> str:
        return str(self.client.create_experiment(name))

    def create_run(self, experiment_id: str) -> str:
        return str(self.client.create_run(experiment_id).info.run_id)

    def end_run(self, run_id: str) -> None:
        self.client.set_terminated(run_id)

    def log_param(self, run_id: str, key: str, value: str) -> None:
        self.client.log_param(run_id, key, value)

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        self.client.set_tag(run_id, key, value)

    def log_metric(self, run_id: str, key: str, value: float, step: int) -> None:
        self.client.log_metric(run_id, key, value, timestamp=now_ms(), step=step)

    def flush(self) -> None:
        """MlflowClient's single calls are synchronous: nothing is buffered."""

    def log_batch(
        self,
        run_id: str,
        metrics: list[tuple[str, float, int]],
        params: dict[str, str],
        tags: dict[str, str],
    ) -> None:
        ts = now_ms()
        self.client.log_batch(
            run_id,
            metrics=[self._metric(k, v, ts, step) for k, v, step in metrics],
            params=[self._param(k, v) for k, v in params.items()],
            tags=[self._tag(k, v) for k, v in tags.items()],
        )

    def log_history(self, run_id: str, key: str, values: list[float]) -> None:
        """Write a metric history the fastest way the client offers: log_batch, 1,000 a call."""
        ts = now_ms()
        for start in range(0, len(values), 1000):
            chunk = values[start : start + 1000]
            self.client.log_batch(
                run_id,
                metrics=[self._metric(key, v, ts, start + i) for i, v in enumerate(chunk)],
            )

    def metric_history(self, run_id: str, key: str) -> int:
        return len(self.client.get_metric_history(run_id, key))

    def search(self, experiment_id: str, filter_string: str, order_by: list[str], n: int) -> int:
        return len(
            self.client.search_runs(
                [experiment_id], filter_string, order_by=order_by, max_results=n
            )
        )

    def list_all(self, experiment_id: str, page_size: int) -> int:
        total, token = 0, None
        while True:
            page = self.client.search_runs(
                [experiment_id], "", max_results=page_size, page_token=token
            )
            total += len(page)
            token = page.token
            if not token:
                return total

    def upload(self, run_id: str, path: Path) -> None:
        self.client.log_artifact(run_id, str(path))

    def download(self, run_id: str, name: str, dest: Path) -> Path:
        return Path(self.client.download_artifacts(run_id, name, str(dest)))

    # (f) the model registry

    def log_model(self, run_id: str, model: Any, example: Any) -> dict[str, str]:
        import mlflow
        import mlflow.sklearn

        mlflow.set_tracking_uri(self.uri)
        with mlflow.start_run(run_id=run_id):
            info = mlflow.sklearn.log_model(model, name="model", input_example=example)
        return {"source": info.model_uri, "run_id": run_id, "model_id": info.model_id}

    def create_model(self, name: str) -> None:
        self.client.create_registered_model(name)

    def register(self, name: str, source: dict[str, str]) -> int:
        mv = self.client.create_model_version(
            name, source["source"], run_id=source["run_id"], model_id=source["model_id"]
        )
        return int(mv.version)

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self.client.set_registered_model_alias(name, alias, str(version))

    def load(self, uri: str) -> Any:
        import mlflow.pyfunc

        return mlflow.pyfunc.load_model(uri)


class ShipyardDriver:
    """Shipyard's own SDK (``shipyard.Client``) against a Shipyard server."""

    def __init__(self, uri: str) -> None:
        import shipyard
        from shipyard.entities import Metric

        self.client = shipyard.Client(tracking_uri=uri)
        self._metric = Metric
        self._registry: Any = None

    def create_experiment(self, name: str) -> str:
        return str(self.client.create_experiment(name))

    def create_run(self, experiment_id: str) -> str:
        return str(self.client.create_run(experiment_id).info.run_id)

    def end_run(self, run_id: str) -> None:
        self.client.set_terminated(run_id)

    def log_param(self, run_id: str, key: str, value: str) -> None:
        self.client.log_param(run_id, key, value)

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        self.client.set_tag(run_id, key, value)

    def log_metric(self, run_id: str, key: str, value: float, step: int) -> None:
        self.client.log_metric(run_id, key, value, step=step)

    def flush(self) -> None:
        """Metrics are buffered: the timed part ends only when they are committed."""
        self.client.flush()

    def log_batch(
        self,
        run_id: str,
        metrics: list[tuple[str, float, int]],
        params: dict[str, str],
        tags: dict[str, str],
    ) -> None:
        ts = now_ms()
        self.client.log_batch(
            run_id,
            metrics=[self._metric(k, v, ts, step) for k, v, step in metrics],
            params=params,
            tags=tags,
        )

    def log_history(self, run_id: str, key: str, values: list[float]) -> None:
        """A training loop: one log_metric per step (buffered), then flush()."""
        for step, value in enumerate(values):
            self.client.log_metric(run_id, key, value, step=step)
        self.client.flush()

    def metric_history(self, run_id: str, key: str) -> int:
        return len(self.client.get_metric_history(run_id, key))

    def search(self, experiment_id: str, filter_string: str, order_by: list[str], n: int) -> int:
        return len(
            self.client.search_runs(
                [experiment_id], filter_string, max_results=n, order_by=order_by
            )
        )

    def list_all(self, experiment_id: str, page_size: int) -> int:
        total, token = 0, None
        while True:
            page = self.client.search_runs(
                [experiment_id], "", max_results=page_size, page_token=token
            )
            total += len(page)
            token = page.next_page_token
            if not token:
                return total

    def upload(self, run_id: str, path: Path) -> None:
        self.client.log_artifact(run_id, path)

    def download(self, run_id: str, name: str, dest: Path) -> Path:
        return Path(self.client.download_artifacts(run_id, name, dest))

    # (f) the model registry

    def log_model(self, run_id: str, model: Any, example: Any) -> dict[str, str]:
        import shipyard

        info = shipyard.log_model(
            model, "model", input_example=example, run_id=run_id, client=self.client
        )
        return {"source": info.model_uri, "run_id": run_id}

    def create_model(self, name: str) -> None:
        self.registry.create_model(name)

    def register(self, name: str, source: dict[str, str]) -> int:
        return self.registry.register_model_version(
            name, source["source"], run_id=source["run_id"]
        ).version

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self.registry.set_alias(name, alias, version)

    def load(self, uri: str) -> Any:
        import shipyard

        return shipyard.load_model(uri, workspace=self.client.workspace)

    @property
    def registry(self) -> Any:
        if self._registry is None:
            from shipyard.registry import Registry

            self._registry = Registry(self.client.workspace)
        return self._registry


class HttpDriver:
    """Raw HTTP against MLflow's REST API, the same code for both servers.

    One keep-alive connection (``http.client``) and the standard library's ``json``: the client
    costs a few tens of microseconds a call, so the figures measure the server, not a client
    library (the ``mlflow`` client spends about 3.7 ms of CPU per call of its own)."""

    API = "/api/2.0/mlflow"
    ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
    BLOCK = 1024 * 1024

    def __init__(self, uri: str) -> None:
        import http.client
        import urllib.parse

        parts = urllib.parse.urlsplit(uri)
        self._quote = urllib.parse.quote
        self._urlencode = urllib.parse.urlencode
        self.conn = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port or 80, timeout=600, blocksize=self.BLOCK
        )
        self._artifact_dirs: dict[str, str] = {}

    def _request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Any:
        """Send one request and return the response (its body not yet read)."""
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                return self.conn.getresponse()
            except (ConnectionError, OSError):
                # A server may close an idle keep-alive connection: reconnect once.
                self.conn.close()
                if attempt or hasattr(body, "read"):
                    raise
        raise AssertionError("unreachable")

    def _call(self, method: str, endpoint: str, payload: dict[str, Any] | None = None) -> Any:
        if method == "GET":
            query = self._urlencode(payload or {}, doseq=True)
            resp = self._request("GET", f"{self.API}/{endpoint}?{query}")
        else:
            resp = self._request(
                method,
                f"{self.API}/{endpoint}",
                json.dumps(payload or {}).encode(),
                {"Content-Type": "application/json"},
            )
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{method} {endpoint} -> {resp.status}: {data[:500]!r}")
        return json.loads(data)

    def create_experiment(self, name: str) -> str:
        return str(self._call("POST", "experiments/create", {"name": name})["experiment_id"])

    def create_run(self, experiment_id: str) -> str:
        run = self._call(
            "POST", "runs/create", {"experiment_id": experiment_id, "start_time": now_ms()}
        )["run"]["info"]
        run_id = str(run["run_id"])
        # mlflow-artifacts:/<experiment_id>/<run_id>/artifacts -> the service's path for it
        self._artifact_dirs[run_id] = run["artifact_uri"].split(":", 1)[1].lstrip("/")
        return run_id

    def end_run(self, run_id: str) -> None:
        self._call(
            "POST", "runs/update", {"run_id": run_id, "status": "FINISHED", "end_time": now_ms()}
        )

    def log_param(self, run_id: str, key: str, value: str) -> None:
        self._call("POST", "runs/log-parameter", {"run_id": run_id, "key": key, "value": value})

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        self._call("POST", "runs/set-tag", {"run_id": run_id, "key": key, "value": value})

    def log_metric(self, run_id: str, key: str, value: float, step: int) -> None:
        self._call(
            "POST",
            "runs/log-metric",
            {"run_id": run_id, "key": key, "value": value, "timestamp": now_ms(), "step": step},
        )

    def flush(self) -> None:
        """Every call is synchronous: nothing is buffered."""

    def log_batch(
        self,
        run_id: str,
        metrics: list[tuple[str, float, int]],
        params: dict[str, str],
        tags: dict[str, str],
    ) -> None:
        ts = now_ms()
        self._call(
            "POST",
            "runs/log-batch",
            {
                "run_id": run_id,
                "metrics": [
                    {"key": k, "value": v, "timestamp": ts, "step": step} for k, v, step in metrics
                ],
                "params": [{"key": k, "value": v} for k, v in params.items()],
                "tags": [{"key": k, "value": v} for k, v in tags.items()],
            },
        )

    def log_history(self, run_id: str, key: str, values: list[float]) -> None:
        """log-batch, 1,000 points a call (MLflow's limit), as MlflowDriver does."""
        ts = now_ms()
        for start in range(0, len(values), 1000):
            metrics = [
                {"key": key, "value": v, "timestamp": ts, "step": start + i}
                for i, v in enumerate(values[start : start + 1000])
            ]
            self._call("POST", "runs/log-batch", {"run_id": run_id, "metrics": metrics})

    def metric_history(self, run_id: str, key: str) -> int:
        total, token = 0, None
        while True:
            query = {"run_id": run_id, "metric_key": key}
            if token:
                query["page_token"] = token
            page = self._call("GET", "metrics/get-history", query)
            total += len(page.get("metrics", ()))
            token = page.get("next_page_token")
            if not token:
                return total

    def _search(self, payload: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "runs/search", payload)
        return result

    def search(self, experiment_id: str, filter_string: str, order_by: list[str], n: int) -> int:
        page = self._search(
            {
                "experiment_ids": [experiment_id],
                "filter": filter_string,
                "order_by": order_by,
                "max_results": n,
            }
        )
        return len(page.get("runs", ()))

    def list_all(self, experiment_id: str, page_size: int) -> int:
        total, token = 0, None
        while True:
            payload: dict[str, Any] = {"experiment_ids": [experiment_id], "max_results": page_size}
            if token:
                payload["page_token"] = token
            page = self._search(payload)
            total += len(page.get("runs", ()))
            token = page.get("next_page_token")
            if not token:
                return total

    def _artifact_path(self, run_id: str, name: str) -> str:
        return f"{self.ARTIFACTS}/{self._quote(self._artifact_dirs[run_id])}/{self._quote(name)}"

    def upload(self, run_id: str, path: Path) -> None:
        size = path.stat().st_size
        with open(path, "rb") as f:
            resp = self._request(
                "PUT",
                self._artifact_path(run_id, path.name),
                f,
                {"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            )
            data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"upload -> {resp.status}: {data[:500]!r}")

    def download(self, run_id: str, name: str, dest: Path) -> int:
        """Receive the file and count its bytes (into one reused buffer, not a file): the
        figure is the server's, not this machine's page cache (on a freshly booted VM, the
        first write to each page of memory costs about 3.4 ms per MiB, which would cap both
        servers at the client's ~300 MiB/s)."""
        resp = self._request("GET", self._artifact_path(run_id, name))
        if resp.status != 200:
            raise RuntimeError(f"download -> {resp.status}: {resp.read()[:500]!r}")
        view = memoryview(bytearray(self.BLOCK))
        received = 0
        while n := resp.readinto(view):
            received += n
        return received


class MlflowStoreDriver:
    """MLflow's own SQL store on the server's database file, bypassing HTTP (used only to
    populate the search experiment quickly; the server idles meanwhile)."""

    def __init__(self, uri: str) -> None:
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        db_uri, artifact_root = uri.split("|", 1)
        self.store = SqlAlchemyStore(db_uri, artifact_root)
        self._metric, self._param, self._tag = Metric, Param, RunTag

    def create_run(self, experiment_id: str) -> str:
        run = self.store.create_run(
            experiment_id, user_id="bench", start_time=now_ms(), tags=[], run_name=None
        )
        return str(run.info.run_id)

    def log_batch(
        self,
        run_id: str,
        metrics: list[tuple[str, float, int]],
        params: dict[str, str],
        tags: dict[str, str],
    ) -> None:
        ts = now_ms()
        self.store.log_batch(
            run_id,
            metrics=[self._metric(k, v, ts, step) for k, v, step in metrics],
            params=[self._param(k, v) for k, v in params.items()],
            tags=[self._tag(k, v) for k, v in tags.items()],
        )


class ShipyardStoreDriver(ShipyardDriver):
    """Shipyard's SDK on the server's SQLite database directly (embedded mode), to populate."""


Driver = MlflowDriver | ShipyardDriver | HttpDriver | MlflowStoreDriver

# ------------------------------------------------------------------------------------ workloads

N_PARAMS, N_TAGS, N_METRICS = 10, 5, 20


def _run_payload(i: int) -> tuple[dict[str, str], dict[str, str], list[tuple[str, float, int]]]:
    params = {f"param_{j}": f"value-{i}-{j}" for j in range(N_PARAMS)}
    tags = {f"tag_{j}": f"tag-{i}-{j}" for j in range(N_TAGS)}
    metrics = [(f"metric_{j}", random.random(), 0) for j in range(N_METRICS)]
    return params, tags, metrics


def logging_single(d: Driver, experiment: str, runs: int) -> dict[str, Any]:
    """(a) runs x (10 params, 5 tags, 20 metrics), one call per value."""
    exp = d.create_experiment(experiment)
    timer = Timer()
    for i in range(runs):
        run_id = d.create_run(exp)
        params, tags, metrics = _run_payload(i)
        with timer:
            for k, v in params.items():
                d.log_param(run_id, k, v)
            for k, v in tags.items():
                d.set_tag(run_id, k, v)
            for k, value, step in metrics:
                d.log_metric(run_id, k, value, step)
            d.flush()
        d.end_run(run_id)
    calls = runs * (N_PARAMS + N_TAGS + N_METRICS)
    return {"seconds": timer.seconds, "client_cpu": timer.cpu, "ops": calls, "calls": calls}


def logging_batch(d: Driver, experiment: str, runs: int) -> dict[str, Any]:
    """(a) runs x (10 params, 5 tags, 20 metrics), one log_batch call per run."""
    exp = d.create_experiment(experiment)
    timer = Timer()
    for i in range(runs):
        run_id = d.create_run(exp)
        params, tags, metrics = _run_payload(i)
        with timer:
            d.log_batch(run_id, metrics, params, tags)
        d.end_run(run_id)
    entities = runs * (N_PARAMS + N_TAGS + N_METRICS)
    return {
        "seconds": timer.seconds,
        "client_cpu": timer.cpu,
        "ops": runs,
        "calls": runs,
        "entities": entities,
    }


def history_write(d: Driver, experiment: str, points: int) -> dict[str, Any]:
    """(b) one metric with ``points`` steps, written; the run id is kept for history_read."""
    exp = d.create_experiment(experiment)
    run_id = d.create_run(exp)
    values = [random.random() for _ in range(points)]
    with Timer() as timer:
        d.log_history(run_id, "loss", values)
    d.end_run(run_id)
    return {
        "seconds": timer.seconds,
        "client_cpu": timer.cpu,
        "ops": points,
        "points": points,
        "run_id": run_id,
    }


def history_read(d: Driver, run_id: str, reads: int) -> dict[str, Any]:
    """(b) read the whole history back ``reads`` times; one timing per read."""
    times, cpus, n = [], [], 0
    for _ in range(reads):
        with Timer() as timer:
            n = d.metric_history(run_id, "loss")
        times.append(timer.seconds)
        cpus.append(timer.cpu)
    return {
        "seconds": sum(times),
        "client_cpu": sum(cpus),
        "ops": reads,
        "times": times,
        "points": n,
    }


SEARCH_MODELS = ("gbm", "lr", "rf", "mlp")


def create_experiment(d: Driver, experiment: str) -> dict[str, Any]:
    return {
        "seconds": 0.0,
        "client_cpu": 0.0,
        "ops": 1,
        "experiment_id": d.create_experiment(experiment),
    }


def populate(d: Driver, experiment_id: str, start: int, count: int) -> dict[str, Any]:
    """(c) runs ``start .. start+count`` of the search experiment: create_run, then one
    log_batch of 3 params, 2 tags and 2 metrics (runs are left RUNNING, which search ignores)."""
    rng = random.Random(start)
    with Timer() as timer:
        for i in range(start, start + count):
            run_id = d.create_run(experiment_id)
            d.log_batch(
                run_id,
                metrics=[("score", rng.random(), 0), ("loss", rng.random(), 0)],
                params={
                    "model": SEARCH_MODELS[i % len(SEARCH_MODELS)],
                    "lr": str(rng.choice((0.01, 0.03, 0.1, 0.3))),
                    "depth": str(rng.randint(2, 12)),
                },
                tags={"team": f"team-{i % 10}", "batch": str(i // 1000)},
            )
    return {"seconds": timer.seconds, "client_cpu": timer.cpu, "ops": count, "calls": 2 * count}


SEARCH_FILTER = "metrics.score > 0.5 AND params.model = 'gbm'"
SEARCH_ORDER = ["metrics.score DESC"]


def search(d: Driver, experiment_id: str, repeats: int, page: int) -> dict[str, Any]:
    """(c) a filtered, ordered search returning one page, ``repeats`` times after a warm-up."""
    found = d.search(experiment_id, SEARCH_FILTER, SEARCH_ORDER, page)
    times, cpus = [], []
    for _ in range(repeats):
        with Timer() as timer:
            found = d.search(experiment_id, SEARCH_FILTER, SEARCH_ORDER, page)
        times.append(timer.seconds)
        cpus.append(timer.cpu)
    return {
        "seconds": sum(times),
        "client_cpu": sum(cpus),
        "ops": repeats,
        "times": times,
        "found": found,
    }


def list_all(d: Driver, experiment_id: str, page: int) -> dict[str, Any]:
    """(c) every run of the experiment, page by page."""
    with Timer() as timer:
        n = d.list_all(experiment_id, page)
    return {"seconds": timer.seconds, "client_cpu": timer.cpu, "ops": 1, "runs": n}


def artifact(d: Driver, experiment: str, size_mb: int, workdir: str) -> dict[str, Any]:
    """(d) upload a ``size_mb`` MiB file of random bytes, then download it."""
    base = Path(tempfile.mkdtemp(prefix="bench-artifact-", dir=workdir))
    try:
        src = base / f"blob-{size_mb}mb.bin"
        with open(src, "wb") as f:
            for _ in range(size_mb):
                f.write(os.urandom(1024 * 1024))
        size = src.stat().st_size
        exp = d.create_experiment(experiment)
        run_id = d.create_run(exp)
        with Timer() as up:
            d.upload(run_id, src)
        dest = base / "download"
        dest.mkdir()
        with Timer() as down:
            got = d.download(run_id, src.name, dest)
        # raw HTTP returns the bytes received; the clients return the file they wrote
        got_size = got if isinstance(got, int) else (got.stat().st_size if got.is_file() else -1)
        d.end_run(run_id)
        if got_size != size:
            raise RuntimeError(f"downloaded {got_size} bytes, expected {size} ({got})")
        return {
            "seconds": up.seconds + down.seconds,
            "client_cpu": up.cpu + down.cpu,
            "ops": 2,
            "bytes": size,
            "upload_seconds": up.seconds,
            "download_seconds": down.seconds,
        }
    finally:
        shutil.rmtree(base, ignore_errors=True)


def registry(d: Driver, experiment: str, versions: int, loads: int) -> dict[str, Any]:
    """(f) log a small scikit-learn model, register it ``versions`` times, move alias
    ``champion`` across every version, then load ``models:/<name>@champion`` ``loads`` times in
    this (warm) process after one uncounted load."""
    if isinstance(d, HttpDriver | MlflowStoreDriver):
        raise RuntimeError(f"{type(d).__name__} has no model registry workload")
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=5000).fit(X, y)
    exp = d.create_experiment(experiment)
    run_id = d.create_run(exp)
    source = d.log_model(run_id, model, X.head(3))
    d.end_run(run_id)
    name = f"{experiment}-model"
    d.create_model(name)
    reg, alias, load = Timer(), Timer(), Timer()
    got = []
    with reg:
        for _ in range(versions):
            got.append(d.register(name, source))
    if got != list(range(1, versions + 1)):
        raise RuntimeError(f"registered versions {got[:5]}..., expected 1..{versions}")
    with alias:
        for version in got:
            d.set_alias(name, "champion", version)
    uri = f"models:/{name}@champion"
    expected = model.predict(X.head(50))
    first = d.load(uri)
    predicted = [int(v) for v in _as_list(first.predict(X.head(50)))]
    if predicted != [int(v) for v in expected]:
        raise RuntimeError(f"{uri} predicts differently from the logged model")
    with load:
        for _ in range(loads):
            d.load(uri)
    return {
        "seconds": reg.seconds + alias.seconds + load.seconds,
        "client_cpu": reg.cpu + alias.cpu + load.cpu,
        "ops": versions * 2 + loads,
        "register_seconds": reg.seconds,
        "alias_seconds": alias.seconds,
        "load_seconds": load.seconds,
    }


def _as_list(values: Any) -> list[Any]:
    """Predictions as a list, whatever container the client returns."""
    if hasattr(values, "to_numpy"):
        values = values.to_numpy()
    if hasattr(values, "ravel"):
        values = values.ravel()
    return list(values)


COMMANDS: dict[str, Callable[..., dict[str, Any]]] = {
    "logging_single": logging_single,
    "logging_batch": logging_batch,
    "history_write": history_write,
    "history_read": history_read,
    "create_experiment": create_experiment,
    "populate": populate,
    "search": search,
    "list_all": list_all,
    "artifact": artifact,
    "registry": registry,
}


def main() -> int:
    driver_name, uri = sys.argv[1], sys.argv[2]
    # Answers go to the original stdout; whatever the client libraries print goes to stderr.
    proto = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    random.seed(1)
    drivers: dict[str, type[Any]] = {
        "mlflow": MlflowDriver,
        "shipyard": ShipyardDriver,
        "http": HttpDriver,
        "mlflow-store": MlflowStoreDriver,
        "shipyard-store": ShipyardStoreDriver,
    }
    driver: Driver = drivers[driver_name](uri)
    print(json.dumps({"ready": True, "pid": os.getpid()}), file=proto, flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        name = cmd.pop("command")
        try:
            result = COMMANDS[name](driver, **cmd)
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            result = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
        print(json.dumps(result), file=proto, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
