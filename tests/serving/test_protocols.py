"""The wire formats: MLflow's /invocations, the Open Inference Protocol V2, /predict; and every
user mistake answered with a 4xx that names it."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard.serving import DeploymentSpec, read_predictions
from shipyard.workspace import Workspace
from tests.serving.conftest import Data, Served, serving


def _split(X):  # type: ignore[no-untyped-def]
    return {"columns": list(X.columns), "data": X.to_numpy().tolist()}


@pytest.fixture
def rows(cancer: Data):  # type: ignore[no-untyped-def]
    return cancer.X.iloc[[0, 1, 19]]


@pytest.fixture
def expected(served: Served, rows):  # type: ignore[no-untyped-def]
    return served.endpoint.state().versions["main"].model.predict(rows).tolist()


def test_health_and_version(served: Served) -> None:
    assert served.client.get("/ping").status_code == 200
    assert served.client.get("/health").text == "\n"
    assert served.client.get("/version").text == __import__("shipyard").__version__
    assert served.client.get("/v2/health/live").json() == {"live": True}
    assert served.client.get("/v2/health/ready").json() == {"ready": True}
    assert served.client.get("/v2").json()["name"] == "shipyard"


@pytest.mark.parametrize("fmt", ["dataframe_split", "dataframe_records", "instances", "inputs"])
def test_mlflow_json_formats(served: Served, rows, expected, fmt: str) -> None:  # type: ignore[no-untyped-def]
    body = {
        "dataframe_split": _split(rows),
        "dataframe_records": rows.to_dict(orient="records"),
        "instances": rows.to_dict(orient="records"),
        "inputs": {k: v.tolist() for k, v in rows.items()},
    }[fmt]
    r = served.client.post("/invocations", json={fmt: body})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": expected}
    assert expected != [expected[0]] * 3  # the rows differ, so order is checked


def test_params_are_ignored_as_mlflow_ignores_them(served: Served, rows, expected) -> None:  # type: ignore[no-untyped-def]
    # MLflow's scoring server ignores params for a model without a params schema; so does
    # Shipyard (its flavors take none), and it says which it ignored.
    body = {"dataframe_split": _split(rows), "params": {"temperature": 0.5, "top_k": 3}}
    r = served.client.post("/invocations", json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": expected}
    assert r.headers["x-shipyard-ignored-params"] == "temperature,top_k"
    answer = served.client.post("/predict", json=body).json()
    assert answer["predictions"] == expected
    assert answer["ignored_params"] == ["temperature", "top_k"]
    plain = served.client.post("/invocations", json={"dataframe_split": _split(rows)})
    assert "x-shipyard-ignored-params" not in plain.headers


def test_mlflow_csv(served: Served, rows, expected) -> None:  # type: ignore[no-untyped-def]
    r = served.client.post(
        "/invocations", content=rows.to_csv(index=False), headers={"content-type": "text/csv"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == expected


def test_predict_returns_version_arm_and_request_id(served: Served, rows, expected) -> None:  # type: ignore[no-untyped-def]
    r = served.client.post("/predict", json={"dataframe_split": _split(rows)})
    body = r.json()
    assert body["predictions"] == expected
    assert (body["model_name"], body["model_version"], body["arm"]) == ("cancer", "1", "main")
    assert len(body["request_id"]) == 32
    mine = served.client.post(
        "/predict", json={"dataframe_split": _split(rows), "request_id": "req-7"}
    )
    assert mine.json()["request_id"] == "req-7"


def test_v2_tensor_per_column(served: Served, rows, expected) -> None:  # type: ignore[no-untyped-def]
    inputs = [
        {"name": c, "shape": [len(rows)], "datatype": "FP64", "data": rows[c].tolist()}
        for c in rows.columns
    ]
    r = served.client.post("/v2/models/cancer/infer", json={"id": "abc", "inputs": inputs})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_name"] == "cancer"
    assert body["model_version"] == "1"
    assert body["id"] == "abc"
    (out,) = body["outputs"]
    assert out["data"] == expected
    assert out["shape"] == [3]
    assert out["datatype"] == "INT64"


def test_v2_single_2d_tensor_in_signature_order(served: Served, rows, expected) -> None:  # type: ignore[no-untyped-def]
    tensor = {"name": "input-0", "shape": [3, 30], "datatype": "FP32",
              "data": rows.to_numpy().astype(np.float32).ravel().tolist()}  # fmt: skip
    r = served.client.post("/v2/models/cancer/versions/1/infer", json={"inputs": [tensor]})
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == expected


def test_v2_metadata_and_ready(served: Served) -> None:
    meta = served.client.get("/v2/models/cancer").json()
    assert meta["name"] == "cancer"
    assert meta["versions"] == ["1"]
    assert meta["inputs"][0] == {"name": "mean radius", "datatype": "FP64", "shape": [-1]}
    assert len(meta["inputs"]) == 30
    assert served.client.get("/v2/models/cancer/versions/1/ready").json() == {
        "name": "cancer",
        "ready": True,
    }


# ------------------------------------------------------------------------------- mistakes


def _error(r, status: int, code: str | None = None) -> str:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    body = r.json()
    if code is not None:
        assert body["error_code"] == code
        return str(body["message"])
    return str(body["error"])


def test_missing_column_names_it(served: Served, rows) -> None:  # type: ignore[no-untyped-def]
    body = {"dataframe_split": _split(rows.drop(columns=["mean area"]))}
    msg = _error(served.client.post("/invocations", json=body), 400, "INVALID_PARAMETER_VALUE")
    assert "'mean area'" in msg


def test_wrong_type_names_column_and_types(served: Served, rows) -> None:  # type: ignore[no-untyped-def]
    bad = rows.astype(object)
    bad["mean texture"] = "soft"
    r = served.client.post("/invocations", json={"dataframe_records": bad.to_dict("records")})
    msg = _error(r, 400, "INVALID_PARAMETER_VALUE")
    assert "'mean texture'" in msg
    assert "string" in msg
    assert "double" in msg


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "empty"),
        (b"[1, 2]", "JSON object"),
        (b'{"data": []}', "exactly one of"),
        (b'{"inputs": [1], "instances": [1]}', "exactly one of"),
        (b'{"dataframe_split": {"columns": ["a"]}}', "dataframe_split"),
        (b'{"dataframe_records": [1, 2]}', "list of objects"),
        (b'{"instances": [[1, 2], [3]]}', "ragged"),
        (b'{"dataframe_records": [{}], "params": [1]}', "params"),
    ],
)
def test_bad_bodies_are_400(served: Served, content: bytes, needle: str) -> None:
    r = served.client.post(
        "/invocations", content=content, headers={"content-type": "application/json"}
    )
    assert needle in _error(r, 400, "INVALID_PARAMETER_VALUE")


def test_unsupported_media_type_is_415(served: Served) -> None:
    r = served.client.post("/invocations", content=b"x", headers={"content-type": "text/plain"})
    assert "text/csv" in _error(r, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_bad_csv_is_400(served: Served) -> None:
    r = served.client.post(
        "/invocations", content=b"a,b\n1,2,3,4\n", headers={"content-type": "text/csv"}
    )
    _error(r, 400, "INVALID_PARAMETER_VALUE")


def test_oversized_body_is_413(served: Served) -> None:
    r = served.client.post(
        "/invocations",
        content=b"x" * (1024 * 1024 + 1),
        headers={"content-type": "application/json"},
    )
    assert "limit" in _error(r, 413, "PAYLOAD_TOO_LARGE")


def test_nan_the_model_rejects_is_400(served: Served, rows) -> None:  # type: ignore[no-untyped-def]
    data = _split(rows)
    data["data"][0][3] = None
    r = served.client.post("/invocations", json={"dataframe_split": data})
    assert "could not predict" in _error(r, 400, "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize(
    ("path", "body", "status", "needle"),
    [
        ("/v2/models/other/infer", {"inputs": []}, 404, "does not serve a model named 'other'"),
        ("/v2/models/cancer/versions/9/infer", {"inputs": []}, 404, "no served version '9'"),
        ("/v2/models/cancer/infer", {"inputs": []}, 400, "non-empty"),
        ("/v2/models/cancer/infer", {"inputs": [{"name": "x"}]}, 400, "lacks shape"),
        (
            "/v2/models/cancer/infer",
            {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]},
            400,
            "has 3 columns, but the model takes 30",
        ),
        (
            "/v2/models/cancer/infer",
            {"inputs": [{"name": "x", "shape": [1, 30], "datatype": "FLOAT", "data": [0] * 30}]},
            400,
            "datatype 'FLOAT'",
        ),
        (
            "/v2/models/cancer/infer",
            {"inputs": [{"name": "x", "shape": [2, 30], "datatype": "FP64", "data": [0] * 30}]},
            400,
            "needs 60",
        ),
        (
            "/v2/models/cancer/infer",
            {"inputs": [{"name": "mean radius", "shape": [1], "datatype": "FP64", "data": [1]}]},
            400,
            "missing column 'mean texture'",
        ),
    ],
)
def test_v2_mistakes(served: Served, path: str, body: object, status: int, needle: str) -> None:
    r = served.client.post(path, json=body)
    assert needle in _error(r, status), r.text


def test_unknown_route_and_method(served: Served) -> None:
    _error(served.client.get("/nope"), 404, "ENDPOINT_NOT_FOUND")
    _error(served.client.get("/invocations"), 405, "METHOD_NOT_ALLOWED")


def test_feedback_mistakes(served: Served) -> None:
    assert "request_id" in _error(
        served.client.post("/feedback", json={"label": 1}), 400, "INVALID_PARAMETER_VALUE"
    )
    assert "label" in _error(
        served.client.post("/feedback", json={"request_id": "a"}), 400, "INVALID_PARAMETER_VALUE"
    )


def test_errors_are_counted_per_arm_when_one_was_chosen(served: Served, rows) -> None:  # type: ignore[no-untyped-def]
    served.client.post("/invocations", json={"dataframe_records": [{"mean radius": 1.0}]})
    served.client.post("/invocations", content=b"{", headers={"content-type": "application/json"})
    metrics = served.client.get("/metrics").text
    assert (
        'shipyard_serving_errors_total{model="cancer",version="1",arm="main",'
        'code="INVALID_PARAMETER_VALUE"}'
    ) in metrics
    assert 'shipyard_serving_errors_total{code="INVALID_PARAMETER_VALUE"}' in metrics


def test_metrics_are_valid_prometheus_text(served: Served, rows) -> None:  # type: ignore[no-untyped-def]
    """Every sample belongs to a family declared by a ``# TYPE`` line before it, named as the
    0.0.4 text format wants: ``x_total`` for a counter, ``x`` for ``x_bucket/_sum/_count``."""
    served.client.post("/invocations", json={"dataframe_split": _split(rows)})
    types: dict[str, str] = {}
    samples = 0
    for line in served.client.get("/metrics").text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name not in types, f"two TYPE lines for {name}"
            types[name] = kind
        elif line and not line.startswith("#"):
            name = line.split("{", 1)[0].split(" ", 1)[0]
            family = next(
                (
                    name[: -len(suffix)]
                    for suffix in ("_bucket", "_sum", "_count")
                    if name.endswith(suffix) and types.get(name[: -len(suffix)]) == "histogram"
                ),
                name,
            )
            assert family in types, f"{name} has no TYPE line before it"
            if types[family] == "counter":
                assert family.endswith("_total"), family
            float(line.rsplit(" ", 1)[1])
            samples += 1
    assert types["shipyard_serving_requests_total"] == "counter"
    assert types["shipyard_serving_request_latency_seconds"] == "histogram"
    assert samples > 10


class Stamped:
    """A model over a datetime, a string and a binary column: the year plus the bytes' length."""

    def predict(self, data: Any) -> Any:
        return (data["t"].dt.year + data["blob"].map(len)).to_numpy()


@pytest.fixture(scope="module")
def stamped(module_workspace: Workspace) -> Iterator[Served]:
    import shipyard
    from shipyard.models.signature import infer_signature

    folder = module_workspace.settings.home / "stamped"
    example = pd.DataFrame(
        {"t": pd.to_datetime(["2024-05-01 12:30"]), "plan": ["pro"], "blob": [b"abc"]}
    )
    # The signature given, not an input example: warm-up then builds its row from the
    # signature (a saved example does not keep bytes as bytes).
    shipyard.save_model(Stamped(), folder, signature=infer_signature(example))
    with serving(module_workspace, DeploymentSpec.single(str(folder), poll_interval_s=0)) as s:
        yield s


def test_datetime_and_binary_columns_arrive_as_iso_strings_and_base64(stamped: Served) -> None:
    blob = base64.b64encode(b"hello").decode()
    records = [{"t": "2021-03-04T05:06:07", "plan": "pro", "blob": blob},
               {"t": "2019-12-31T23:00:00-02:00", "plan": "pro", "blob": ""}]  # fmt: skip
    r = stamped.client.post("/predict", json={"dataframe_records": records})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == [2021 + 5, 2020]  # the offset moves it into 2020 UTC
    csv = f"t,plan,blob\n2022-01-01,basic,{blob}\n"
    r = stamped.client.post("/invocations", content=csv, headers={"content-type": "text/csv"})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == [2027]
    inputs = [
        {"name": "t", "shape": [1], "datatype": "BYTES", "data": ["2023-07-08"]},
        {"name": "plan", "shape": [1], "datatype": "BYTES", "data": ["pro"]},
        {"name": "blob", "shape": [1], "datatype": "BYTES", "data": [blob]},
    ]
    r = stamped.client.post(f"/v2/models/{stamped.endpoint.name}/infer", json={"inputs": inputs})
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == [2028]
    stamped.log.flush()
    logged = read_predictions(stamped.log_dir)
    assert "2021-03-04T05:06:07" in logged["features"].iloc[0]


@pytest.mark.parametrize(
    ("record", "needle"),
    [
        ({"t": "someday", "plan": "pro", "blob": ""}, "'someday' is not an ISO 8601"),
        ({"t": "2021-01-01", "plan": "pro", "blob": "not base64!"}, "base64"),
        ({"t": "2021-01-01", "plan": 5, "blob": ""}, "'plan'"),
    ],
)
def test_datetime_and_binary_mistakes_are_400(
    stamped: Served, record: dict[str, object], needle: str
) -> None:
    r = stamped.client.post("/invocations", json={"dataframe_records": [record]})
    assert needle in _error(r, 400, "INVALID_PARAMETER_VALUE")
