"""Who may touch the registry and logged models through the MLflow surface, and who did: the
app's authorizer is asked about ``model:<name>``, ``logged-model:<id>`` and the source a version
copies, and the audit trail records the authenticated caller (in-process, no server)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import pytest
from starlette.requests import HTTPConnection

from shipyard.errors import PermissionDenied
from shipyard.registry import Registry
from shipyard.server.app import create_app
from shipyard.server.auth import Action, Principal
from shipyard.workspace import Workspace
from tests.server.asgi import ASGISyncTransport

API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


class Alice:
    """Every caller is alice (an authenticated principal)."""

    async def authenticate(self, conn: HTTPConnection) -> Principal:
        return Principal("alice", authenticated=True)


class Recording:
    """Allows everything except reading ``model:secret``, recording what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, Action, str]] = []

    async def authorize(self, principal: Principal, action: Action, resource: str) -> None:
        self.asked.append((principal.name, action, resource))
        if resource == "model:secret" and action == "read":
            raise PermissionDenied(f"{principal.name} may not read {resource}.")


@pytest.fixture
def app_client(workspace: Workspace) -> Iterator[tuple[httpx.Client, Recording]]:
    authorizer = Recording()
    app = create_app(workspace, authenticator=Alice(), authorizer=authorizer)
    transport = ASGISyncTransport(app)
    with httpx.Client(transport=transport, base_url="http://testserver") as client:
        yield client, authorizer


def _run_with_files(workspace: Workspace) -> str:
    run_id = workspace.store.create_run("0").info.run_id
    workspace.artifacts.upload(run_id, "model/weights.txt", io.BytesIO(b"w"))
    return run_id


def _ok(resp: httpx.Response) -> dict[str, object]:
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


@pytest.mark.parametrize("name", ["churn", "secret"])
def test_registry_calls_are_authorized_per_model_and_audited_as_the_caller(
    name: str, workspace: Workspace, app_client: tuple[httpx.Client, Recording]
) -> None:
    http, authorizer = app_client
    run_id = _run_with_files(workspace)
    _ok(http.post(f"{API}/registered-models/create", json={"name": name}))
    source = f"runs:/{run_id}/model"
    version = _ok(http.post(f"{API}/model-versions/create", json={"name": name, "source": source}))
    assert version["model_version"]["user_id"] == "alice"  # type: ignore[index]
    _ok(http.post(f"{API}/registered-models/alias",
                  json={"name": name, "alias": "champion", "version": "1"}))  # fmt: skip
    _ok(http.post(f"{API}/model-versions/transition-stage",
                  json={"name": name, "version": "1", "stage": "Staging"}))  # fmt: skip
    _ok(http.request("DELETE", f"{API}/registered-models/alias",
                     json={"name": name, "alias": "champion"}))  # fmt: skip

    assert ("alice", "write", f"model:{name}") in authorizer.asked
    assert ("alice", "read", f"run:{run_id}") in authorizer.asked  # the source's files
    events = Registry(workspace).history(name)
    assert [e.action for e in events] == [
        "model_created", "version_created", "alias_set", "stage_changed", "alias_deleted",
    ]  # fmt: skip
    assert {e.user_id for e in events} == {"alice"}

    # The version's own files are read as the model, whatever their path says.
    stored = Registry(workspace).get_version(name, 1)
    path = f"model-versions/{stored.storage_owner}/artifacts/model"
    uri = http.get(f"{API}/model-versions/get-download-uri", params={"name": name, "version": "1"})
    if name != "secret":
        assert _ok(uri) == {"artifact_uri": f"mlflow-artifacts:/{path}"}
    download = http.get(f"{ARTIFACTS}/{path}/weights.txt")
    listing = http.get(ARTIFACTS, params={"path": path})
    if name == "secret":
        assert uri.status_code == download.status_code == listing.status_code == 403
        assert download.json()["error_code"] == "PERMISSION_DENIED"
    else:
        assert download.status_code == 200
        assert download.content == b"w"
        assert _ok(listing) == {"files": [{"path": "weights.txt", "is_dir": False,
                                           "file_size": 1}]}  # fmt: skip
    assert ("alice", "read", f"model:{name}") in authorizer.asked

    _ok(http.request("DELETE", f"{API}/model-versions/delete",
                     json={"name": name, "version": "1"}))  # fmt: skip
    assert Registry(workspace).history(name)[-1].user_id == "alice"


def test_logged_model_calls_are_authorized_per_model(
    app_client: tuple[httpx.Client, Recording],
) -> None:
    http, authorizer = app_client
    model = _ok(http.post(f"{API}/logged-models", json={"experiment_id": "0", "name": "m"}))
    info = model["model"]["info"]  # type: ignore[index]
    mid = info["model_id"]
    assert info["artifact_uri"] == f"mlflow-artifacts:/0/models/{mid}/artifacts"
    assert (
        http.put(f"{ARTIFACTS}/0/models/{mid}/artifacts/MLmodel", content=b"x").status_code == 200
    )
    _ok(http.get(f"{API}/logged-models/{mid}"))
    _ok(http.post(f"{API}/logged-models/search", json={"experiment_ids": ["0"]}))
    assert ("alice", "write", "experiment:0") in authorizer.asked
    assert ("alice", "write", f"logged-model:{mid}") in authorizer.asked
    assert ("alice", "read", f"logged-model:{mid}") in authorizer.asked
    assert ("alice", "read", "experiment:0") in authorizer.asked
    body = {"name": "from-model", "source": f"models:/{mid}"}
    pending = http.post(f"{API}/model-versions/create", json=body)
    assert pending.status_code == 400
    assert "LOGGED_MODEL_PENDING" in pending.json()["message"]
    _ok(http.patch(f"{API}/logged-models/{mid}", json={"status": "LOGGED_MODEL_READY"}))
    authorizer.asked.clear()
    version = _ok(http.post(f"{API}/model-versions/create", json=body))["model_version"]
    assert version["model_id"] == mid  # type: ignore[index]
    assert authorizer.asked == [
        ("alice", "write", "model:from-model"),
        ("alice", "read", f"logged-model:{mid}"),
    ]
