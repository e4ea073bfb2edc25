"""A sweep of bad inputs over raw HTTP on Shipyard's own API (``/api/v1``).

Every case must be answered with the expected 4xx status and stable ``error_code``, a JSON body in
Shipyard's error shape (``{"error_code", "message", "details"?}``), and a message that names the
problem (checked by a fragment) -- never a 5xx, never HTML. The MLflow-compatible surface has the
same sweep in ``tests/server/mlflow/test_bad_input.py``.

The server is a real uvicorn on a loopback socket (the HTTP parser sees the raw bytes: encoded
dots, NUL, backslashes), one per module, with a seeded workspace.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from shipyard.config import Settings
from shipyard.server.app import create_app
from shipyard.workspace import Workspace
from tests.server.conftest import serve_in_thread

API = "/api/v1"
UNKNOWN_RUN = "f" * 32
_UNSET: Any = object()
SHOW = bool(os.environ.get("SHOW_BAD_INPUT_ANSWERS"))
ERROR_KEYS = {"error_code", "message", "details"}


@dataclass(frozen=True)
class Seed:
    """Ids created before the sweep: an active run with a logged param, a deleted run, a
    second experiment (its name is taken), a registered model whose version 1 alias
    ``champion`` holds (``owner``: the version's storage owner), and a model whose policy wants
    one approval before ``champion`` moves (``gated``)."""

    exp: str
    exp_name: str
    other_exp: str
    run: str
    deleted_run: str
    model_run: str
    model: str
    gated: str
    owner: str


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str
    """May contain the fields of :class:`Seed` in braces (``{exp}``, ``{run}``, ``{model}``...)."""
    json: Any = _UNSET
    content: bytes | None = None
    params: dict[str, Any] = field(default_factory=dict)
    status: int = 400
    code: str = "INVALID_PARAMETER_VALUE"
    says: str = ""
    """A fragment the message must contain (case-insensitive)."""
    token: str | None = None
    """For filter errors: the offending token named in ``details``."""


def _fill(value: Any, seed: Seed) -> Any:
    if isinstance(value, str):
        return value.format(**vars(seed))
    if isinstance(value, list):
        return [_fill(v, seed) for v in value]
    if isinstance(value, dict):
        return {_fill(k, seed): _fill(v, seed) for k, v in value.items()}
    return value


def _metric(**overrides: Any) -> dict[str, Any]:
    return {"key": "m", "value": 1.0, "timestamp": 1, "step": 0, **overrides}


BATCH = API + "/runs/{run}/batch"
RUN = API + "/runs/{run}"
EXP = API + "/experiments/{exp}"
ARTIFACTS = API + "/runs/{run}/artifacts"
INDEX = API + "/admin/artifact-index/{run}"
SEARCH_RUNS = API + "/runs/search"
LONG = "x" * 251


def _metrics(n: int) -> list[dict[str, Any]]:
    return [_metric(key=f"k{i}") for i in range(n)]


def _search(**body: Any) -> dict[str, Any]:
    return {"experiment_ids": ["{exp}"], **body}


MODELS = API + "/registered-models"
MODEL = MODELS + "/{model}"
VERSION = MODEL + "/versions/1"
UNKNOWN_MODEL = MODELS + "/no-such-model"
OWNER_FILES = API + "/model-versions/{owner}/artifacts"
UNKNOWN_OWNER = API + "/model-versions/mv-" + "0" * 32 + "/artifacts"
REGISTER = MODEL + "/versions"


CASES = [
    # ---------------------------------------------------------------- unknown resources
    Case("unknown-run-get", "GET", f"{API}/runs/{UNKNOWN_RUN}", status=404,
         code="RESOURCE_DOES_NOT_EXIST", says=UNKNOWN_RUN),
    Case("unknown-run-batch", "POST", f"{API}/runs/{UNKNOWN_RUN}/batch",
         json={"params": {"a": "1"}}, status=404, code="RESOURCE_DOES_NOT_EXIST",
         says=UNKNOWN_RUN),
    Case("unknown-run-update", "PATCH", f"{API}/runs/{UNKNOWN_RUN}", json={"status": "FINISHED"},
         status=404, code="RESOURCE_DOES_NOT_EXIST"),
    Case("unknown-run-delete", "DELETE", f"{API}/runs/{UNKNOWN_RUN}", status=404,
         code="RESOURCE_DOES_NOT_EXIST"),
    Case("unknown-run-purge", "DELETE", f"{API}/runs/{UNKNOWN_RUN}",
         params={"permanent": "true"}, status=404, code="RESOURCE_DOES_NOT_EXIST"),
    Case("unknown-run-restore", "POST", f"{API}/runs/{UNKNOWN_RUN}/restore", status=404,
         code="RESOURCE_DOES_NOT_EXIST"),
    Case("unknown-run-history", "GET", f"{API}/runs/{UNKNOWN_RUN}/metrics/m/history",
         status=404, code="RESOURCE_DOES_NOT_EXIST"),
    Case("unknown-run-tag", "PUT", f"{API}/runs/{UNKNOWN_RUN}/tags/t", json={"value": "v"},
         status=404, code="RESOURCE_DOES_NOT_EXIST"),
    Case("unknown-run-inputs", "POST", f"{API}/runs/{UNKNOWN_RUN}/inputs",
         json={"datasets": [{"dataset": {"name": "d", "digest": "1"}}]}, status=404,
         code="RESOURCE_DOES_NOT_EXIST"),
    Case("unknown-run-upload", "PUT", f"{API}/runs/{UNKNOWN_RUN}/artifacts/x.txt",
         content=b"x", status=404, code="RESOURCE_DOES_NOT_EXIST"),
    Case("malformed-run-id", "GET", f"{API}/runs/not%20a%20run", says="run id"),
    Case("unknown-experiment", "GET", f"{API}/experiments/987654321", status=404,
         code="RESOURCE_DOES_NOT_EXIST", says="987654321"),
    Case("unknown-experiment-delete", "DELETE", f"{API}/experiments/987654321", status=404,
         code="RESOURCE_DOES_NOT_EXIST"),
    Case("unknown-experiment-purge", "DELETE", f"{API}/experiments/987654321",
         params={"permanent": "true"}, status=404, code="RESOURCE_DOES_NOT_EXIST"),
    Case("unknown-experiment-rename", "PATCH", f"{API}/experiments/987654321",
         json={"name": "x"}, status=404, code="RESOURCE_DOES_NOT_EXIST"),
    Case("unknown-experiment-tag", "PUT", f"{API}/experiments/987654321/tags/k",
         json={"value": "v"}, status=404, code="RESOURCE_DOES_NOT_EXIST"),
    Case("experiment-id-not-integer", "GET", f"{API}/experiments/abc", says="whole number"),
    Case("experiment-id-negative", "DELETE", f"{API}/experiments/-1", says="whole number"),
    Case("experiment-by-name-missing", "GET", f"{API}/experiments/by-name/no-such-experiment",
         status=404, code="RESOURCE_DOES_NOT_EXIST", says="no-such-experiment"),
    Case("create-run-unknown-experiment", "POST", f"{API}/runs",
         json={"experiment_id": "987654321"}, status=404, code="RESOURCE_DOES_NOT_EXIST"),
    Case("create-run-unknown-parent", "POST", f"{API}/runs",
         json={"experiment_id": "{exp}", "parent_run_id": UNKNOWN_RUN}, status=404,
         code="RESOURCE_DOES_NOT_EXIST"),
    Case("delete-missing-run-tag", "DELETE", RUN + "/tags/never-set", status=404,
         code="RESOURCE_DOES_NOT_EXIST", says="never-set"),
    Case("delete-missing-experiment-tag", "DELETE", EXP + "/tags/never-set", status=404,
         code="RESOURCE_DOES_NOT_EXIST"),
    Case("artifact-missing", "GET", ARTIFACTS + "/absent.txt", status=404,
         code="RESOURCE_DOES_NOT_EXIST", says="absent.txt"),
    Case("artifact-info-missing", "GET", RUN + "/artifact-info/absent.txt", status=404,
         code="RESOURCE_DOES_NOT_EXIST", says="absent.txt"),
    # ---------------------------------------------------------------- conflicts and state
    Case("changed-param", "POST", BATCH, json={"params": {"fixed": "2"}}, status=409,
         code="RESOURCE_CONFLICT", says="fixed"),
    Case("duplicate-experiment-name", "POST", f"{API}/experiments", json={"name": "{exp_name}"},
         status=409, code="RESOURCE_ALREADY_EXISTS", says="{exp_name}"),
    Case("rename-to-taken-name", "PATCH", API + "/experiments/{other_exp}",
         json={"name": "{exp_name}"}, status=409, code="RESOURCE_ALREADY_EXISTS"),
    Case("log-to-deleted-run", "POST", API + "/runs/{deleted_run}/batch",
         json={"metrics": [_metric()]}, status=409, code="INVALID_STATE", says="deleted"),
    Case("tag-on-deleted-run", "PUT", API + "/runs/{deleted_run}/tags/t", json={"value": "v"},
         status=409, code="INVALID_STATE", says="deleted"),
    Case("update-deleted-run", "PATCH", API + "/runs/{deleted_run}",
         json={"status": "FINISHED"}, status=409, code="INVALID_STATE", says="deleted"),
    Case("delete-default-experiment", "DELETE", f"{API}/experiments/0", says="default"),
    Case("duplicate-run-name", "POST", f"{API}/runs",
         json={"experiment_id": "{exp}", "run_name": "a", "tags": {"mlflow.runName": "b"}},
         says="mlflow.runName"),
    # ---------------------------------------------------------------- limits
    Case("metric-key-too-long", "POST", BATCH, json={"metrics": [_metric(key=LONG)]},
         says="250"),
    Case("param-key-too-long", "POST", BATCH, json={"params": {LONG: "v"}}, says="250"),
    Case("param-value-too-long", "POST", BATCH, json={"params": {"big": "v" * 6001}},
         says="6000"),
    Case("tag-value-too-long", "PUT", RUN + "/tags/big", json={"value": "v" * 8001},
         says="8000"),
    Case("experiment-tag-too-long", "PUT", EXP + "/tags/big", json={"value": "v" * 20001},
         says="20000"),
    Case("experiment-name-too-long", "POST", f"{API}/experiments", json={"name": "n" * 501},
         says="500"),
    Case("experiment-name-blank", "POST", f"{API}/experiments", json={"name": "   "},
         says="name"),
    Case("key-with-bad-characters", "PUT", RUN + "/tags/a%0Ab", json={"value": "v"},
         says="characters"),
    Case("key-with-dotdot", "POST", BATCH, json={"metrics": [_metric(key="../m")]}, says=".."),
    Case("batch-too-many-metrics", "POST", BATCH, json={"metrics": _metrics(1001)},
         status=413, code="PAYLOAD_TOO_LARGE", says="1000"),
    Case("batch-too-many-params", "POST", BATCH,
         json={"params": {f"p{i}": "1" for i in range(101)}}, status=413, code="PAYLOAD_TOO_LARGE", says="100"),
    Case("batch-too-many-tags", "POST", BATCH,
         json={"tags": {f"t{i}": "1" for i in range(101)}}, status=413, code="PAYLOAD_TOO_LARGE", says="100"),
    Case("batch-too-many-values", "POST", BATCH,
         json={"metrics": _metrics(950), "params": {f"q{i}": "1" for i in range(60)}},
         status=413, code="PAYLOAD_TOO_LARGE", says="1000"),
    Case("search-runs-max-results", "POST", SEARCH_RUNS, json=_search(max_results=50001),
         says="50000"),
    Case("search-runs-max-results-zero", "POST", SEARCH_RUNS, json=_search(max_results=0),
         says="max_results"),
    Case("search-experiments-max-results", "POST", f"{API}/experiments/search",
         json={"max_results": 50001}, says="50000"),
    Case("list-experiments-max-results", "GET", f"{API}/experiments",
         params={"max_results": "50001"}, says="50000"),
    Case("history-max-results", "GET", RUN + "/metrics/m/history",
         params={"max_results": "25001"}, says="25000"),
    Case("timestamp-out-of-range", "POST", BATCH,
         json={"metrics": [_metric(timestamp=2**63)]}, says="timestamp"),
    Case("negative-timestamp", "POST", BATCH, json={"metrics": [_metric(timestamp=-1)]},
         says="timestamp"),
    Case("negative-end-time", "PATCH", RUN, json={"end_time": -1}, says="end_time"),
    Case("dataset-digest-too-long", "POST", RUN + "/inputs",
         json={"datasets": [{"dataset": {"name": "d", "digest": "d" * 37}}]}, says="36"),
    # ---------------------------------------------------------------- malformed bodies
    Case("malformed-json", "POST", f"{API}/experiments", content=b'{"name": ',
         says="not valid JSON"),
    Case("json-list", "POST", f"{API}/experiments", content=b'[{"name": "x"}]',
         says="JSON object"),
    Case("json-string", "POST", BATCH, content=b'"hello"', says="JSON object"),
    Case("json-number", "POST", f"{API}/runs", content=b"5", says="JSON object"),
    Case("json-null", "PATCH", RUN, content=b"null", says="JSON object"),
    Case("json-true", "POST", SEARCH_RUNS, content=b"true", says="JSON object"),
    Case("not-utf8", "POST", f"{API}/experiments", content=b'{"name": "\xff"}',
         says="not valid JSON"),
    Case("nan-literal", "POST", BATCH,
         content=b'{"metrics": [{"key": "m", "value": NaN, "timestamp": 1}]}', says='"NaN"'),
    Case("infinity-literal", "POST", BATCH,
         content=b'{"metrics": [{"key": "m", "value": -Infinity, "timestamp": 1}]}',
         says="Infinity"),
    Case("huge-number", "POST", BATCH,
         content=b'{"metrics": [{"key": "m", "value": 1, "timestamp": 1e400}]}',
         says="too large"),
    Case("nan-timestamp", "POST", BATCH, json={"metrics": [_metric(timestamp="NaN")]},
         says="'timestamp'"),
    Case("infinite-step", "POST", BATCH, json={"metrics": [_metric(step="Infinity")]},
         says="'step'"),
    Case("infinite-start-time", "POST", f"{API}/runs",
         json={"experiment_id": "{exp}", "start_time": "Infinity"}, says="'start_time'"),
    Case("nan-max-results", "POST", SEARCH_RUNS, json=_search(max_results="NaN"),
         says="'max_results'"),
    # ---------------------------------------------------------------- wrong types
    Case("name-is-number", "POST", f"{API}/experiments", json={"name": 5},
         says="Invalid value 5 for parameter 'name'"),
    Case("experiment-tags-not-object", "POST", f"{API}/experiments",
         json={"name": "t", "tags": ["a"]}, says="'tags'"),
    Case("metric-value-is-word", "POST", BATCH, json={"metrics": [_metric(value="abc")]},
         says="'value'"),
    Case("metric-value-is-bool", "POST", BATCH, json={"metrics": [_metric(value=True)]},
         says="'value'"),
    Case("metric-value-is-null", "POST", BATCH, json={"metrics": [_metric(value=None)]},
         says="'value'"),
    Case("timestamp-is-word", "POST", BATCH, json={"metrics": [_metric(timestamp="soon")]},
         says="'timestamp'"),
    Case("step-is-fraction", "POST", BATCH, json={"metrics": [_metric(step=1.5)]},
         says="'step'"),
    Case("metrics-not-a-list", "POST", BATCH, json={"metrics": {"m": 1}}, says="'metrics'"),
    Case("metric-not-an-object", "POST", BATCH, json={"metrics": [1.0]}, says="'metrics'"),
    Case("params-not-an-object", "POST", BATCH, json={"params": [["a", "1"]]},
         says="'params'"),
    Case("param-value-is-number", "POST", BATCH, json={"params": {"n": 5}}, says="'params'"),
    Case("tags-not-an-object", "POST", f"{API}/runs",
         json={"experiment_id": "{exp}", "tags": ["a"]}, says="'tags'"),
    Case("experiment-id-is-number", "POST", f"{API}/runs", json={"experiment_id": 1.5},
         says="'experiment_id'"),
    Case("tag-value-is-number", "PUT", RUN + "/tags/t", json={"value": 5}, says="'value'"),
    Case("run-status-unknown", "PATCH", RUN, json={"status": "DONE"}, says="FINISHED"),
    Case("run-name-is-list", "PATCH", RUN, json={"run_name": ["a"]}, says="'run_name'"),
    Case("view-type-unknown", "POST", SEARCH_RUNS, json=_search(view_type="SOME"),
         says="ACTIVE_ONLY"),
    Case("experiment-ids-not-strings", "POST", SEARCH_RUNS, json={"experiment_ids": [True]},
         says="'experiment_ids'"),
    Case("experiment-ids-not-numbers", "POST", SEARCH_RUNS, json={"experiment_ids": ["x"]},
         says="whole number"),
    Case("order-by-not-strings", "POST", SEARCH_RUNS, json=_search(order_by=[1]),
         says="'order_by'"),
    Case("filter-is-number", "POST", SEARCH_RUNS, json=_search(filter=5), says="'filter'"),
    Case("max-results-is-word", "GET", f"{API}/experiments", params={"max_results": "many"},
         says="'max_results'"),
    Case("permanent-is-word", "DELETE", RUN, params={"permanent": "maybe"}, says="'permanent'"),
    Case("datasets-not-a-list", "POST", RUN + "/inputs", json={"datasets": {"name": "d"}},
         says="'datasets'"),
    Case("dataset-without-digest", "POST", RUN + "/inputs",
         json={"datasets": [{"dataset": {"name": "d"}}]}, says="digest"),
    Case("dataset-missing", "POST", RUN + "/inputs", json={"datasets": [{"tags": {}}]},
         says="'dataset'"),
    Case("older-than-is-word", "GET", f"{API}/admin/deleted-runs",
         params={"older_than": "yesterday"}, says="'older_than'"),
    Case("index-size-is-word", "PUT", INDEX + "/f.txt", json={"digest": "d", "size": "big"},
         says="'size'"),
    Case("index-negative-size", "PUT", INDEX + "/f.txt", json={"digest": "d", "size": -1},
         says="size"),
    Case("unreferenced-not-strings", "POST", f"{API}/admin/artifact-index/unreferenced",
         json={"digests": [1]}, says="'digests'"),
    # ---------------------------------------------------------------- missing fields
    Case("create-experiment-no-name", "POST", f"{API}/experiments", json={},
         says="Missing value for required parameter 'name'"),
    Case("create-experiment-empty-body", "POST", f"{API}/experiments", content=b"",
         says="Missing value for required parameter 'name'"),
    Case("create-run-no-experiment", "POST", f"{API}/runs", json={},
         says="Missing value for required parameter 'experiment_id'"),
    Case("metric-no-key", "POST", BATCH, json={"metrics": [{"value": 1, "timestamp": 1}]},
         says="Missing value for required parameter 'key'"),
    Case("metric-no-value", "POST", BATCH, json={"metrics": [{"key": "m", "timestamp": 1}]},
         says="Missing value for required parameter 'value'"),
    Case("tag-no-value", "PUT", RUN + "/tags/t", json={}, says="'value'"),
    Case("rename-no-name", "PATCH", EXP, json={}, says="'name'"),
    Case("index-no-digest", "PUT", INDEX + "/f.txt", json={"size": 1}, says="'digest'"),
    # ---------------------------------------------------------------- filters and page tokens
    Case("filter-dangling-operator", "POST", SEARCH_RUNS, json=_search(filter="metrics.acc >"),
         code="INVALID_FILTER", says="position"),
    Case("filter-or", "POST", SEARCH_RUNS,
         json=_search(filter="params.a = '1' OR params.b = '2'"), code="INVALID_FILTER",
         says="OR", token="OR"),
    Case("filter-unknown-prefix", "POST", SEARCH_RUNS, json=_search(filter="foo.bar = '1'"),
         code="INVALID_FILTER", says="foo", token="foo"),
    Case("filter-metric-string", "POST", SEARCH_RUNS,
         json=_search(filter="metrics.acc = 'high'"), code="INVALID_FILTER", says="'high'",
         token="'high'"),
    Case("filter-param-number", "POST", SEARCH_RUNS, json=_search(filter="params.x > 1"),
         code="INVALID_FILTER", says="params.x"),
    Case("filter-unclosed-string", "POST", SEARCH_RUNS,
         json=_search(filter="params.model = 'forest"), code="INVALID_FILTER", says="position"),
    Case("order-by-garbage", "POST", SEARCH_RUNS,
         json=_search(order_by=["metrics.acc SIDEWAYS"]), code="INVALID_FILTER",
         says="SIDEWAYS", token="SIDEWAYS"),
    Case("order-by-datasets", "POST", SEARCH_RUNS, json=_search(order_by=["datasets.name"]),
         code="INVALID_FILTER", says="datasets"),
    Case("experiment-filter-bad", "POST", f"{API}/experiments/search",
         json={"filter": "name LIKE"}, code="INVALID_FILTER", says="position"),
    Case("experiment-filter-bad-query", "GET", f"{API}/experiments",
         params={"filter": "metrics.acc > 1"}, code="INVALID_FILTER", says="metrics"),
    Case("bad-page-token-runs", "POST", SEARCH_RUNS, json=_search(page_token="not-a-token"),
         says="page_token"),
    Case("bad-page-token-experiments", "POST", f"{API}/experiments/search",
         json={"page_token": "bm90IGEgdG9rZW4="}, says="page_token"),
    Case("bad-page-token-history", "GET", RUN + "/metrics/m/history",
         params={"max_results": "1", "page_token": "garbage!"}, says="page_token"),
    Case("page-token-is-number", "POST", SEARCH_RUNS, json=_search(page_token=5),
         says="'page_token'"),
    # ---------------------------------------------------------------- artifact paths
    Case("artifact-dotdot-encoded", "PUT", ARTIFACTS + "/%2e%2e/%2e%2e/escape.txt",
         content=b"x", code="INVALID_ARTIFACT_PATH", says=".."),
    Case("artifact-dotdot-inside", "PUT", ARTIFACTS + "/a/%2E%2E/b", content=b"x",
         code="INVALID_ARTIFACT_PATH", says=".."),
    Case("artifact-absolute", "PUT", ARTIFACTS + "//etc/passwd", content=b"x",
         code="INVALID_ARTIFACT_PATH", says="absolute"),
    Case("artifact-backslash", "PUT", ARTIFACTS + "/a%5C..%5Cb", content=b"x",
         code="INVALID_ARTIFACT_PATH", says="backslash"),
    Case("artifact-nul", "PUT", ARTIFACTS + "/a%00b", content=b"x",
         code="INVALID_ARTIFACT_PATH", says="NUL"),
    Case("artifact-empty-path", "PUT", ARTIFACTS + "/", content=b"x",
         code="INVALID_ARTIFACT_PATH"),
    Case("artifact-download-dotdot", "GET", ARTIFACTS + "/%2e%2e/x",
         code="INVALID_ARTIFACT_PATH", says=".."),
    Case("artifact-download-nul", "GET", ARTIFACTS + "/x%00", code="INVALID_ARTIFACT_PATH",
         says="NUL"),
    Case("artifact-info-dotdot", "GET", RUN + "/artifact-info/%2e%2e/x",
         code="INVALID_ARTIFACT_PATH"),
    Case("artifact-list-dotdot", "GET", ARTIFACTS, params={"path": "../.."},
         code="INVALID_ARTIFACT_PATH", says=".."),
    Case("artifact-list-absolute", "GET", ARTIFACTS, params={"path": "/etc"},
         code="INVALID_ARTIFACT_PATH", says="absolute"),
    Case("artifact-list-backslash", "GET", ARTIFACTS, params={"path": "a\\b"},
         code="INVALID_ARTIFACT_PATH", says="backslash"),
    Case("artifact-delete-dotdot", "DELETE", ARTIFACTS + "/%2e%2e",
         code="INVALID_ARTIFACT_PATH"),
    Case("artifact-delete-absolute", "DELETE", ARTIFACTS + "/%2Fetc",
         code="INVALID_ARTIFACT_PATH", says="absolute"),
    Case("index-dotdot", "PUT", INDEX + "/%2e%2e/x", json={"digest": "d", "size": 1},
         code="INVALID_ARTIFACT_PATH"),
    Case("index-list-dotdot", "GET", INDEX, params={"path": "../x"},
         code="INVALID_ARTIFACT_PATH"),
    Case("artifact-wrong-run-id", "PUT", f"{API}/runs/..%5Cx/artifacts/f", content=b"x",
         says="run id"),
    # ---------------------------------------------------------------- registry: not there
    Case("unknown-model-get", "GET", UNKNOWN_MODEL, status=404, code="RESOURCE_DOES_NOT_EXIST",
         says="no-such-model"),
    Case("unknown-model-describe", "PATCH", UNKNOWN_MODEL, json={"description": "x"},
         status=404, code="RESOURCE_DOES_NOT_EXIST", says="no-such-model"),
    Case("unknown-model-rename", "POST", UNKNOWN_MODEL + "/rename", json={"new_name": "x"},
         status=404, code="RESOURCE_DOES_NOT_EXIST", says="no-such-model"),
    Case("unknown-model-delete", "DELETE", UNKNOWN_MODEL, status=404,
         code="RESOURCE_DOES_NOT_EXIST", says="shipyard models list"),
    Case("unknown-model-tag", "PUT", UNKNOWN_MODEL + "/tags/k", json={"value": "v"},
         status=404, code="RESOURCE_DOES_NOT_EXIST"),
    Case("unknown-model-history", "GET", UNKNOWN_MODEL + "/history", status=404,
         code="RESOURCE_DOES_NOT_EXIST"),
    Case("unknown-model-latest", "GET", UNKNOWN_MODEL + "/latest-versions", status=404,
         code="RESOURCE_DOES_NOT_EXIST"),
    Case("unknown-model-alias", "GET", UNKNOWN_MODEL + "/aliases/champion", status=404,
         code="RESOURCE_DOES_NOT_EXIST", says="no-such-model"),
    Case("unknown-model-alias-at", "GET", UNKNOWN_MODEL + "/aliases/champion/at",
         params={"timestamp": "1"}, status=404, code="RESOURCE_DOES_NOT_EXIST"),
    Case("unknown-model-policy", "PUT", UNKNOWN_MODEL + "/approval-policy",
         json={"required_approvals": 1}, status=404, code="RESOURCE_DOES_NOT_EXIST"),
    Case("unknown-model-version", "GET", UNKNOWN_MODEL + "/versions/1", status=404,
         code="RESOURCE_DOES_NOT_EXIST"),
    Case("unknown-version-number", "GET", MODEL + "/versions/99", status=404,
         code="RESOURCE_DOES_NOT_EXIST", says="no version 99"),
    Case("unknown-version-stage", "PUT", MODEL + "/versions/99/stage", json={"stage": "Staging"},
         status=404, code="RESOURCE_DOES_NOT_EXIST", says="no version 99"),
    Case("unknown-version-approve", "POST", MODEL + "/versions/99/approvals",
         json={"approver": "ana"}, status=404, code="RESOURCE_DOES_NOT_EXIST"),
    Case("unknown-version-delete", "DELETE", MODEL + "/versions/99", status=404,
         code="RESOURCE_DOES_NOT_EXIST"),
    Case("alias-to-unknown-version", "PUT", MODEL + "/aliases/challenger", json={"version": 99},
         status=404, code="RESOURCE_DOES_NOT_EXIST", says="no version 99"),
    Case("unknown-alias", "GET", MODEL + "/aliases/nope", status=404,
         code="RESOURCE_DOES_NOT_EXIST", says="its aliases are champion"),
    Case("unknown-alias-delete", "DELETE", MODEL + "/aliases/nope", status=404,
         code="RESOURCE_DOES_NOT_EXIST", says="'nope'"),
    Case("delete-missing-model-tag", "DELETE", MODEL + "/tags/never-set", status=404,
         code="RESOURCE_DOES_NOT_EXIST", says="never-set"),
    Case("delete-missing-version-tag", "DELETE", VERSION + "/tags/never-set", status=404,
         code="RESOURCE_DOES_NOT_EXIST", says="never-set"),
    Case("register-nothing", "POST", REGISTER, json={"source": "runs:/{model_run}/missing"},
         status=404, code="RESOURCE_DOES_NOT_EXIST", says="nothing to register"),
    Case("version-files-unknown-owner", "GET", UNKNOWN_OWNER, status=404,
         code="RESOURCE_DOES_NOT_EXIST", says="storage_owner"),
    Case("version-file-missing", "GET", OWNER_FILES + "/model/absent.bin", status=404,
         code="RESOURCE_DOES_NOT_EXIST", says="absent.bin"),
    Case("version-file-info-missing", "GET", API + "/model-versions/{owner}/artifact-info/x",
         status=404, code="RESOURCE_DOES_NOT_EXIST"),
    # ---------------------------------------------------------------- registry: state
    Case("duplicate-model", "POST", MODELS, json={"name": "{model}"}, status=409,
         code="RESOURCE_ALREADY_EXISTS", says="{model}"),
    Case("rename-model-to-taken-name", "POST", MODEL + "/rename", json={"new_name": "{gated}"},
         status=409, code="RESOURCE_ALREADY_EXISTS", says="{gated}"),
    Case("delete-aliased-version", "DELETE", VERSION, status=409, code="INVALID_STATE",
         says="alias 'champion' points at it"),
    Case("delete-model-with-aliases", "DELETE", MODEL, status=409, code="INVALID_STATE",
         says="'champion' -> version 1"),
    Case("alias-without-approvals", "PUT", MODEL.replace("{model}", "{gated}") +
         "/aliases/champion", json={"version": 1}, status=409, code="APPROVAL_REQUIRED",
         says="shipyard models approve"),
    Case("archive-into-archived", "PUT", VERSION + "/stage",
         json={"stage": "Archived", "archive_existing_versions": True},
         says="archive_existing_versions"),
    Case("write-version-files-through-runs", "DELETE", API + "/runs/{owner}/artifacts",
         says="read-only"),
    Case("read-version-files-through-runs", "GET", API + "/runs/{owner}/artifacts",
         says="/api/v1/model-versions/"),
    Case("upload-to-version-files", "PUT", OWNER_FILES + "/model/x.bin", content=b"x",
         status=405, code="METHOD_NOT_ALLOWED", says="GET"),
    # ---------------------------------------------------------------- registry: bad values
    Case("model-name-with-at", "POST", MODELS, json={"name": "a@b"}, says="'@'"),
    Case("model-name-blank", "POST", MODELS, json={"name": "   "}, says="blank"),
    Case("model-name-too-long", "POST", MODELS, json={"name": "m" * 257}, says="256"),
    Case("model-name-missing", "POST", MODELS, json={},
         says="Missing value for required parameter 'name'"),
    Case("model-tags-not-object", "POST", MODELS, json={"name": "t", "tags": ["a"]},
         says="'tags'"),
    Case("model-tag-bad-key", "PUT", MODEL + "/tags/a%0Ab", json={"value": "v"},
         says="characters"),
    Case("model-tag-value-too-long", "PUT", MODEL + "/tags/big", json={"value": "v" * 100_001},
         says="100000"),
    Case("rename-no-new-name", "POST", MODEL + "/rename", json={}, says="'new_name'"),
    Case("describe-without-description", "PATCH", MODEL, json={}, says="'description'"),
    Case("describe-version-not-string", "PATCH", VERSION, json={"description": 5},
         says="'description'"),
    Case("version-not-a-number", "GET", MODEL + "/versions/abc", says="whole numbers"),
    Case("version-zero", "GET", MODEL + "/versions/0", says="whole numbers"),
    Case("version-negative", "DELETE", MODEL + "/versions/-1", says="whole numbers"),
    Case("version-too-large", "GET", MODEL + "/versions/99999999999", says="whole numbers"),
    Case("alias-reserved", "PUT", MODEL + "/aliases/latest", json={"version": 1},
         says="reserved"),
    Case("alias-reserved-v-number", "PUT", MODEL + "/aliases/V3", json={"version": 1},
         says="reserved"),
    Case("alias-with-space", "PUT", MODEL + "/aliases/has%20space", json={"version": 1},
         says="letters, digits"),
    Case("alias-version-missing", "PUT", MODEL + "/aliases/challenger", json={},
         says="'version'"),
    Case("alias-version-fraction", "PUT", MODEL + "/aliases/challenger", json={"version": 1.5},
         says="'version'"),
    Case("alias-version-is-bool", "PUT", MODEL + "/aliases/challenger", json={"version": True},
         says="'version'"),
    Case("alias-reason-not-string", "PUT", MODEL + "/aliases/champion",
         json={"version": 1, "reason": ["why"]}, says="'reason'"),
    Case("alias-at-no-timestamp", "GET", MODEL + "/aliases/champion/at", says="'timestamp'"),
    Case("alias-at-word", "GET", MODEL + "/aliases/champion/at", params={"timestamp": "soon"},
         says="'timestamp'"),
    Case("stage-unknown", "PUT", VERSION + "/stage", json={"stage": "Live"}, says="Staging"),
    Case("stage-missing", "PUT", VERSION + "/stage", json={}, says="'stage'"),
    Case("status-unknown", "PUT", VERSION + "/status", json={"status": "DONE"}, says="READY"),
    Case("policy-negative", "PUT", MODEL + "/approval-policy", json={"required_approvals": -1},
         says="required_approvals"),
    Case("policy-too-many", "PUT", MODEL + "/approval-policy", json={"required_approvals": 101},
         says="100"),
    Case("policy-bad-alias", "PUT", MODEL + "/approval-policy",
         json={"required_approvals": 1, "alias": "a b"}, says="letters, digits"),
    Case("approver-missing", "POST", VERSION + "/approvals", json={}, says="'approver'"),
    Case("approver-blank", "POST", VERSION + "/approvals", json={"approver": "  "},
         says="blank"),
    Case("register-no-source", "POST", REGISTER, json={}, says="'source'"),
    Case("register-unsupported-source", "POST", REGISTER, json={"source": "s3://b/model"},
         says="runs:/"),
    Case("register-from-a-version", "POST", REGISTER,
         json={"source": "x", "artifact_owner": "{owner}", "artifact_path": "model"},
         says="another model version"),
    Case("register-dotdot", "POST", REGISTER,
         json={"source": "runs:/{model_run}/model", "artifact_path": "../model"},
         code="INVALID_ARTIFACT_PATH", says=".."),
    Case("register-tags-not-object", "POST", REGISTER,
         json={"source": "runs:/{model_run}/model", "tags": "k=v"}, says="'tags'"),
    Case("search-models-max-results", "POST", MODELS + "/search", json={"max_results": 1001},
         says="1000"),
    Case("search-models-bad-filter", "POST", MODELS + "/search", json={"filter": "nam = 'x'"},
         code="INVALID_FILTER", says="did you mean 'name'"),
    Case("list-models-bad-filter", "GET", MODELS, params={"filter": "name LIKE"},
         code="INVALID_FILTER", says="position"),
    Case("search-versions-bad-filter", "POST", API + "/model-versions/search",
         json={"filter": "metrics.acc > 1"}, code="INVALID_FILTER", says="metrics"),
    Case("search-versions-bad-order", "POST", API + "/model-versions/search",
         json={"order_by": ["tags.x"]}, code="INVALID_FILTER", says="tags"),
    Case("search-versions-max-results", "POST", API + "/model-versions/search",
         json={"max_results": 200001}, says="200000"),
    Case("history-bad-page-token", "GET", MODEL + "/history", params={"page_token": "garbage"},
         says="page_token"),
    Case("history-max-results-zero", "GET", MODEL + "/history", params={"max_results": "0"},
         says="max_results"),
    Case("trained-on-no-dataset", "GET", API + "/model-versions/trained-on",
         says="'dataset_name'"),
    Case("version-files-bad-owner", "GET", API + "/model-versions/not-an-owner/artifacts",
         says="storage owner"),
    Case("version-files-dotdot", "GET", OWNER_FILES + "/%2e%2e/x", code="INVALID_ARTIFACT_PATH",
         says=".."),
    Case("version-files-list-absolute", "GET", OWNER_FILES, params={"path": "/etc"},
         code="INVALID_ARTIFACT_PATH", says="absolute"),
    Case("model-malformed-json", "POST", MODELS, content=b'{"name": ', says="not valid JSON"),
    Case("alias-json-list", "PUT", MODEL + "/aliases/champion", content=b"[1]",
         says="JSON object"),
    Case("wrong-method-models", "PUT", MODELS, json={}, status=405, code="METHOD_NOT_ALLOWED",
         says="POST"),
    Case("wrong-method-version-search", "GET", API + "/model-versions/search", status=405,
         code="METHOD_NOT_ALLOWED", says="POST"),
    # ---------------------------------------------------------------- routes and methods
    Case("unknown-endpoint", "GET", f"{API}/no-such-thing", status=404,
         code="ENDPOINT_NOT_FOUND", says="openapi.json"),
    Case("unknown-version", "POST", "/api/v9/experiments", json={}, status=404,
         code="ENDPOINT_NOT_FOUND", says="/api/v9/experiments"),
    Case("unknown-sub-resource", "POST", RUN + "/teleport", json={}, status=404,
         code="ENDPOINT_NOT_FOUND"),
    Case("wrong-method-experiments", "PUT", f"{API}/experiments", json={}, status=405,
         code="METHOD_NOT_ALLOWED", says="POST"),
    Case("wrong-method-run", "PUT", RUN, json={}, status=405, code="METHOD_NOT_ALLOWED",
         says="PATCH"),
    Case("wrong-method-history", "POST", RUN + "/metrics/m/history", json={}, status=405,
         code="METHOD_NOT_ALLOWED", says="GET"),
    Case("wrong-method-batch", "GET", BATCH, status=405, code="METHOD_NOT_ALLOWED",
         says="POST"),
    Case("wrong-method-openapi", "DELETE", "/api/openapi.json", status=405,
         code="METHOD_NOT_ALLOWED", says="GET"),
]  # fmt: skip


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass(frozen=True)
class Server:
    url: str
    errors: _Recorder


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real server on a loopback socket over a fresh workspace, recording server errors."""
    home = tmp_path_factory.mktemp("bad-input") / ".shipyard"
    recorder = _Recorder()
    logger = logging.getLogger("shipyard.server")
    logger.addHandler(recorder)
    try:
        with (
            Workspace.open(Settings.from_env({}, home=home)) as ws,
            serve_in_thread(create_app(ws)) as url,
        ):
            yield Server(url, recorder)
    finally:
        logger.removeHandler(recorder)


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def seed(http: httpx.Client) -> Seed:
    def call(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        resp = http.request(method, f"{API}{path}", json=body)
        assert resp.status_code in (200, 201), resp.text
        return dict(resp.json())

    name = "bad-input-sweep"
    exp = call("POST", "/experiments", {"name": name})["experiment_id"]
    other = call("POST", "/experiments", {"name": "bad-input-other"})["experiment_id"]
    run = call("POST", "/runs", {"experiment_id": exp, "start_time": 1})["run"]["info"]["run_id"]
    call("POST", f"/runs/{run}/batch", {"params": {"fixed": "1"}, "metrics": [_metric()]})
    gone = call("POST", "/runs", {"experiment_id": exp})["run"]["info"]["run_id"]
    call("DELETE", f"/runs/{gone}")
    model_run = call("POST", "/runs", {"experiment_id": exp})["run"]["info"]["run_id"]
    for path, data in (("model/MLmodel", b"flavor: x"), ("model/model.bin", b"weights")):
        resp = http.put(f"{API}/runs/{model_run}/artifacts/{path}", content=data)
        assert resp.status_code == 201, resp.text
    model, gated = "sweep-model", "sweep-gated"
    source = {"source": f"runs:/{model_run}/model"}
    owner = call("POST", f"/registered-models/{model}/versions", source)["model_version"]
    call("PUT", f"/registered-models/{model}/aliases/champion", {"version": 1})
    call("POST", f"/registered-models/{gated}/versions", source)
    call("PUT", f"/registered-models/{gated}/approval-policy",
         {"required_approvals": 1, "alias": "champion"})  # fmt: skip
    return Seed(
        exp=exp, exp_name=name, other_exp=other, run=run, deleted_run=gone, model_run=model_run,
        model=model, gated=gated, owner=owner["storage_owner"],
    )  # fmt: skip


def _send(http: httpx.Client, case: Case, seed: Seed) -> httpx.Response:
    kwargs: dict[str, Any] = {"params": _fill(case.params, seed)}
    if case.json is not _UNSET:
        kwargs["json"] = _fill(case.json, seed)
    if case.content is not None:
        kwargs["content"] = case.content
        kwargs["headers"] = {"Content-Type": "application/json"}
    # The path goes out byte for byte: httpx would resolve literal dot segments, and the cases
    # percent-encode what must reach the server encoded.
    url = httpx.URL(http.base_url.join("/"), raw_path=_fill(case.path, seed).encode())
    return http.request(case.method, url, **kwargs)


def test_the_sweep_covers_every_kind_of_bad_input() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    codes = {c.code for c in CASES}
    assert codes >= {
        "RESOURCE_DOES_NOT_EXIST", "RESOURCE_CONFLICT", "RESOURCE_ALREADY_EXISTS",
        "INVALID_STATE", "INVALID_PARAMETER_VALUE", "INVALID_FILTER", "INVALID_ARTIFACT_PATH",
        "ENDPOINT_NOT_FOUND", "METHOD_NOT_ALLOWED", "APPROVAL_REQUIRED",
    }  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_a_clear_4xx(case: Case, seed: Seed, http: httpx.Client) -> None:
    resp = _send(http, case, seed)
    if SHOW:
        print(f"{case.id}: {resp.status_code} {resp.text[:300]}")
    assert resp.status_code == case.status, resp.text
    assert resp.headers["content-type"].startswith("application/json"), resp.text
    body = resp.json()
    assert isinstance(body, dict), body
    assert set(body) <= ERROR_KEYS, body
    assert body["error_code"] == case.code, body
    message = body["message"]
    assert isinstance(message, str), body
    assert len(message) > 20, body
    assert _fill(case.says, seed).lower() in message.lower(), body
    if "details" in body:
        assert isinstance(body["details"], dict), body
    if case.token is not None:
        assert body["details"]["token"] == case.token, body
    if case.status == 405:
        allow = body["details"]["allow"]
        assert resp.headers["allow"] == ", ".join(allow)
        assert case.method not in allow


def test_a_refused_batch_writes_nothing(seed: Seed, http: httpx.Client) -> None:
    batch = {"metrics": [_metric(key="written-before")], "params": {"fixed": "changed"}}
    assert http.post(f"{API}/runs/{seed.run}/batch", json=batch).status_code == 409
    data = http.get(f"{API}/runs/{seed.run}").json()["run"]["data"]
    assert "written-before" not in data["metrics"]
    assert data["params"]["fixed"] == "1"


def test_no_traversal_wrote_a_file(seed: Seed, http: httpx.Client, server: Server) -> None:
    listing = http.get(f"{API}/runs/{seed.run}/artifacts").json()["artifacts"]
    assert listing == []


def test_refused_registry_changes_change_nothing(seed: Seed, http: httpx.Client) -> None:
    model = http.get(f"{API}/registered-models/{seed.model}").json()["registered_model"]
    assert [(a["alias"], a["version"]) for a in model["aliases"]] == [("champion", 1)]
    assert model["description"] is None
    gated = http.get(f"{API}/registered-models/{seed.gated}").json()["registered_model"]
    assert gated["aliases"] == []
    assert gated["approval_policy"] == {"champion": 1}
    files = http.get(f"{API}/model-versions/{seed.owner}/artifacts", params={"path": "model"})
    assert [a["path"] for a in files.json()["artifacts"]] == ["model/MLmodel", "model/model.bin"]
    events = http.get(f"{API}/registered-models/{seed.model}/history").json()["events"]
    assert [e["action"] for e in events] == ["model_created", "version_created", "alias_set"]


def test_same_param_value_twice_is_accepted(seed: Seed, http: httpx.Client) -> None:
    resp = http.post(f"{API}/runs/{seed.run}/batch", json={"params": {"fixed": "1"}})
    assert resp.status_code == 200, resp.text


def test_no_case_hit_an_unexpected_error(seed: Seed, server: Server, http: httpx.Client) -> None:
    for case in CASES:  # also when this test runs alone
        assert _send(http, case, seed).status_code < 500, case.id
    assert [r.getMessage() for r in server.errors.records] == []
