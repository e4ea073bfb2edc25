"""/api/v1/registered-models and /api/v1/model-versions: what the server adds to the registry
store (whose behaviour the contract suite checks through :class:`RestRegistryStore`): who is
recorded, which permissions are asked, freeing bytes on delete, and a version's files, read-only
and streamed."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.requests import HTTPConnection

from shipyard import errors
from shipyard._http import HttpClient
from shipyard.artifacts.rest import RestArtifactRepository
from shipyard.server.app import create_app
from shipyard.server.auth import Action, Principal
from shipyard.workspace import Workspace
from tests.server.asgi import ASGISyncTransport
from tests.server.conftest import serve_in_thread

MODELS = "/api/v1/registered-models"


def _run_with_files(api: httpx.Client, files: dict[str, bytes]) -> str:
    run_id = api.post("/api/v1/runs", json={"experiment_id": "0"}).json()["run"]["info"]["run_id"]
    for path, data in files.items():
        resp = api.put(f"/api/v1/runs/{run_id}/artifacts/{path}", content=data)
        assert resp.status_code == 201, resp.text
    return str(run_id)


def _register(api: httpx.Client, name: str, run: str, **body: object) -> dict[str, object]:
    resp = api.post(f"{MODELS}/{name}/versions", json={"source": f"runs:/{run}/model", **body})
    assert resp.status_code == 201, resp.text
    return dict(resp.json()["model_version"])


def test_register_from_a_source_alone_and_read_the_files(api: httpx.Client) -> None:
    files = {"model/MLmodel": b"flavor: x\n", "model/data/weights.bin": b"\x00\x01" * 1000}
    run_id = _run_with_files(api, files)
    version = _register(api, "churn", run_id, description="first", tags={"k": "v"})
    assert (version["version"], version["run_id"], version["storage_path"]) == (1, run_id, "model")
    assert _register(api, "churn", run_id, run_id=None)["run_id"] is None
    owner = version["storage_owner"]

    listing = api.get(f"/api/v1/model-versions/{owner}/artifacts", params={"path": "model"})
    assert [(a["path"], a["is_dir"]) for a in listing.json()["artifacts"]] == [
        ("model/MLmodel", False),
        ("model/data", True),
    ]
    download = api.get(f"/api/v1/model-versions/{owner}/artifacts/model/data/weights.bin")
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.content == files["model/data/weights.bin"]
    info = api.get(f"/api/v1/model-versions/{owner}/artifact-info/model/MLmodel").json()
    assert info["artifact"]["digest"] == hashlib.sha256(files["model/MLmodel"]).hexdigest()
    # The version's files are not the run's: the run routes refuse the storage owner.
    assert api.delete(f"/api/v1/runs/{owner}/artifacts").status_code == 400
    assert api.get(f"/api/v1/model-versions/{owner}/artifacts/model/MLmodel").status_code == 200


def test_deleting_frees_the_bytes_only_the_version_held(api: httpx.Client) -> None:
    data = os.urandom(4096)
    run_id = _run_with_files(api, {"model/blob.bin": data})
    _register(api, "m", run_id)
    _register(api, "m", run_id)
    api.put(f"{MODELS}/m/aliases/champion", json={"version": 1})
    refused = api.delete(f"{MODELS}/m/versions/1")
    assert refused.status_code == 409
    assert refused.json()["details"]["references"] == ["alias 'champion'"]

    # Version 2 shares the bytes with the run and version 1: nothing to free.
    assert api.delete(f"{MODELS}/m/versions/2").json()["bytes_freed"] == 0
    assert api.delete(f"/api/v1/runs/{run_id}/artifacts").status_code == 200
    api.delete(f"{MODELS}/m/aliases/champion", params={"reason": "retired"})
    answer = api.delete(f"{MODELS}/m", params={"user_id": "ana", "reason": "gone"}).json()
    assert answer == {"digests": [hashlib.sha256(data).hexdigest()], "bytes_freed": 4096}
    events = api.get(f"{MODELS}/m/history").json()["events"]
    assert (events[-1]["action"], events[-1]["user_id"], events[-1]["reason"]) == (
        "model_deleted",
        "ana",
        "gone",
    )


class AliceOrAnonymous:
    """Bearer ``alice-token`` is alice; no header is anonymous."""

    async def authenticate(self, conn: HTTPConnection) -> Principal:
        if conn.headers.get("authorization") == "Bearer alice-token":
            return Principal("alice", authenticated=True)
        return Principal("anonymous")


class Recorder:
    """Allows everything except reading ``model:secret``; records what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[Action, str]] = []

    async def authorize(self, principal: Principal, action: Action, resource: str) -> None:
        self.asked.append((action, resource))
        if resource == "model:secret" and action == "read":
            raise errors.PermissionDenied(f"{principal.name} may not read {resource}.")


@pytest.fixture
def guarded(workspace: Workspace) -> Iterator[tuple[httpx.Client, httpx.Client, Recorder]]:
    """An anonymous client and alice's, on an app with :class:`Recorder` as its authorizer."""
    recorder = Recorder()
    app = create_app(workspace, authenticator=AliceOrAnonymous(), authorizer=recorder)
    base = "http://testserver"
    with (
        httpx.Client(transport=ASGISyncTransport(app), base_url=base) as anonymous,
        httpx.Client(
            transport=ASGISyncTransport(app),
            base_url=base,
            headers={"Authorization": "Bearer alice-token"},
        ) as alice,
    ):
        yield anonymous, alice, recorder


def test_the_audit_trail_records_the_principal_over_what_the_client_says(
    guarded: tuple[httpx.Client, httpx.Client, Recorder],
) -> None:
    anonymous, alice, _ = guarded
    run_id = _run_with_files(anonymous, {"model/MLmodel": b"m"})
    assert _register(alice, "churn", run_id, user_id="mallory")["user_id"] == "alice"
    approval = alice.post(f"{MODELS}/churn/versions/1/approvals", json={"approver": "mallory"})
    assert approval.json()["approval"]["approver"] == "alice"
    alice.put(f"{MODELS}/churn/aliases/champion", json={"version": 1, "user_id": "mallory"})
    # An anonymous caller is recorded as whoever it says it is (the SDK sends its OS user).
    anonymous.put(f"{MODELS}/churn/aliases/challenger", json={"version": 1, "user_id": "bob"})
    bob = anonymous.post(f"{MODELS}/churn/versions/1/approvals", json={"approver": "bob"})
    assert bob.json()["approval"]["approver"] == "bob"
    events = anonymous.get(f"{MODELS}/churn/history").json()["events"]
    assert [(e["action"], e["user_id"]) for e in events] == [
        ("model_created", "alice"),
        ("version_created", "alice"),
        ("approved", "alice"),
        ("alias_set", "alice"),
        ("alias_set", "bob"),
        ("approved", "bob"),
    ]


def test_each_route_asks_for_the_model_it_touches(
    guarded: tuple[httpx.Client, httpx.Client, Recorder],
) -> None:
    client, _, recorder = guarded
    run_id = _run_with_files(client, {"model/MLmodel": b"m"})
    recorder.asked.clear()
    owner = _register(client, "churn", run_id)["storage_owner"]
    assert recorder.asked == [("write", "model:churn"), ("read", f"run:{run_id}")]

    recorder.asked.clear()
    assert client.post(f"{MODELS}/churn/rename", json={"new_name": "attrition"}).is_success
    assert recorder.asked == [("write", "model:churn"), ("write", "model:attrition")]

    recorder.asked.clear()
    client.put(f"{MODELS}/attrition/approval-policy", json={"required_approvals": 1})
    client.get(f"/api/v1/model-versions/{owner}/artifacts", params={"path": "model"})
    client.post(f"{MODELS}/search", json={})
    assert recorder.asked == [
        ("admin", "model:attrition"),
        ("read", "model:attrition"),
        ("read", "model:*"),
    ]

    # Knowing a version's storage owner does not let anyone read a model they may not read.
    secret = _register(client, "secret", run_id)["storage_owner"]
    for path in ("artifacts", "artifacts/model/MLmodel", "artifact-info/model/MLmodel"):
        denied = client.get(f"/api/v1/model-versions/{secret}/{path}", params={"path": "model"})
        assert denied.status_code == 403, path
        assert denied.json()["error_code"] == "PERMISSION_DENIED"


def test_the_rest_artifact_repository_streams_a_version_and_refuses_writes(
    workspace: Workspace, tmp_path: Path
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # several 1 MiB chunks and a remainder
    with serve_in_thread(create_app(workspace)) as url:
        http = HttpClient(url, retries=0)
        repo = RestArtifactRepository(http)
        try:
            run_id = workspace.store.create_run("0").info.run_id
            repo.upload_file(run_id, "model/weights.bin", _write(tmp_path / "w.bin", data))
            owner = (
                workspace.registry.create_model_version(
                    "big", f"runs:/{run_id}/model", artifact_owner=run_id, artifact_path="model"
                )
            ).storage_owner
            with repo.open(owner, "model/weights.bin") as f:
                first = f.read(1000)
                rest = f.read()
            assert first + rest == data
            root = repo.download(owner, "model", tmp_path / "out")
            assert (root / "weights.bin").read_bytes() == data
            assert repo.stat(owner, "model/weights.bin").file_size == len(data)
            with pytest.raises(errors.InvalidState, match="never change"):
                repo.upload_file(owner, "model/x.bin", tmp_path / "w.bin")
            with pytest.raises(errors.InvalidState, match="never change"):
                repo.delete(owner, "model")
            with pytest.raises(errors.NotFound, match=r"absent\.bin"):
                repo.open(owner, "model/absent.bin")
        finally:
            http.close()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
