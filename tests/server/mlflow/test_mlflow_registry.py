"""The MLflow model registry against a real Shipyard server, with the unmodified ``mlflow``
client: registered models, versions, tags, aliases and stages, search, MLflow's error codes, and
Shipyard's own invariants (approvals before an alias moves, no deleting an aliased version, the
audit trail) enforced through the MLflow surface.

Versions here are registered from files logged to a run (``runs:/<run>/model``), which is quick;
``test_mlflow_logged_models.py`` covers the MLflow 3 path through ``log_model``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.config import Settings
from shipyard.entities import RegistryAction
from shipyard.registry import Registry
from shipyard.workspace import Workspace
from tests.server.mlflow.conftest import LiveServer

mlflow = pytest.importorskip("mlflow")

from mlflow import MlflowClient  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

pytestmark = [
    pytest.mark.mlflow,
    # Stages are deprecated in MLflow (since 2.9) but still served: the client warns per call.
    pytest.mark.filterwarnings("ignore:.*is deprecated since 2.9.0:FutureWarning"),
]

API = "/api/2.0/mlflow"
PROMPT_TAG = "mlflow.prompt.is_prompt"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def client(mlflow_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[MlflowClient]:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    mlflow.set_tracking_uri(mlflow_server.url)
    try:
        yield MlflowClient(tracking_uri=mlflow_server.url)
    finally:
        mlflow.set_tracking_uri(None)


@pytest.fixture
def server_workspace(mlflow_server: LiveServer) -> Iterator[Workspace]:
    """Shipyard's SDK on the server's own database and artifact store."""
    ws = Workspace.open(Settings.from_env({}, home=mlflow_server.home))
    try:
        yield ws
    finally:
        ws.close()


@pytest.fixture
def run_with_files(client: MlflowClient) -> str:
    """A run holding ``model/weights.txt`` and ``model/config.json``."""
    exp = client.create_experiment(unique("registry"))
    run = client.create_run(exp)
    client.log_text(run.info.run_id, "w", "model/weights.txt")
    client.log_dict(run.info.run_id, {"layers": 2}, "model/config.json")
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def _register(client: MlflowClient, name: str, run_id: str, n: int = 1) -> list[str]:
    return [
        client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id).version
        for _ in range(n)
    ]


def _code(excinfo: pytest.ExceptionInfo[MlflowException]) -> str:
    """The error code the client read from the server's answer (HTTP statuses are checked over
    raw HTTP in ``test_bad_registry_input_is_a_clear_4xx``)."""
    return str(excinfo.value.error_code)


# ------------------------------------------------------------------------------ registered models


def test_registered_model_create_get_update_rename_tags_delete(client: MlflowClient) -> None:
    name = unique("crud")
    created = client.create_registered_model(name, tags={"team": "risk"}, description="first")
    assert created.name == name
    assert created.tags == {"team": "risk"}
    assert created.description == "first"
    client.update_registered_model(name, description="second")
    assert client.get_registered_model(name).description == "second"
    client.set_registered_model_tag(name, "tier", "gold")
    client.delete_registered_model_tag(name, "team")
    assert client.get_registered_model(name).tags == {"tier": "gold"}

    renamed = unique("renamed")
    client.rename_registered_model(name, renamed)
    assert client.get_registered_model(renamed).tags == {"tier": "gold"}
    with pytest.raises(MlflowException) as old:
        client.get_registered_model(name)
    assert _code(old) == "RESOURCE_DOES_NOT_EXIST"

    client.delete_registered_model(renamed)
    with pytest.raises(MlflowException) as gone:
        client.get_registered_model(renamed)
    assert _code(gone) == "RESOURCE_DOES_NOT_EXIST"


def test_search_registered_models_filter_order_and_pages(client: MlflowClient) -> None:
    prefix = unique("search")
    names = [f"{prefix}-{i}" for i in range(5)]
    for i, name in enumerate(names):
        client.create_registered_model(name, tags={"team": "a" if i % 2 else "b"})
    client.create_registered_model(f"{prefix}-untagged")

    found = client.search_registered_models(f"name LIKE '{prefix}-%'", order_by=["name DESC"])
    assert [m.name for m in found] == sorted([*names, f"{prefix}-untagged"], reverse=True)
    team_a = client.search_registered_models(f"name LIKE '{prefix}%' AND tags.team = 'a'")
    assert [m.name for m in team_a] == [names[1], names[3]]
    not_a = client.search_registered_models(f"name LIKE '{prefix}%' AND tags.team != 'a'")
    assert [m.name for m in not_a] == [names[0], names[2], names[4], f"{prefix}-untagged"]
    exact = client.search_registered_models(f"name IN ('{names[0]}', '{names[4]}')")
    assert [m.name for m in exact] == [names[0], names[4]]

    seen: list[str] = []
    token = None
    while True:
        page = client.search_registered_models(
            f"name LIKE '{prefix}-_'", max_results=2, page_token=token
        )
        assert len(page) <= 2
        seen.extend(m.name for m in page)
        token = page.token
        if not token:
            break
    assert seen == names

    with pytest.raises(MlflowException) as bad:
        client.search_registered_models("name LIKE 'a' OR name LIKE 'b'")
    assert _code(bad) == "INVALID_PARAMETER_VALUE"


def test_prompts_are_left_out_of_model_search(
    client: MlflowClient, mlflow_server: LiveServer
) -> None:
    prefix = unique("prompts")
    with httpx.Client(base_url=mlflow_server.url, timeout=30) as http:
        for suffix, value in (("prompt", "true"), ("not-prompt", "false")):
            resp = http.post(
                f"{API}/registered-models/create",
                json={"name": f"{prefix}-{suffix}", "tags": [{"key": PROMPT_TAG, "value": value}]},
            )
            assert resp.status_code == 200, resp.text
        client.create_registered_model(f"{prefix}-plain")

        # The client appends "AND tags.`mlflow.prompt.is_prompt` != 'true'": models without the
        # tag must still match.
        listed = client.search_registered_models(f"name LIKE '{prefix}%'")
        assert [m.name for m in listed] == [f"{prefix}-not-prompt", f"{prefix}-plain"]

        def raw(filter_string: str) -> list[str]:
            resp = http.get(f"{API}/registered-models/search", params={"filter": filter_string})
            assert resp.status_code == 200, resp.text
            return [m["name"] for m in resp.json().get("registered_models", [])]

        assert raw(f"name LIKE '{prefix}%'") == [f"{prefix}-not-prompt", f"{prefix}-plain"]
        assert raw(f"name LIKE '{prefix}%' AND tags.`{PROMPT_TAG}` = 'true'") == [
            f"{prefix}-prompt"
        ]


# ------------------------------------------------------------------------------ versions


def test_model_version_lifecycle(client: MlflowClient, run_with_files: str, tmp_path: Path) -> None:
    name = unique("versions")
    client.create_registered_model(name)
    assert _register(client, name, run_with_files, 3) == ["1", "2", "3"]
    v1 = client.get_model_version(name, "1")
    assert v1.source == f"runs:/{run_with_files}/model"
    assert v1.run_id == run_with_files
    assert v1.status == "READY"
    assert v1.user_id == "anonymous"

    client.update_model_version(name, "2", description="candidate")
    assert client.get_model_version(name, "2").description == "candidate"
    client.set_model_version_tag(name, "2", "validated", "yes")
    client.set_model_version_tag(name, "3", "validated", "no")
    client.delete_model_version_tag(name, "3", "validated")
    assert client.get_model_version(name, "3").tags == {}

    found = client.search_model_versions(f"name = '{name}'")
    assert [v.version for v in found] == ["3", "2", "1"]
    found = client.search_model_versions(
        f"name = '{name}' AND version_number > 1", order_by=["version_number ASC"]
    )
    assert [v.version for v in found] == ["2", "3"]
    found = client.search_model_versions(f"name = '{name}' AND tags.validated = 'yes'")
    assert [v.version for v in found] == ["2"]
    assert len(client.search_model_versions(f"run_id = '{run_with_files}'")) == 3

    client.transition_model_version_stage(name, "1", "Production")
    moved = client.transition_model_version_stage(
        name, "2", "production", archive_existing_versions=True
    )
    assert moved.current_stage == "Production"
    assert client.get_model_version(name, "1").current_stage == "Archived"
    latest = client.get_latest_versions(name, stages=["Production"])
    assert [(v.version, v.current_stage) for v in latest] == [("2", "Production")]
    every_stage = {v.current_stage: v.version for v in client.get_latest_versions(name)}
    assert every_stage == {"Archived": "1", "None": "3", "Production": "2"}
    mlflow.artifacts.download_artifacts(f"models:/{name}/Production", dst_path=str(tmp_path / "p"))
    assert (tmp_path / "p" / "weights.txt").read_text() == "w"

    uri = client.get_model_version_download_uri(name, "3")
    assert uri.startswith("mlflow-artifacts:/model-versions/mv-")
    assert uri.endswith("/model")
    local = Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(tmp_path / "v3")))
    assert sorted(p.name for p in local.iterdir()) == ["config.json", "weights.txt"]

    client.delete_model_version(name, "3")
    with pytest.raises(MlflowException) as gone:
        client.get_model_version(name, "3")
    assert _code(gone) == "RESOURCE_DOES_NOT_EXIST"
    assert _register(client, name, run_with_files) == ["4"]  # numbers are never reused


def test_a_version_is_a_copy_that_outlives_the_runs_files(
    client: MlflowClient, run_with_files: str, tmp_path: Path, mlflow_server: LiveServer
) -> None:
    name = unique("outlives-run")
    _register(client, name, run_with_files)
    exp = client.get_run(run_with_files).info.experiment_id
    deleted = httpx.delete(
        f"{mlflow_server.url}/api/2.0/mlflow-artifacts/artifacts/{exp}/{run_with_files}"
        "/artifacts/model"
    )
    assert deleted.status_code == 200
    assert client.list_artifacts(run_with_files, "model") == []
    local = mlflow.artifacts.download_artifacts(f"models:/{name}/1", dst_path=str(tmp_path / "a"))
    assert (Path(local) / "weights.txt").read_text() == "w"


def test_copy_model_version_registers_the_same_files(
    client: MlflowClient, run_with_files: str, tmp_path: Path
) -> None:
    src, dst = unique("src"), unique("dst")
    _register(client, src, run_with_files)
    copied = client.copy_model_version(f"models:/{src}/1", dst)
    assert copied.version == "1"
    local = mlflow.artifacts.download_artifacts(f"models:/{dst}/1", dst_path=str(tmp_path))
    assert (Path(local) / "weights.txt").read_text() == "w"


# ------------------------------------------------------------------------------ aliases


def test_aliases_set_get_move_delete(client: MlflowClient, run_with_files: str) -> None:
    name = unique("aliases")
    _register(client, name, run_with_files, 2)
    client.set_registered_model_alias(name, "champion", "1")
    client.set_registered_model_alias(name, "challenger", "2")
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    assert client.get_registered_model(name).aliases == {"champion": "1", "challenger": "2"}
    assert client.get_model_version(name, "1").aliases == ["champion"]

    client.set_registered_model_alias(name, "champion", "2")
    assert sorted(client.get_model_version(name, "2").aliases) == ["challenger", "champion"]
    client.delete_registered_model_alias(name, "challenger")
    assert client.get_registered_model(name).aliases == {"champion": "2"}

    with pytest.raises(MlflowException) as missing:
        client.get_model_version_by_alias(name, "challenger")
    assert _code(missing) == "INVALID_PARAMETER_VALUE"
    assert "challenger" in missing.value.message
    for reserved in ("latest", "v3", "Latest"):
        with pytest.raises(MlflowException) as refused:
            client.set_registered_model_alias(name, reserved, "1")
        assert _code(refused) == "INVALID_PARAMETER_VALUE"
        assert "reserved" in refused.value.message


# ------------------------------------------------------------------------------ invariants


def test_an_aliased_version_cannot_be_deleted(client: MlflowClient, run_with_files: str) -> None:
    name = unique("held")
    _register(client, name, run_with_files, 2)
    client.set_registered_model_alias(name, "prod", "1")
    with pytest.raises(MlflowException) as refused:
        client.delete_model_version(name, "1")
    assert _code(refused) == "INVALID_PARAMETER_VALUE"
    assert "alias 'prod'" in refused.value.message
    with pytest.raises(MlflowException) as model_refused:
        client.delete_registered_model(name)
    assert _code(model_refused) == "INVALID_PARAMETER_VALUE"
    assert client.get_model_version(name, "1").version == "1"
    client.delete_registered_model_alias(name, "prod")
    client.delete_model_version(name, "1")
    client.delete_registered_model(name)


def test_an_alias_moves_only_to_an_approved_version(
    client: MlflowClient, run_with_files: str, server_workspace: Workspace
) -> None:
    name = unique("approvals")
    _register(client, name, run_with_files, 2)
    registry = Registry(server_workspace)
    registry.require_approvals(name, 1, alias="production", user="lead")
    with pytest.raises(MlflowException) as refused:
        client.set_registered_model_alias(name, "production", "2")
    assert _code(refused) == "INVALID_PARAMETER_VALUE"
    assert "approval" in refused.value.message
    assert client.get_registered_model(name).aliases == {}
    client.set_registered_model_alias(name, "staging", "2")  # no policy for this alias
    registry.approve(name, 2, "reviewer")
    client.set_registered_model_alias(name, "production", "2")
    assert client.get_model_version_by_alias(name, "production").version == "2"


def test_every_change_lands_in_the_audit_trail_with_the_requests_user(
    client: MlflowClient, run_with_files: str, server_workspace: Workspace
) -> None:
    name = unique("audit")
    client.create_registered_model(name)
    _register(client, name, run_with_files, 2)
    client.set_registered_model_alias(name, "champion", "1")
    client.set_registered_model_alias(name, "champion", "2")
    client.transition_model_version_stage(name, "1", "Staging")
    client.delete_registered_model_alias(name, "champion")
    client.delete_model_version(name, "1")
    renamed = unique("audited")
    client.rename_registered_model(name, renamed)
    client.delete_registered_model(renamed)

    # Once the model is gone, its trail is found by the names it had (events before the rename
    # carry the old one).
    registry = Registry(server_workspace)
    events = registry.history(name) + registry.history(renamed)
    actions = [(e.action, e.version, e.alias, e.from_value, e.to_value) for e in events]
    assert actions == [
        (RegistryAction.MODEL_CREATED, None, None, None, None),
        (RegistryAction.VERSION_CREATED, 1, None, None, f"runs:/{run_with_files}/model"),
        (RegistryAction.VERSION_CREATED, 2, None, None, f"runs:/{run_with_files}/model"),
        (RegistryAction.ALIAS_SET, 1, "champion", None, "1"),
        (RegistryAction.ALIAS_SET, 2, "champion", "1", "2"),
        (RegistryAction.STAGE_CHANGED, 1, None, "None", "Staging"),
        (RegistryAction.ALIAS_DELETED, 2, "champion", "2", None),
        (RegistryAction.VERSION_DELETED, 1, None, f"runs:/{run_with_files}/model", None),
        (RegistryAction.MODEL_RENAMED, None, None, name, renamed),
        (RegistryAction.MODEL_DELETED, None, None, None, None),
    ]
    assert {e.user_id for e in events} == {"anonymous"}


# ------------------------------------------------------------------------------ errors


def test_registry_errors_carry_mlflows_codes(client: MlflowClient, run_with_files: str) -> None:
    name = unique("errors")
    client.create_registered_model(name)
    with pytest.raises(MlflowException) as duplicate:
        client.create_registered_model(name)
    assert _code(duplicate) == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(MlflowException) as missing:
        client.get_registered_model(unique("missing"))
    assert _code(missing) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as no_version:
        client.get_model_version(name, "7")
    assert _code(no_version) == "RESOURCE_DOES_NOT_EXIST"
    _register(client, name, run_with_files)
    with pytest.raises(MlflowException) as bad_stage:
        client.transition_model_version_stage(name, "1", "Retired")
    assert _code(bad_stage) == "INVALID_PARAMETER_VALUE"
    assert "Staging" in bad_stage.value.message
    with pytest.raises(MlflowException) as no_files:
        client.create_model_version(name, f"runs:/{run_with_files}/nothing-here")
    assert _code(no_files) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as bad_source:
        client.create_model_version(name, "s3://bucket/model")
    assert _code(bad_source) == "INVALID_PARAMETER_VALUE"
    assert "runs:/" in bad_source.value.message
    other = unique("other")
    client.create_registered_model(other)
    with pytest.raises(MlflowException) as taken:
        client.rename_registered_model(name, other)
    assert _code(taken) == "RESOURCE_ALREADY_EXISTS"


BAD_INPUT = [
    ("GET", "/registered-models/get", {}, None, 400, "Missing value for required parameter 'name'"),
    ("POST", "/registered-models/create", None, {"name": 5}, 400, "Invalid value 5"),
    ("POST", "/registered-models/create", None, {"name": "a/b"}, 400, "'/' or '@'"),
    ("GET", "/model-versions/get", {"name": "{name}", "version": "abc"}, None, 400, "version"),
    ("GET", "/model-versions/get", {"name": "{name}", "version": "0"}, None, 400, "version"),
    ("GET", "/registered-models/search", {"max_results": "5000"}, None, 400, "max_results"),
    ("GET", "/registered-models/search", {"filter": "owner = 'me'"}, None, 400, "attribute"),
    ("GET", "/model-versions/search", {"order_by": "size DESC"}, None, 400, "order"),
    ("GET", "/model-versions/search", {"max_results": "300000"}, None, 400, "max_results"),
    ("POST", "/model-versions/create", None, {"name": "{name}"}, 400, "'source'"),
    ("POST", "/model-versions/create", None,
     {"name": "{name}", "source": "models:/m-" + "e" * 32}, 404, "m-eeee"),
    ("POST", "/model-versions/create", None,
     {"name": "{name}", "source": "runs:/" + "f" * 32 + "/model"}, 404, "f" * 32),
    ("POST", "/model-versions/create", None,
     {"name": "{name}", "source": "runs:/{run}/model", "run_id": "a" * 32}, 400,
     "does not match"),
    ("POST", "/model-versions/create", None,
     {"name": "{name}", "source": "runs:/{run}/model", "model_id": "m-" + "e" * 32}, 400,
     "model_id"),
    ("POST", "/registered-models/alias", None, {"name": "{name}", "alias": "a b", "version": "1"},
     400, "letters, digits"),
    ("POST", "/registered-models/alias", None, {"name": "{name}", "alias": "x", "version": "9"},
     404, "no version 9"),
    ("DELETE", "/registered-models/alias", None, {"name": "{name}", "alias": "nope"}, 404,
     "no alias 'nope'"),
    ("DELETE", "/registered-models/delete-tag", None, {"name": "{name}", "key": "nope"}, 404,
     "no tag"),
    ("PUT", "/registered-models/alias", None, {}, 405, "DELETE, GET, POST"),
    ("POST", "/model-versions/transition-stage", None,
     {"name": "{name}", "version": "1", "stage": "Gold"}, 400, "stage"),
    ("POST", "/registered-models/create", None, {"name": "{name}"}, 400, "already exists"),
    ("GET", "/registered-models/get", {"name": "no-such-model"}, None, 404, "no-such-model"),
    ("GET", "/registered-models/alias", {"name": "{name}", "alias": "unset"}, None, 400,
     "no alias 'unset'"),
    ("GET", "/model-versions/get-download-uri", {"name": "{name}", "version": "5"}, None, 404,
     "no version 5"),
]  # fmt: skip
CODES = {400: "INVALID_PARAMETER_VALUE", 404: "RESOURCE_DOES_NOT_EXIST", 405: "BAD_REQUEST"}


@pytest.mark.parametrize(("method", "path", "params", "body", "status", "says"), BAD_INPUT)
def test_bad_registry_input_is_a_clear_4xx(
    method: str,
    path: str,
    params: dict[str, str] | None,
    body: dict[str, Any] | None,
    status: int,
    says: str,
    client: MlflowClient,
    run_with_files: str,
    mlflow_server: LiveServer,
) -> None:
    name = unique("bad")
    _register(client, name, run_with_files)

    def fill(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace("{name}", name).replace("{run}", run_with_files)
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        return value

    resp = httpx.request(
        method,
        f"{mlflow_server.url}{API}{path}",
        params=fill(params),
        json=fill(body),
        timeout=30,
    )
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    payload = resp.json()
    assert set(payload) == {"error_code", "message"}, payload
    expected = "RESOURCE_ALREADY_EXISTS" if says == "already exists" else CODES[status]
    assert payload["error_code"] == expected, payload
    assert fill(says) in payload["message"], payload


def test_server_logged_no_unexpected_errors(mlflow_server: LiveServer) -> None:
    """Runs last in this module: nothing above made the server hit an unexpected error."""
    log = mlflow_server.log_text()
    assert "unexpected error" not in log
    assert "Traceback" not in log
