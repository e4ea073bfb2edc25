"""32 clients at once against a real server with auth on, on SQLite and on PostgreSQL: every
acknowledged write lands, no request fails, and the server never meets a lock error.

The store-level twin (``tests/store/test_concurrency.py``) has 32 processes writing one
database directly; here the writers are HTTP clients, each signed in with its own token and an
editor grant on one experiment, sent through a server of two worker processes (so two
processes write the same SQLite file). They start together at a barrier, create runs, log
params, tags and metric batches to their own runs and all to one shared run.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shipyard.config import Settings
from shipyard.security import Security
from shipyard.workspace import Workspace
from tests.server.conftest import start_server, stop_server

pytestmark = pytest.mark.slow

CLIENTS = 32
RUNS_PER_CLIENT = 2
BATCHES_PER_RUN = 5
METRICS_PER_BATCH = 10
STEPS_ON_SHARED_RUN = 5


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def metadata_uri(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The server's metadata store: its home's SQLite file (``None``) or a fresh PostgreSQL
    database."""
    if request.param == "sqlite":
        yield None
    else:
        yield request.getfixturevalue("postgres_uri")


class Client(threading.Thread):
    """One signed-in client's writes; ``acked`` counts the writes the server confirmed."""

    def __init__(
        self,
        index: int,
        url: str,
        token: str,
        experiment_id: str,
        shared_run: str,
        barrier: threading.Barrier,
    ) -> None:
        super().__init__(daemon=True)
        self.index, self.url, self.token = index, url, token
        self.experiment_id, self.shared_run, self.barrier = experiment_id, shared_run, barrier
        self.run_ids: list[str] = []
        self.acked = 0
        self.requests = 0
        self.failures: list[str] = []

    def _send(self, http: httpx.Client, method: str, path: str, body: object) -> httpx.Response:
        resp = http.request(method, path, json=body)
        self.requests += 1
        if not resp.is_success:
            self.failures.append(
                f"client {self.index}: {method} {path} -> {resp.status_code} {resp.text}"
            )
        resp.raise_for_status()
        return resp

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            with httpx.Client(base_url=self.url, headers=headers, timeout=60) as http:
                self.barrier.wait(timeout=60)
                for r in range(RUNS_PER_CLIENT):
                    created = self._send(
                        http,
                        "POST",
                        "/api/v1/runs",
                        {"experiment_id": self.experiment_id, "run_name": f"c{self.index}-r{r}"},
                    )
                    run_id = created.json()["run"]["info"]["run_id"]
                    self.run_ids.append(run_id)
                    self.acked += 1
                    self._send(
                        http,
                        "POST",
                        f"/api/v1/runs/{run_id}/batch",
                        {
                            "params": {f"p{k}": f"{self.index}-{r}-{k}" for k in range(10)},
                            "tags": {f"t{k}": str(self.index) for k in range(5)},
                        },
                    )
                    self.acked += 15
                    for b in range(BATCHES_PER_RUN):
                        metrics = [
                            {
                                "key": f"m{k}",
                                "value": self.index * 100 + b,
                                "timestamp": b,
                                "step": b,
                            }
                            for k in range(METRICS_PER_BATCH)
                        ]
                        self._send(
                            http, "POST", f"/api/v1/runs/{run_id}/batch", {"metrics": metrics}
                        )
                        self.acked += METRICS_PER_BATCH
                for step in range(STEPS_ON_SHARED_RUN):
                    point = {
                        "key": f"c{self.index}",
                        "value": step,
                        "timestamp": step,
                        "step": step,
                    }
                    self._send(
                        http, "POST", f"/api/v1/runs/{self.shared_run}/batch", {"metrics": [point]}
                    )
                    self.acked += 1
                self._send(
                    http,
                    "POST",
                    f"/api/v1/runs/{self.shared_run}/batch",
                    {"params": {f"from_{self.index}": str(self.index)}},
                )
                self.acked += 1
        except BaseException as exc:  # reported by the test
            self.failures.append(f"client {self.index}: {exc!r}")
            self.barrier.abort()


def _setup(home: Path, uri: str | None) -> tuple[str, str, list[str]]:
    """The experiment, the shared run, one editor token per client and a reader's last."""
    settings = Settings.from_env({"SHIPYARD_AUTH": "on"}, home=home, tracking_uri=uri)
    with Workspace.open(settings) as ws:
        security = Security.for_workspace(ws)
        experiment_id = ws.store.create_experiment("concurrency")
        shared_run = ws.store.create_run(experiment_id, run_name="shared").info.run_id
        tokens = []
        for i in range(CLIENTS):
            security.create_user(f"client-{i}", actor="test")
            security.grant(f"client-{i}", "editor", f"experiment:{experiment_id}", actor="test")
            tokens.append(security.create_token(f"client-{i}", "load", actor="test").secret)
        # Searching runs is a workspace-wide listing: the check reads as a workspace reader.
        security.create_user("checker", actor="test")
        security.grant("checker", "reader", "*", actor="test")
        tokens.append(security.create_token("checker", "check", actor="test").secret)
    return experiment_id, shared_run, tokens


def test_thirty_two_clients_lose_no_write_and_meet_no_lock(
    tmp_path: Path, metadata_uri: str | None
) -> None:
    experiment_id, shared_run, tokens = _setup(tmp_path / "home", metadata_uri)
    env = {"SHIPYARD_AUTH": "on"}
    if metadata_uri:
        env["SHIPYARD_TRACKING_URI"] = metadata_uri
    live = start_server(tmp_path, workers=2, timeout=90, env_extra=env)
    barrier = threading.Barrier(CLIENTS)
    clients = [
        Client(i, live.url, tokens[i], experiment_id, shared_run, barrier) for i in range(CLIENTS)
    ]
    try:
        for c in clients:
            c.start()
        for c in clients:
            c.join(timeout=240)
        assert not any(c.is_alive() for c in clients), "a client did not finish"
        failures = [f for c in clients for f in c.failures]
        assert failures == [], "\n".join(failures[:20])

        checked = 0
        reader = {"Authorization": f"Bearer {tokens[-1]}"}
        with httpx.Client(base_url=live.url, headers=reader, timeout=60) as http:
            for c in clients:
                assert len(c.run_ids) == RUNS_PER_CLIENT
                for r, run_id in enumerate(c.run_ids):
                    run = http.get(f"/api/v1/runs/{run_id}").json()["run"]
                    assert run["info"]["run_name"] == f"c{c.index}-r{r}"
                    data = run["data"]
                    assert data["params"] == {f"p{k}": f"{c.index}-{r}-{k}" for k in range(10)}
                    tags = {k: v for k, v in data["tags"].items() if not k.startswith("mlflow.")}
                    assert tags == {f"t{k}": str(c.index) for k in range(5)}
                    last = float(c.index * 100 + BATCHES_PER_RUN - 1)
                    assert {k: m["value"] for k, m in data["metrics"].items()} == {
                        f"m{k}": last for k in range(METRICS_PER_BATCH)
                    }
                    checked += 1 + 15 + METRICS_PER_BATCH  # creation, params + tags, latest
                    for k in range(METRICS_PER_BATCH):
                        history = http.get(f"/api/v1/runs/{run_id}/metrics/m{k}/history").json()
                        assert history["steps"] == list(range(BATCHES_PER_RUN))
                        checked += BATCHES_PER_RUN - 1  # the earlier points of the history
            shared = http.get(f"/api/v1/runs/{shared_run}").json()["run"]["data"]
            assert shared["params"] == {f"from_{i}": str(i) for i in range(CLIENTS)}
            checked += CLIENTS
            for i in range(CLIENTS):
                history = http.get(f"/api/v1/runs/{shared_run}/metrics/c{i}/history").json()
                assert history["steps"] == list(range(STEPS_ON_SHARED_RUN))
                checked += STEPS_ON_SHARED_RUN
            found = http.post(
                "/api/v1/runs/search", json={"experiment_ids": [experiment_id], "max_results": 500}
            )
            assert found.status_code == 200, found.text
            assert len(found.json()["runs"]) == CLIENTS * RUNS_PER_CLIENT + 1
    finally:
        stop_server(live.process)
    acked = sum(c.acked for c in clients)
    assert checked == acked
    log = live.log_text()
    for sign in ("locked", "Traceback", "deadlock", "could not serialize"):
        assert sign not in log, log[-3000:]
    backend = "postgresql" if metadata_uri else "sqlite"
    print(
        f"\nconcurrent clients ({backend}): {CLIENTS} HTTP clients with their own tokens, 2 server "
        f"workers, {sum(c.requests for c in clients)} requests, {acked} acknowledged writes "
        "checked, 0 failures"
    )
