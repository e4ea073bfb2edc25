"""``shipyard serve`` (a real server process, ready in seconds, on a registered model) and
``shipyard predict`` (a Parquet file scored into another)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

import shipyard
from shipyard.config import Settings
from shipyard.registry import Registry
from shipyard.tracking.client import Client
from shipyard.workspace import Workspace
from tests.cli.conftest import Shipyard
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sy(home: Path) -> Shipyard:
    return Shipyard(home)


def _register(home: Path) -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    ws = Workspace.open(Settings.from_env({}, home=home))
    try:
        model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
        shipyard.log_model(model, "model", input_example=X[:2], registered_model_name="cancer",
                           client=Client(workspace=ws))  # fmt: skip
        Registry(ws).set_alias("cancer", "champion", 1)
    finally:
        ws.close()
    return X


def test_serve_answers_and_shuts_down_cleanly(tmp_path: Path) -> None:
    home = tmp_path / "home"
    X = _register(home)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    started = time.monotonic()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shipyard",
            "--home",
            str(home),
            "serve",
            "models:/cancer@champion",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        while True:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() - started < 30
            try:
                if httpx.get(f"{url}/ping").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        r = httpx.post(f"{url}/predict", json={"dataframe_records": X[:2].to_dict("records")})
        assert r.status_code == 200
        assert r.json()["model_version"] == "1"
    finally:
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 0, out
    assert "Traceback" not in out
    log = shipyard.read_predictions(home / "predictions" / "cancer")
    assert list(log["request_id"]) == [r.json()["request_id"]]  # flushed on shutdown


def test_serve_needs_exactly_one_source(sy: Shipyard, tmp_path: Path) -> None:
    assert "either MODEL_URI or --deployment" in sy("serve", expect=2).stderr
    spec = tmp_path / "d.yaml"
    spec.write_text("arms: []\n")
    assert "no arms" in sy.fails("serve", "--deployment", str(spec))


def test_predict_scores_a_file(sy: Shipyard, tmp_path: Path) -> None:
    X = _register(sy.home)
    X.to_parquet(tmp_path / "in.parquet")
    out = sy.json("predict", "models:/cancer@champion", "--input", str(tmp_path / "in.parquet"),
                  "--output", str(tmp_path / "out.parquet"), "--chunk-rows", "100")  # fmt: skip
    assert out["rows"] == len(X)
    preds = pd.read_parquet(tmp_path / "out.parquet")
    assert len(preds) == len(X)
    assert set(preds["prediction"]) == {0, 1}
    plain = sy("predict", "models:/cancer@champion", "--input", str(tmp_path / "in.parquet"),
               "--output", str(tmp_path / "o2.parquet"), "--keep", "mean radius")  # fmt: skip
    assert f"Scored {len(X)} rows" in plain.stdout
    assert list(pd.read_parquet(tmp_path / "o2.parquet").columns) == ["mean radius", "prediction"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--input", "missing.parquet", "--output", "o.parquet"], "No input file"),
        (["--input", "x.parquet", "--output", "x.parquet"], "must differ"),
    ],
)
def test_predict_mistakes_are_one_line(sy: Shipyard, args: list[str], needle: str) -> None:
    _register(sy.home)
    assert needle in sy.fails("predict", "models:/cancer@champion", *args)


def test_predict_unknown_model(sy: Shipyard, tmp_path: Path) -> None:
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "in.parquet")
    line = sy.fails("predict", "models:/nope@champion", "--input", str(tmp_path / "in.parquet"),
                    "--output", str(tmp_path / "o.parquet"))  # fmt: skip
    assert "nope" in line


def test_serve_refuses_a_model_it_cannot_find_before_starting(shipyard: Shipyard) -> None:
    """It used to start, log a traceback and answer 503 for ever."""
    line = shipyard.fails("serve", "models:/nope/1", "--port", "1")
    assert line.startswith("Error: Registered model 'nope' does not exist")
    assert "neither a model URI" in shipyard.fails("serve", "/no/such/folder", "--port", "1")


def test_a_port_in_use_is_one_error_line(shipyard: Shipyard) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        for command in (("server",), ("serve", str(shipyard.home))):
            line = shipyard.fails(*command, "--port", port)
            assert f"port {port} on 127.0.0.1 is already in use" in line
    assert "cannot listen on '999.1.1.1'" in shipyard.fails(
        "server", "--host", "999.1.1.1", "--port", "1"
    )
