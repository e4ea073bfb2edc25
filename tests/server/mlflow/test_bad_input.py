"""A sweep of bad inputs over raw HTTP on the MLflow-compatible surface.

Every case must be answered with the expected 4xx status and MLflow ``error_code``, a JSON body
in MLflow's error shape, and a message that names the problem (checked by a fragment) -- never a
5xx, never HTML.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.server.mlflow.conftest import LiveServer

API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
UNKNOWN_RUN = "f" * 32
UNKNOWN_MODEL = "m-" + "e" * 32
_UNSET: Any = object()
SHOW = bool(os.environ.get("SHOW_BAD_INPUT_ANSWERS"))


@dataclass(frozen=True)
class Seed:
    """Ids created before the sweep: an active run with a logged param and a deleted run."""

    exp: str
    exp_name: str
    run: str
    deleted_run: str


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str
    """May contain ``{exp}``, ``{run}``, ``{deleted_run}`` and ``{exp_name}``."""
    json: Any = _UNSET
    content: bytes | None = None
    params: dict[str, Any] = field(default_factory=dict)
    status: int = 400
    code: str = "INVALID_PARAMETER_VALUE"
    says: str = ""
    """A fragment the message must contain (case-insensitive)."""


def _fill(value: Any, seed: Seed) -> Any:
    if isinstance(value, str):
        return value.format(**vars(seed))
    if isinstance(value, list):
        return [_fill(v, seed) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, seed) for k, v in value.items()}
    return value


def _metric(**overrides: Any) -> dict[str, Any]:
    return {"run_id": "{run}", "key": "m", "value": 1.0, "timestamp": 1, "step": 0, **overrides}


def _batch_metrics(n: int) -> list[dict[str, Any]]:
    return [{"key": f"k{i}", "value": 1.0, "timestamp": 1, "step": 0} for i in range(n)]


LONG = "x" * 251

CASES = [
    # ---------------------------------------------------------------- unknown resources
    Case("unknown-run-get", "GET", f"{API}/runs/get", params={"run_id": UNKNOWN_RUN},
         status=404, code="RESOURCE_DOES_NOT_EXIST", says=UNKNOWN_RUN),
    Case("unknown-run-log-metric", "POST", f"{API}/runs/log-metric",
         json=_metric(run_id=UNKNOWN_RUN), status=404, code="RESOURCE_DOES_NOT_EXIST"),
    Case("unknown-run-log-batch", "POST", f"{API}/runs/log-batch",
         json={"run_id": UNKNOWN_RUN, "params": [{"key": "a", "value": "1"}]},
         status=404, code="RESOURCE_DOES_NOT_EXIST"),
    Case("unknown-run-history", "GET", f"{API}/metrics/get-history",
         params={"run_id": UNKNOWN_RUN, "metric_key": "m"},
         status=404, code="RESOURCE_DOES_NOT_EXIST"),
    Case("malformed-run-id", "GET", f"{API}/runs/get", params={"run_id": "../etc"},
         says="run id"),
    Case("unknown-experiment", "GET", f"{API}/experiments/get",
         params={"experiment_id": "987654321"}, status=404, code="RESOURCE_DOES_NOT_EXIST"),
    Case("experiment-id-not-integer", "GET", f"{API}/experiments/get",
         params={"experiment_id": "abc"}, says="whole number"),
    Case("experiment-id-negative", "POST", f"{API}/experiments/delete",
         json={"experiment_id": "-1"}, says="whole number"),
    Case("experiment-by-name-missing", "GET", f"{API}/experiments/get-by-name",
         params={"experiment_name": "no-such-experiment-anywhere"},
         status=404, code="RESOURCE_DOES_NOT_EXIST", says="no-such-experiment-anywhere"),
    Case("create-run-unknown-experiment", "POST", f"{API}/runs/create",
         json={"experiment_id": "987654321"}, status=404, code="RESOURCE_DOES_NOT_EXIST"),
    Case("delete-missing-tag", "POST", f"{API}/runs/delete-tag",
         json={"run_id": "{run}", "key": "never-set"}, status=404,
         code="RESOURCE_DOES_NOT_EXIST"),
    # ---------------------------------------------------------------- conflicts and state
    Case("changed-param", "POST", f"{API}/runs/log-parameter",
         json={"run_id": "{run}", "key": "fixed", "value": "2"}, says="fixed"),
    Case("duplicate-experiment-name", "POST", f"{API}/experiments/create",
         json={"name": "{exp_name}"}, code="RESOURCE_ALREADY_EXISTS", says="{exp_name}"),
    Case("log-to-deleted-run", "POST", f"{API}/runs/log-metric",
         json=_metric(run_id="{deleted_run}"), says="deleted"),
    Case("param-to-deleted-run", "POST", f"{API}/runs/log-parameter",
         json={"run_id": "{deleted_run}", "key": "a", "value": "1"}, says="deleted"),
    # ---------------------------------------------------------------- limits
    Case("metric-key-too-long", "POST", f"{API}/runs/log-metric", json=_metric(key=LONG),
         says="250"),
    Case("param-key-too-long", "POST", f"{API}/runs/log-parameter",
         json={"run_id": "{run}", "key": LONG, "value": "v"}, says="250"),
    Case("param-value-too-long", "POST", f"{API}/runs/log-parameter",
         json={"run_id": "{run}", "key": "big", "value": "v" * 6001}, says="6000"),
    Case("tag-value-too-long", "POST", f"{API}/runs/set-tag",
         json={"run_id": "{run}", "key": "big", "value": "v" * 8001}, says="8000"),
    Case("experiment-name-too-long", "POST", f"{API}/experiments/create",
         json={"name": "n" * 501}, says="500"),
    Case("key-with-bad-characters", "POST", f"{API}/runs/set-tag",
         json={"run_id": "{run}", "key": "a\nb", "value": "v"}, says="characters"),
    Case("key-with-dotdot", "POST", f"{API}/runs/log-metric", json=_metric(key="../m"),
         says=".."),
    Case("batch-too-many-metrics", "POST", f"{API}/runs/log-batch",
         json={"run_id": "{run}", "metrics": _batch_metrics(1001)}, says="1000"),
    Case("batch-too-many-params", "POST", f"{API}/runs/log-batch",
         json={"run_id": "{run}", "params": [{"key": f"p{i}", "value": "1"} for i in range(101)]},
         says="100"),
    Case("batch-too-many-tags", "POST", f"{API}/runs/log-batch",
         json={"run_id": "{run}", "tags": [{"key": f"t{i}", "value": "1"} for i in range(101)]},
         says="100"),
    Case("batch-too-many-values", "POST", f"{API}/runs/log-batch",
         json={"run_id": "{run}", "metrics": _batch_metrics(950),
               "params": [{"key": f"q{i}", "value": "1"} for i in range(60)]},
         says="1000"),
    Case("batch-duplicate-param", "POST", f"{API}/runs/log-batch",
         json={"run_id": "{run}", "params": [{"key": "d", "value": "1"},
                                             {"key": "d", "value": "2"}]}, says="'d'"),
    Case("search-runs-max-results", "POST", f"{API}/runs/search",
         json={"experiment_ids": ["{exp}"], "max_results": 50001}, says="50000"),
    Case("search-experiments-max-results", "POST", f"{API}/experiments/search",
         json={"max_results": 50001}, says="50000"),
    Case("history-max-results", "GET", f"{API}/metrics/get-history",
         params={"run_id": "{run}", "metric_key": "m", "max_results": "25001"}, says="25000"),
    Case("bulk-too-many-runs", "GET", f"{API}/metrics/get-history-bulk-interval",
         params={"run_ids": [f"{i:032x}" for i in range(101)], "metric_key": "m"}, says="100"),
    Case("bulk-one-sided-range", "GET", f"{API}/metrics/get-history-bulk-interval",
         params={"run_ids": "{run}", "metric_key": "m", "start_step": "1"}, says="end_step"),
    Case("timestamp-out-of-range", "POST", f"{API}/runs/log-metric",
         json=_metric(timestamp=2**63), says="timestamp"),
    # ---------------------------------------------------------------- malformed bodies
    Case("malformed-json", "POST", f"{API}/experiments/create", content=b'{"name": ',
         says="not valid JSON"),
    Case("json-list", "POST", f"{API}/experiments/create", content=b'[{"name": "x"}]',
         says="JSON object"),
    Case("json-string", "POST", f"{API}/runs/log-metric", content=b'"hello"',
         says="JSON object"),
    Case("json-number", "POST", f"{API}/runs/create", content=b"5", says="JSON object"),
    Case("json-null", "POST", f"{API}/runs/update", content=b"null", says="JSON object"),
    Case("nan-literal", "POST", f"{API}/runs/log-metric",
         content=b'{"run_id": "{run}", "key": "m", "value": NaN, "timestamp": 1}',
         says='"NaN"'),
    Case("infinity-literal", "POST", f"{API}/runs/log-batch",
         content=b'{"run_id": "{run}", "metrics": [{"key": "m", "value": -Infinity, '
         b'"timestamp": 1}]}', says="Infinity"),
    # ---------------------------------------------------------------- wrong types
    Case("name-is-number", "POST", f"{API}/experiments/create", json={"name": 5},
         says="Invalid value 5 for parameter 'name'"),
    Case("metric-value-is-word", "POST", f"{API}/runs/log-metric", json=_metric(value="abc"),
         says="'value'"),
    Case("metric-value-is-bool", "POST", f"{API}/runs/log-metric", json=_metric(value=True),
         says="'value'"),
    Case("timestamp-is-word", "POST", f"{API}/runs/log-metric", json=_metric(timestamp="soon"),
         says="'timestamp'"),
    Case("step-is-fraction", "POST", f"{API}/runs/log-metric", json=_metric(step=1.5),
         says="'step'"),
    Case("tags-not-a-list", "POST", f"{API}/runs/create",
         json={"experiment_id": "{exp}", "tags": {"a": "b"}}, says="'tags'"),
    Case("tag-element-not-object", "POST", f"{API}/runs/create",
         json={"experiment_id": "{exp}", "tags": ["a"]}, says="tags[0]"),
    Case("batch-metric-missing-key", "POST", f"{API}/runs/log-batch",
         json={"run_id": "{run}", "metrics": [{"value": 1, "timestamp": 1}]},
         says="metrics[0].key"),
    Case("param-value-is-number", "POST", f"{API}/runs/log-parameter",
         json={"run_id": "{run}", "key": "n", "value": 5}, says="'value'"),
    Case("run-status-unknown", "POST", f"{API}/runs/update",
         json={"run_id": "{run}", "status": "DONE"}, says="FINISHED"),
    Case("view-type-unknown", "POST", f"{API}/runs/search",
         json={"experiment_ids": ["{exp}"], "run_view_type": "SOME"}, says="ACTIVE_ONLY"),
    Case("experiment-ids-not-strings", "POST", f"{API}/runs/search",
         json={"experiment_ids": [True]}, says="experiment_ids[0]"),
    Case("max-results-is-word", "GET", f"{API}/experiments/search",
         params={"max_results": "many"}, says="'max_results'"),
    Case("dataset-without-digest", "POST", f"{API}/runs/log-inputs",
         json={"run_id": "{run}", "datasets": [{"dataset": {"name": "d"}}]}, says="digest"),
    # ---------------------------------------------------------------- missing fields
    Case("create-experiment-no-name", "POST", f"{API}/experiments/create", json={},
         says="Missing value for required parameter 'name'"),
    Case("get-run-no-id", "GET", f"{API}/runs/get",
         says="Missing value for required parameter 'run_id'"),
    Case("log-metric-no-key", "POST", f"{API}/runs/log-metric",
         json={"run_id": "{run}", "value": 1, "timestamp": 1},
         says="Missing value for required parameter 'key'"),
    Case("log-metric-no-timestamp", "POST", f"{API}/runs/log-metric",
         json={"run_id": "{run}", "key": "m", "value": 1},
         says="Missing value for required parameter 'timestamp'"),
    Case("log-param-no-value", "POST", f"{API}/runs/log-parameter",
         json={"run_id": "{run}", "key": "k"}, says="'value'"),
    Case("get-by-name-no-name", "GET", f"{API}/experiments/get-by-name",
         says="'experiment_name'"),
    Case("history-no-key", "GET", f"{API}/metrics/get-history", params={"run_id": "{run}"},
         says="'metric_key'"),
    Case("set-experiment-tag-no-key", "POST", f"{API}/experiments/set-experiment-tag",
         json={"experiment_id": "{exp}", "value": "v"}, says="'key'"),
    # ---------------------------------------------------------------- filters
    Case("filter-dangling-operator", "POST", f"{API}/runs/search",
         json={"experiment_ids": ["{exp}"], "filter": "metrics.acc >"}),
    Case("filter-or", "POST", f"{API}/runs/search",
         json={"experiment_ids": ["{exp}"], "filter": "params.a = '1' OR params.b = '2'"}),
    Case("filter-unknown-prefix", "POST", f"{API}/runs/search",
         json={"experiment_ids": ["{exp}"], "filter": "foo.bar = '1'"}),
    Case("filter-metric-string", "POST", f"{API}/runs/search",
         json={"experiment_ids": ["{exp}"], "filter": "metrics.acc = 'high'"}),
    Case("order-by-garbage", "POST", f"{API}/runs/search",
         json={"experiment_ids": ["{exp}"], "order_by": ["metrics.acc SIDEWAYS"]}),
    Case("experiment-filter-bad", "GET", f"{API}/experiments/search",
         params={"filter": "name LIKE"}),
    Case("bad-page-token", "POST", f"{API}/runs/search",
         json={"experiment_ids": ["{exp}"], "page_token": "not-a-token"}),
    # ---------------------------------------------------------------- artifact paths
    Case("artifact-dotdot-encoded", "PUT",
         ARTIFACTS + "/{exp}/{run}/artifacts/%2e%2e/%2e%2e/escape.txt", content=b"x",
         says="leaves"),
    Case("artifact-dotdot-prefix", "PUT", ARTIFACTS + "/{exp}/{run}/artifacts/a/%2E%2E/b",
         content=b"x"),
    Case("artifact-absolute", "PUT", ARTIFACTS + "//etc/passwd", content=b"x",
         says="absolute"),
    Case("artifact-backslash", "PUT", ARTIFACTS + "/{exp}/{run}/artifacts/a%5C..%5Cb",
         content=b"x", says="backslash"),
    Case("artifact-nul", "PUT", ARTIFACTS + "/{exp}/{run}/artifacts/a%00b", content=b"x",
         says="NUL"),
    Case("artifact-download-dotdot", "GET", ARTIFACTS + "/{exp}/{run}/artifacts/%2e%2e/x"),
    Case("artifact-list-dotdot", "GET", ARTIFACTS,
         params={"path": "{exp}/{run}/artifacts/../../.."}),
    Case("artifact-delete-absolute", "DELETE", ARTIFACTS + "/%2Fetc"),
    Case("artifact-put-run-root", "PUT", ARTIFACTS + "/{exp}/{run}/artifacts", content=b"x",
         says="file path"),
    Case("artifact-put-outside-run", "PUT", ARTIFACTS + "/{exp}/file.txt", content=b"x",
         says="<experiment_id>/<run_id>/artifacts"),
    Case("artifact-put-wrong-experiment", "PUT", ARTIFACTS + "/987654/{run}/artifacts/x.txt",
         content=b"x", says="belongs to experiment"),
    Case("artifact-put-unknown-run", "PUT", ARTIFACTS + "/{exp}/" + UNKNOWN_RUN + "/artifacts/x",
         content=b"x", status=404, code="RESOURCE_DOES_NOT_EXIST"),
    Case("artifact-missing", "GET", ARTIFACTS + "/{exp}/{run}/artifacts/absent.txt",
         status=404, code="RESOURCE_DOES_NOT_EXIST", says="absent.txt"),
    Case("artifact-run-list-dotdot", "GET", f"{API}/artifacts/list",
         params={"run_id": "{run}", "path": "../x"}),
    # ---------------------------------------------------------------- endpoints
    Case("unknown-endpoint", "POST", f"{API}/runs/teleport", json={}, status=404,
         code="ENDPOINT_NOT_FOUND"),
    # ---------------------------------------------------------------- logged models
    Case("logged-model-create-no-experiment", "POST", f"{API}/logged-models", json={},
         says="experiment_id"),
    Case("logged-model-create-bad-name", "POST", f"{API}/logged-models",
         json={"experiment_id": "{exp}", "name": "a/b"}, says="logged model name"),
    Case("logged-model-create-unknown-run", "POST", f"{API}/logged-models",
         json={"experiment_id": "{exp}", "source_run_id": UNKNOWN_RUN}, status=404,
         code="RESOURCE_DOES_NOT_EXIST", says=UNKNOWN_RUN),
    Case("logged-model-create-unknown-experiment", "POST", f"{API}/logged-models",
         json={"experiment_id": "987654321"}, status=404, code="RESOURCE_DOES_NOT_EXIST"),
    Case("logged-model-get-unknown", "GET", f"{API}/logged-models/{UNKNOWN_MODEL}", status=404,
         code="RESOURCE_DOES_NOT_EXIST", says=UNKNOWN_MODEL),
    Case("logged-model-get-bad-id", "GET", f"{API}/logged-models/123", says="logged model id"),
    Case("logged-model-finalize-no-status", "PATCH", f"{API}/logged-models/{UNKNOWN_MODEL}",
         json={}, says="status"),
    Case("logged-model-finalize-bad-status", "PATCH", f"{API}/logged-models/{UNKNOWN_MODEL}",
         json={"status": "DONE"}, says="LOGGED_MODEL_READY"),
    Case("logged-model-search-bad-filter", "POST", f"{API}/logged-models/search",
         json={"experiment_ids": ["{exp}"], "filter": "size > 1"}, code="INVALID_PARAMETER_VALUE",
         says="unknown logged model attribute"),
    Case("logged-model-search-bad-order", "POST", f"{API}/logged-models/search",
         json={"experiment_ids": ["{exp}"], "order_by": [{"field_name": "params.lr"}]},
         says="order_by"),
    Case("logged-model-search-too-many", "POST", f"{API}/logged-models/search",
         json={"experiment_ids": ["{exp}"], "max_results": 5000}, says="max_results"),
    Case("logged-model-search-bad-experiment", "POST", f"{API}/logged-models/search",
         json={"experiment_ids": ["abc"]}, says="experiment id"),
    Case("logged-model-tags-unknown", "PATCH", f"{API}/logged-models/{UNKNOWN_MODEL}/tags",
         json={"tags": [{"key": "a", "value": "b"}]}, status=404, code="RESOURCE_DOES_NOT_EXIST"),
    Case("logged-model-method", "PUT", f"{API}/logged-models/{UNKNOWN_MODEL}", json={},
         status=405, code="BAD_REQUEST", says="PATCH"),
    Case("run-outputs-unknown-model", "POST", f"{API}/runs/outputs",
         json={"run_id": "{run}", "models": [{"model_id": UNKNOWN_MODEL}]}, status=404,
         code="RESOURCE_DOES_NOT_EXIST", says=UNKNOWN_MODEL),
    Case("run-outputs-deleted-run", "POST", f"{API}/runs/outputs",
         json={"run_id": "{deleted_run}", "models": []}, says="deleted"),
    Case("log-inputs-unknown-model", "POST", f"{API}/runs/log-inputs",
         json={"run_id": "{run}", "models": [{"model_id": UNKNOWN_MODEL}]}, status=404,
         code="RESOURCE_DOES_NOT_EXIST"),
    Case("log-inputs-bad-model-id", "POST", f"{API}/runs/log-inputs",
         json={"run_id": "{run}", "models": [{"model_id": "m-1/x"}]}, says="logged model id"),
    Case("logged-model-artifact-unknown-model", "PUT",
         ARTIFACTS + "/{exp}/models/" + UNKNOWN_MODEL + "/artifacts/MLmodel", content=b"x",
         status=404, code="RESOURCE_DOES_NOT_EXIST"),
    Case("logged-model-artifact-bad-id", "PUT", ARTIFACTS + "/{exp}/models/nope/artifacts/x",
         content=b"x", says="logged model id"),
    Case("model-version-artifact-upload", "PUT",
         ARTIFACTS + "/model-versions/mv-" + "a" * 32 + "/artifacts/x", content=b"x",
         says="never change"),
    Case("model-version-artifact-unknown", "GET",
         ARTIFACTS + "/model-versions/mv-" + "a" * 32 + "/artifacts/x", status=404,
         code="RESOURCE_DOES_NOT_EXIST", says="no registered model version"),
    Case("model-version-artifact-bad-owner", "GET", ARTIFACTS + "/model-versions/run/artifacts/x",
         says="not a registered version"),
    Case("version-files-as-run-get", "GET", ARTIFACTS + "/{exp}/mv-" + "a" * 32 + "/artifacts/x",
         says="owns a registered version's"),
    Case("version-files-as-run-delete", "DELETE",
         ARTIFACTS + "/{exp}/mv-" + "a" * 32 + "/artifacts/x", says="owns a registered version's"),
    Case("logged-model-files-as-run-put", "PUT", ARTIFACTS + "/{exp}/m-" + "a" * 32 + "/artifacts/x",
         content=b"x", says="logged model's files"),
    Case("dataset-files-as-run-delete", "DELETE",
         ARTIFACTS + "/{exp}/dv-" + "a" * 32 + "/artifacts/x", says="dataset version's files"),
    Case("step-files-as-run-get", "GET", ARTIFACTS + "/{exp}/ps-" + "a" * 32 + "/artifacts/x",
         says="pipeline step's files"),
]  # fmt: skip


@pytest.fixture(scope="module")
def seed(mlflow_server: LiveServer) -> Iterator[Seed]:
    with httpx.Client(base_url=mlflow_server.url, timeout=30) as http:

        def call(path: str, body: dict[str, Any]) -> dict[str, Any]:
            resp = http.post(f"{API}{path}", json=body)
            assert resp.status_code == 200, resp.text
            return dict(resp.json())

        name = "bad-input-sweep"
        exp = call("/experiments/create", {"name": name})["experiment_id"]
        run = call("/runs/create", {"experiment_id": exp, "start_time": 1})["run"]["info"]["run_id"]
        call("/runs/log-parameter", {"run_id": run, "key": "fixed", "value": "1"})
        gone = call("/runs/create", {"experiment_id": exp})["run"]["info"]["run_id"]
        call("/runs/delete", {"run_id": gone})
        yield Seed(exp=exp, exp_name=name, run=run, deleted_run=gone)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_a_clear_4xx(case: Case, seed: Seed, http: httpx.Client) -> None:
    kwargs: dict[str, Any] = {"params": _fill(case.params, seed)}
    if case.json is not _UNSET:
        kwargs["json"] = _fill(case.json, seed)
    if case.content is not None:
        kwargs["content"] = case.content.replace(b"{run}", seed.run.encode())
        kwargs["headers"] = {"Content-Type": "application/json"}
    resp = http.request(case.method, _fill(case.path, seed), **kwargs)
    if SHOW:
        print(f"{case.id}: {resp.status_code} {resp.text}")
    assert resp.status_code == case.status, resp.text
    assert resp.headers["content-type"].startswith("application/json"), resp.text
    body = resp.json()
    assert body["error_code"] == case.code, body
    message = body["message"]
    assert len(message) > 20, body
    assert _fill(case.says, seed).lower() in message.lower(), body


def test_same_param_value_twice_is_accepted(seed: Seed, http: httpx.Client) -> None:
    body = {"run_id": seed.run, "key": "fixed", "value": "1"}
    assert http.post(f"{API}/runs/log-parameter", json=body).status_code == 200


def test_no_case_hit_an_unexpected_error(seed: Seed, mlflow_server: LiveServer) -> None:
    log = mlflow_server.log_text()
    assert "unexpected error" not in log
    assert "Traceback" not in log
