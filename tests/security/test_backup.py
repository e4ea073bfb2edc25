"""``backup`` / ``restore`` while a server runs and writers write: the backup holds a consistent
state (every batch acknowledged before it began, no batch in part, every artifact whole), and
restores into an empty workspace, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shipyard.config import Settings
from shipyard.errors import InvalidInput
from shipyard.security.backup import backup, read_manifest, restore
from shipyard.workspace import Workspace
from tests.server.conftest import start_server, stop_server

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def uris(request: pytest.FixtureRequest) -> Iterator[tuple[str | None, str | None]]:
    """(source, target) tracking URIs: None for the homes' SQLite files, or two empty
    PostgreSQL databases."""
    if request.param == "sqlite":
        yield None, None
        return
    from tests.conftest import _create_database

    source = request.getfixturevalue("postgres_uri")
    server = request.getfixturevalue("postgres_server")
    admin, name = _create_database(server)
    target = f"{server.rsplit('/', 1)[0]}/{name}"
    try:
        yield source, target
    finally:
        import sqlalchemy as sa

        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _settings(home: Path, uri: str | None) -> Settings:
    return Settings.from_env({}, home=home, tracking_uri=uri)


class Writer(threading.Thread):
    """Creates runs over HTTP, logs 10-param batches and uploads a file per run."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.acked: list[tuple[float, str, int, str]] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.Client(base_url=self.url, timeout=30) as http:
                n = 0
                while not self.stop.is_set():
                    run = http.post("/api/v1/runs", json={"experiment_id": "0"})
                    run_id = run.json()["run"]["info"]["run_id"]
                    payload = f"artifact {n} ".encode() * 100
                    up = http.put(f"/api/v1/runs/{run_id}/artifacts/file.txt", content=payload)
                    up.raise_for_status()
                    for batch in range(3):
                        params = {f"b{batch}_p{k}": str(n) for k in range(10)}
                        resp = http.post(f"/api/v1/runs/{run_id}/batch", json={"params": params})
                        resp.raise_for_status()
                        self.acked.append(
                            (time.monotonic(), run_id, batch, hashlib.sha256(payload).hexdigest())
                        )
                    n += 1
        except BaseException as exc:  # reported by the test
            self.error = exc


def test_backup_while_writing_then_restore(
    tmp_path: Path, uris: tuple[str | None, str | None]
) -> None:
    source_uri, target_uri = uris
    live = start_server(
        tmp_path,
        timeout=60,
        env_extra={"SHIPYARD_TRACKING_URI": source_uri} if source_uri else None,
    )
    home, server = live.home, live.process
    writer = Writer(live.url)
    try:
        writer.start()
        while len(writer.acked) < 30:
            assert writer.is_alive(), writer.error
            time.sleep(0.05)
        began = time.monotonic()
        report = backup(_settings(home, source_uri), tmp_path / "backup")
        time.sleep(0.3)  # writes go on after the backup, and must not matter
    finally:
        writer.stop.set()
        writer.join(timeout=60)
        stop_server(server)
    assert writer.error is None, writer.error
    before = [a for a in writer.acked if a[0] < began]
    assert len(before) >= 30
    manifest = read_manifest(tmp_path / "backup")
    assert manifest["blobs"] == report.blobs >= 10

    target = _settings(tmp_path / "restored", target_uri)
    restored = restore(target, tmp_path / "backup")
    assert restored.blobs == report.blobs
    with Workspace.open(target) as ws:
        for _, run_id, batch, digest in before:
            run = ws.store.get_run(run_id)
            assert {f"b{batch}_p{k}" for k in range(10)} <= set(run.data.params)
            with ws.artifacts.open(run_id, "file.txt") as f:
                assert hashlib.sha256(f.read()).hexdigest() == digest
        runs = ws.store.search_runs(["0"], max_results=1000).items
        for run in runs:
            for batch in range(3):
                have = sum(f"b{batch}_p{k}" in run.data.params for k in range(10))
                assert have in (0, 10)
            for info in ws.artifacts.list(run.info.run_id):
                with ws.artifacts.open(run.info.run_id, info.path) as f:
                    assert hashlib.sha256(f.read()).hexdigest() == info.digest
        # The restored workspace takes writes.
        ws.store.log_batch(runs[0].info.run_id, params={"restored": "yes"})
    print(
        f"\nbackup: {len(before)} acknowledged batches checked, {report.blobs} blobs, {report.seconds:.2f} s"
    )

    # Restoring twice into the same place is refused.
    with pytest.raises(InvalidInput, match="empty"):
        restore(target, tmp_path / "backup")


def test_backup_refuses_a_used_folder_and_checks_the_manifest(
    workspace: Workspace, tmp_path: Path
) -> None:
    dest = tmp_path / "b"
    dest.mkdir()
    (dest / "x").write_text("x")
    with pytest.raises(InvalidInput, match="not empty"):
        backup(workspace.settings, dest)
    backup(workspace.settings, tmp_path / "ok")
    (tmp_path / "ok" / "metadata.sqlite").write_bytes(b"tampered")
    with pytest.raises(InvalidInput, match="damaged"):
        read_manifest(tmp_path / "ok")
    with pytest.raises(InvalidInput, match="not a Shipyard backup"):
        read_manifest(tmp_path)


def test_a_damaged_blob_restores_nothing_and_a_retry_from_an_intact_copy_works(
    workspace: Workspace, tmp_path: Path
) -> None:
    """The blobs go in first, each checked against its digest, and the database last: a
    restore that fails leaves no database pointing at missing bytes, and can be run again."""
    import io
    import shutil

    run = workspace.store.create_run("0").info.run_id
    for i in range(3):
        workspace.artifacts.upload(run, f"f{i}.txt", io.BytesIO(f"bytes {i}".encode()))
    backup(workspace.settings, tmp_path / "intact")
    shutil.copytree(tmp_path / "intact", tmp_path / "damaged")
    blob = sorted(p for p in (tmp_path / "damaged" / "blobs").rglob("*") if p.is_file())[-1]
    blob.write_bytes(b"not what the name says")
    target = _settings(tmp_path / "restored", None)
    with pytest.raises(InvalidInput, match="damaged"):
        restore(target, tmp_path / "damaged")
    database = Path(target.tracking_uri.removeprefix("sqlite:///"))
    assert not database.exists()  # nothing points at the bytes that did not go in
    restored = restore(target, tmp_path / "intact")  # blobs already in are fine
    assert restored.blobs == 3
    with Workspace.open(target) as ws:
        for i in range(3):
            with ws.artifacts.open(run, f"f{i}.txt") as f:
                assert f.read() == f"bytes {i}".encode()
