"""Fuzzing the server's HTTP surface: zero server errors over at least 5,000 generated requests.

Requests are generated with hypothesis from the OpenAPI document the server serves
(``/api/openapi.json``: every ``/api/v1`` operation, its path and query parameters and its
request schema), from the MLflow-compatible endpoint table (field names from the specs), from
MLflow's proxied artifact service and from the web UI's routes (pages, chart data and the
action forms, with hostile path and query values and malformed form bodies), then sent in-process to the ASGI app (no sockets, so 5,000 requests take seconds). Each request
mixes well-formed and hostile parts: real ids and made-up ones, traversal strings, control
characters, huge numbers, wrong JSON types, invalid JSON, random bytes, and missing, wrong or
valid credentials. Any 5xx fails the test with the request that caused it. The generator is
derandomized (seeded), so a failure reproduces.
"""

from __future__ import annotations

import io
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipyard.server.mlflow import ENDPOINTS as MLFLOW_ENDPOINTS
from tests.security.conftest import SecureServer

REQUESTS_PER_EXAMPLE = 10
EXAMPLES = 520
MIN_REQUESTS = 5000

HOSTILE = [
    "",
    ".",
    "..",
    "../../etc/passwd",
    "..%2f..%2fetc%2fpasswd",
    "%2e%2e/%2e%2e/",
    "a/../../b",
    "/abs/path",
    "C:\\windows\\win.ini",
    "a\x00b",
    "line\r\nX-Injected: 1",
    "\u202e\ufeff",
    "x" * 3000,
    "9" * 40,
    "-1",
    "NaN",
    "null",
    "{}",
    "' OR 1=1 --",
    "%",
    "%ZZ",
]

_PARAM_RE = re.compile(r"{([^}:]+)(?::([^}]+))?}")

SURROGATES: tuple[Literal["Cs"]] = ("Cs",)
text = st.text(st.characters(codec="utf-8", exclude_categories=SURROGATES), max_size=12)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    text,
    st.sampled_from(HOSTILE),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)),
    max_leaves=5,
)


@dataclass
class Known:
    """Real ids, so that part of the traffic reaches deep into the handlers."""

    values: dict[str, list[str]] = field(default_factory=dict)

    def strategy(self, name: str) -> st.SearchStrategy[str]:
        real = self.values.get(name, [])
        options: list[st.SearchStrategy[str]] = [st.sampled_from(HOSTILE), text]
        if real:
            options = [st.sampled_from(real), st.sampled_from(real), *options]
        return st.one_of(*options)


def _schema_value(schema: dict[str, Any], name: str, known: Known) -> st.SearchStrategy[Any]:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    good: st.SearchStrategy[Any]
    if "enum" in schema:
        good = st.sampled_from(schema["enum"])
    elif kind == "string":
        good = known.strategy(name)
    elif kind == "integer":
        good = st.one_of(
            st.integers(min_value=-3, max_value=5), st.integers(min_value=-(2**70), max_value=2**70)
        )
    elif kind == "number":
        good = st.floats(allow_nan=False, allow_infinity=False)
    elif kind == "boolean":
        good = st.booleans()
    elif kind == "array":
        good = st.lists(_schema_value(schema.get("items", {}), name, known), max_size=4)
    elif kind == "object" and "properties" in schema:
        good = _object(schema, known)
    else:
        good = json_values
    return st.one_of(good, good, good, json_values)


def _object(schema: dict[str, Any], known: Known) -> st.SearchStrategy[dict[str, Any]]:
    props = schema.get("properties", {})
    if not props:
        return st.dictionaries(text, json_values, max_size=4)
    return st.fixed_dictionaries(
        {}, optional={k: _schema_value(v, k, known) for k, v in props.items()}
    )


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    path_params: tuple[tuple[str, str | None], ...]
    query: tuple[tuple[str, dict[str, Any]], ...]
    body: dict[str, Any] | None
    media_type: str | None
    mlflow_fields: tuple[str, ...] = ()


def _operations(document: dict[str, Any]) -> list[Operation]:
    ops = []
    for path, item in document["paths"].items():
        for method, op in item.items():
            params = op.get("parameters", [])
            path_params = tuple(
                (p["name"], "path" if p["name"] == "path" or p["name"] == "key" else None)
                for p in params
                if p["in"] == "path"
            )
            query = tuple((p["name"], p["schema"]) for p in params if p["in"] == "query")
            content = op.get("requestBody", {}).get("content", {})
            media, body = next(iter(content.items()), (None, None))
            ops.append(
                Operation(
                    method.upper(),
                    path,
                    path_params,
                    query,
                    (body or {}).get("schema"),
                    media,
                )
            )
    return ops


def _mlflow_operations() -> list[Operation]:
    fields = (
        "experiment_id",
        "run_id",
        "run_uuid",
        "name",
        "model_id",
        "key",
        "value",
        "version",
        "alias",
        "stage",
        "max_results",
        "page_token",
        "filter",
        "order_by",
        "path",
        "metrics",
        "params",
        "tags",
        "timestamp",
        "step",
        "source",
        "new_name",
        "experiment_ids",
    )
    ops = []
    for spec in MLFLOW_ENDPOINTS:
        for method in spec.methods:
            params = tuple((m.group(1), None) for m in _PARAM_RE.finditer(spec.path))
            ops.append(
                Operation(
                    method,
                    "/api/2.0/mlflow" + spec.path,
                    params,
                    (),
                    None,
                    None,
                    mlflow_fields=fields,
                )
            )
    return ops


UI_QUERY = ("q", "filter", "order_by", "page", "metric", "runs", "group", "window", "columns")
"""Query parameters the UI's pages and chart data read (and a few they don't)."""


def _ui_operations() -> list[Operation]:
    from tests.security.test_authorization_matrix import _ui_endpoints

    ops = []
    for endpoint in _ui_endpoints():
        params = tuple((m.group(1), None) for m in _PARAM_RE.finditer(endpoint.path))
        query = tuple((name, {"type": "string"}) for name in UI_QUERY)
        if endpoint.kind == "action":
            form = "application/x-www-form-urlencoded"
            ops.append(Operation("POST", endpoint.path, params, (), None, form))
        else:
            ops.append(Operation("GET", endpoint.path, params, query, None, None))
    return ops


def _artifact_service_operations() -> list[Operation]:
    path = "/api/2.0/mlflow-artifacts/artifacts/{artifact_path}"
    params = (("artifact_path", "path"),)
    listing = (("path", {"type": "string"}),)
    return [
        Operation("GET", "/api/2.0/mlflow-artifacts/artifacts", (), listing, None, None),
        Operation("GET", path, params, listing, None, None),
        Operation("PUT", path, params, (), None, "application/octet-stream"),
        Operation("DELETE", path, params, (), None, None),
    ]


@dataclass
class Stats:
    sent: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def _request(
    draw: st.DrawFn, op: Operation, known: Known, tokens: dict[str, str]
) -> tuple[str, str, dict[str, Any]]:
    path = op.path
    for name, kind in op.path_params:
        value = draw(known.strategy(name))
        safe = "/" if kind == "path" else ""
        path = re.sub(r"{" + re.escape(name) + r"(:[^}]+)?}", quote(value, safe=safe), path)
    kwargs: dict[str, Any] = {}
    params = {}
    for name, schema in op.query:
        if draw(st.booleans()):
            params[name] = draw(_schema_value(schema, name, known))
    if op.mlflow_fields:
        fields = draw(
            st.fixed_dictionaries(
                {},
                optional={f: st.one_of(known.strategy(f), json_values) for f in op.mlflow_fields},
            )
        )
        if op.method == "GET":
            params.update(fields)
        else:
            kwargs["content"] = json.dumps(fields, default=str).encode()
            kwargs["headers"] = {"Content-Type": "application/json"}
    if params:
        kwargs["params"] = {
            k: (json.dumps(v) if isinstance(v, dict | list) else "" if v is None else str(v))
            for k, v in params.items()
        }
    if op.body is not None or op.media_type is not None:
        choice = draw(st.integers(0, 9))
        if choice <= 5 and op.media_type == "application/json":
            kwargs["content"] = json.dumps(
                draw(_schema_value(op.body or {}, "", known)), default=str
            ).encode()
        elif choice <= 7:
            kwargs["content"] = json.dumps(draw(json_values), default=str).encode()
        elif choice == 8:
            kwargs["content"] = draw(st.binary(max_size=200))
        else:
            kwargs["content"] = draw(
                st.sampled_from([b"", b"{", b"[1,", b'{"a": NaN}', b"\xff\xfe"])
            )
        kwargs["headers"] = {
            "Content-Type": draw(
                st.sampled_from(
                    [
                        op.media_type or "application/json",
                        "application/json",
                        "text/plain",
                        "multipart/form-data; boundary=x",
                    ]
                )
            )
        }
    # Hypothesis leans towards the first choices: valid credentials first.
    auth = draw(
        st.sampled_from(
            ["admin", "admin", "admin", "editor", "reader", "admin", "editor"] * 2
            + ["none", "garbage"]
        )
    )
    headers = kwargs.setdefault("headers", {})
    if auth == "garbage":
        headers["Authorization"] = draw(
            st.sampled_from(["Bearer shp_" + "A" * 43, "Basic !!!", "Basic YTpi", "Bearer"])
        )
    elif auth != "none":
        headers["Authorization"] = f"Bearer {tokens[auth]}"
    return op.method, path, kwargs


@st.composite
def _request_of(
    draw: st.DrawFn, op: Operation, known: Known, tokens: dict[str, str]
) -> tuple[str, str, dict[str, Any]]:
    return _request(draw, op, known, tokens)


def _seed(secure: SecureServer) -> Known:
    ws = secure.ws
    exp = ws.store.create_experiment("fuzz")
    run = ws.store.create_run(exp).info.run_id
    ws.artifacts.upload(run, "model/MLmodel", io.BytesIO(b"flavors: {}\n"))
    ws.artifacts.upload(run, "notes/a.txt", io.BytesIO(b"hello"))
    ws.registry.create_registered_model("fuzz-model")
    version = ws.registry.create_model_version(
        "fuzz-model", f"runs:/{run}/model", artifact_owner=run, artifact_path="model", run_id=run
    )
    logged = ws.logged_models.create_logged_model(exp, name="lm")
    secure.user("fuzz-target", ("reader", "*"))
    run_files = f"{exp}/{run}/artifacts"
    return Known(
        {
            "experiment_id": [exp, "0"],
            "run_id": [run],
            "run_uuid": [run],
            "name": ["fuzz-model", "fuzz"],
            "version": ["1"],
            "alias": ["champion", "staging"],
            "storage_owner": [version.storage_owner],
            "owner": [run],
            "path": ["notes/a.txt", "model/MLmodel", "notes", "model", run_files],
            "artifact_path": [
                f"{run_files}/notes/a.txt",
                f"{run_files}/fuzz.txt",
                f"model-versions/{version.storage_owner}/artifacts/MLmodel",
                f"{exp}/models/{logged.model_id}/artifacts/x",
            ],
            "alert_id": ["1", "0"],
            "key": ["p", "k"],
            "model_id": [logged.model_id],
            # Not the users whose tokens send the traffic: disabling or stripping those would
            # turn the rest of the run into 401s.
            "username": ["fuzz-target", "fuzzer"],
            "token_id": ["0" * 32],
            "stage": ["Staging", "Production", "Archived"],
        }
    )


async def _send_all(
    secure: SecureServer, requests: list[tuple[str, str, dict[str, Any]]], stats: Stats
) -> None:
    transport = httpx.ASGITransport(app=secure.app)
    limit = anyio.Semaphore(8)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:

        async def send(method: str, path: str, kwargs: dict[str, Any]) -> None:
            async with limit:
                try:
                    resp = await client.request(method, path, **kwargs)
                except httpx.InvalidURL:
                    return  # not sendable at all (the client refuses it)
            stats.sent += 1
            stats.by_status[resp.status_code] = stats.by_status.get(resp.status_code, 0) + 1
            if resp.status_code >= 500:
                stats.errors.append(
                    f"{method} {path} {kwargs!r:.300} -> {resp.status_code} {resp.text[:300]}"
                )

        async with anyio.create_task_group() as tg:
            for method, path, kwargs in requests:
                tg.start_soon(send, method, path, kwargs)


@pytest.mark.slow
def test_fuzzing_the_http_surface_gives_no_server_errors(secure: SecureServer) -> None:
    known = _seed(secure)
    tokens = {
        "admin": secure.security.create_token("admin", "fuzz", actor="test").secret,
        "reader": secure.user("fuzz-reader", ("reader", "*")),
        "editor": secure.user(
            "fuzz-editor", ("editor", f"experiment:{known.values['experiment_id'][0]}")
        ),
    }
    client = secure.client()
    document = client.get(
        "/api/openapi.json", headers={"Authorization": f"Bearer {tokens['admin']}"}
    ).json()
    operations = (
        _operations(document)
        + _mlflow_operations()
        + _artifact_service_operations()
        + _ui_operations()
    )
    assert len(operations) > 150
    stats = Stats()
    generated: list[tuple[str, str, dict[str, Any]]] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def generate(data: st.DataObject) -> None:
        for _ in range(REQUESTS_PER_EXAMPLE):
            op = data.draw(st.sampled_from(operations))
            generated.append(data.draw(_request_of(op, known, tokens)))

    started = time.perf_counter()
    generate()
    generated_in = time.perf_counter() - started
    # Sent on one event loop straight into the app (no thread hop per request), a few at a
    # time so that concurrent handlers meet too.
    anyio.run(_send_all, secure, generated, stats)
    sent_in = time.perf_counter() - started - generated_in
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(stats.by_status.items()))
    print(
        f"\nfuzzed {stats.sent} requests ({len(generated)} generated, "
        f"{len(generated) - stats.sent} refused by the client as unsendable URLs) "
        f"over {len(operations)} operations ({summary}); "
        f"generated in {generated_in:.1f} s, sent in {sent_in:.1f} s"
    )
    assert stats.errors == [], "\n".join(stats.errors[:20])
    assert stats.sent >= MIN_REQUESTS
    # Not vacuous: the traffic reached handlers (2xx) and was refused for bad input (4xx).
    assert sum(v for k, v in stats.by_status.items() if 200 <= k < 300) > 200
    assert sum(v for k, v in stats.by_status.items() if 400 <= k < 500) > 1000
