"""The JSON error shape of both surfaces, pinned: Shipyard's own API and the MLflow-compatible one.

Shipyard: ``{"error_code": cls.code, "message": str[, "details": {...}]}`` with ``cls.http_status``.
MLflow:   ``{"error_code": cls.mlflow_code, "message": str}`` with MLflow's status for that code.
"""

from __future__ import annotations

import httpx
import pytest

from shipyard import errors
from shipyard.errors import ERROR_CLASSES, ShipyardError, error_from_dict
from shipyard.server.errors import MLFLOW_STATUS, error_status_and_body, is_mlflow_path

SHIPYARD_PATH = "/api/v1/runs/abc"
MLFLOW_PATHS = [
    "/api/2.0/mlflow/runs/get",
    "/api/2.0/mlflow-artifacts/artifacts/x",
    "/api/3.0/mlflow/server-info",
    "/ajax-api/2.0/mlflow/runs/get",
]

# What MLflow's own server answers for each Shipyard error (section 1 of the compat brief).
EXPECTED_MLFLOW = {
    "INTERNAL_ERROR": ("INTERNAL_ERROR", 500),
    "INVALID_PARAMETER_VALUE": ("INVALID_PARAMETER_VALUE", 400),
    "INVALID_FILTER": ("INVALID_PARAMETER_VALUE", 400),
    "INVALID_ARTIFACT_PATH": ("INVALID_PARAMETER_VALUE", 400),
    "PAYLOAD_TOO_LARGE": ("INVALID_PARAMETER_VALUE", 400),
    "UNSUPPORTED_MEDIA_TYPE": ("BAD_REQUEST", 400),
    "UNAUTHENTICATED": ("UNAUTHENTICATED", 401),
    "PERMISSION_DENIED": ("PERMISSION_DENIED", 403),
    "RESOURCE_DOES_NOT_EXIST": ("RESOURCE_DOES_NOT_EXIST", 404),
    "ENDPOINT_NOT_FOUND": ("ENDPOINT_NOT_FOUND", 404),
    "METHOD_NOT_ALLOWED": ("BAD_REQUEST", 405),
    "REQUEST_LIMIT_EXCEEDED": ("REQUEST_LIMIT_EXCEEDED", 429),
    "RESOURCE_ALREADY_EXISTS": ("RESOURCE_ALREADY_EXISTS", 400),
    "RESOURCE_CONFLICT": ("INVALID_PARAMETER_VALUE", 400),
    "INVALID_STATE": ("INVALID_PARAMETER_VALUE", 400),
    "APPROVAL_REQUIRED": ("INVALID_PARAMETER_VALUE", 400),
    "GATE_FAILED": ("INVALID_PARAMETER_VALUE", 400),
    "MIGRATION_REQUIRED": ("TEMPORARILY_UNAVAILABLE", 503),
    "MODEL_NOT_READY": ("TEMPORARILY_UNAVAILABLE", 503),
    "TEMPORARILY_UNAVAILABLE": ("TEMPORARILY_UNAVAILABLE", 503),
    "MISSING_DEPENDENCY": ("INTERNAL_ERROR", 500),
    "INVALID_DATA": ("INVALID_PARAMETER_VALUE", 400),
    "DATA_VALIDATION_FAILED": ("INVALID_PARAMETER_VALUE", 400),
    "STEP_FAILED": ("INTERNAL_ERROR", 500),
    "STEP_TIMEOUT": ("INTERNAL_ERROR", 500),
}


def test_every_error_class_has_an_expected_mlflow_answer() -> None:
    assert set(EXPECTED_MLFLOW) == set(ERROR_CLASSES)


@pytest.mark.parametrize("code", sorted(ERROR_CLASSES))
def test_shipyard_shape(code: str) -> None:
    cls = ERROR_CLASSES[code]
    status, body = error_status_and_body(SHIPYARD_PATH, cls("what happened; what to do"))
    assert status == cls.http_status
    assert body == {"error_code": code, "message": "what happened; what to do"}
    rebuilt = error_from_dict(body, status=status)
    assert type(rebuilt) is cls


@pytest.mark.parametrize("code", sorted(ERROR_CLASSES))
@pytest.mark.parametrize("path", MLFLOW_PATHS)
def test_mlflow_shape(code: str, path: str) -> None:
    status, body = error_status_and_body(path, ERROR_CLASSES[code]("msg", details={"k": 1}))
    assert body == {"error_code": EXPECTED_MLFLOW[code][0], "message": "msg"}
    assert status == EXPECTED_MLFLOW[code][1]


def test_details_are_kept_on_shipyard_surface_only() -> None:
    exc = errors.InvalidFilter("bad filter", details={"position": 3})
    assert error_status_and_body(SHIPYARD_PATH, exc)[1]["details"] == {"position": 3}
    assert "details" not in error_status_and_body(MLFLOW_PATHS[0], exc)[1]


def test_mlflow_status_table_matches_the_brief() -> None:
    assert MLFLOW_STATUS["RESOURCE_ALREADY_EXISTS"] == 400
    assert MLFLOW_STATUS["INVALID_PARAMETER_VALUE"] == 400
    assert MLFLOW_STATUS["RESOURCE_DOES_NOT_EXIST"] == 404
    assert MLFLOW_STATUS["ENDPOINT_NOT_FOUND"] == 404
    assert MLFLOW_STATUS["TEMPORARILY_UNAVAILABLE"] == 503
    assert MLFLOW_STATUS["INTERNAL_ERROR"] == 500


def test_prefixes() -> None:
    assert all(is_mlflow_path(p) for p in MLFLOW_PATHS)
    assert not is_mlflow_path("/api/v1/experiments")
    assert not is_mlflow_path("/health")


def test_over_http_shipyard_not_found(api: httpx.Client) -> None:
    resp = api.get("/api/v1/runs/0123456789abcdef0123456789abcdef")
    assert resp.status_code == 404
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert set(body) == {"error_code", "message"}
    assert body["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_over_http_shipyard_already_exists_is_409(api: httpx.Client) -> None:
    assert api.post("/api/v1/experiments", json={"name": "dup"}).status_code == 201
    resp = api.post("/api/v1/experiments", json={"name": "dup"})
    assert resp.status_code == 409
    assert resp.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"


def test_over_http_mlflow_unknown_endpoint(api: httpx.Client) -> None:
    for path in ("/api/2.0/mlflow/no-such", "/ajax-api/2.0/mlflow/no-such"):
        resp = api.get(path)
        assert resp.status_code == 404
        assert set(resp.json()) == {"error_code", "message"}
        assert resp.json()["error_code"] == "ENDPOINT_NOT_FOUND"


def test_over_http_mlflow_already_exists_is_400(api: httpx.Client) -> None:
    url = "/api/2.0/mlflow/experiments/create"
    assert api.post(url, json={"name": "dup"}).status_code == 200
    resp = api.post(url, json={"name": "dup"})
    assert resp.status_code == 400
    assert resp.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"
    assert set(resp.json()) == {"error_code", "message"}


def test_error_from_dict_rebuilds_unknown_codes_as_base_class() -> None:
    exc = error_from_dict({"error_code": "SOMETHING_NEW", "message": "m"}, status=418)
    assert type(exc) is ShipyardError
