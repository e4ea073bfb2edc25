"""Model serving: ``shipyard serve`` against ``mlflow models serve``, same models, same machine.

Two scikit-learn models on the breast-cancer data (a logistic regression and a 100-tree random
forest, fixed seeds) are trained and saved **once**, as MLflow models, from bench/.venv-mlflow;
Shipyard serves the very same files converted into its package format
(``shipyard.models.convert_mlflow_model``: the pickle is copied, not retrained). Each server is
started cold, timed to its first 200 on ``/ping`` (ready time), measured for resident memory
(the whole process tree), then loaded by a separate load-generator process (threads with
keep-alive ``http.client`` connections) at concurrency 1 and 32 with single-row
``dataframe_split`` requests to ``/invocations``. MLflow runs with its defaults (1 worker) and,
with ``--workers N``, with the same worker count as Shipyard.

A batch-inference part times ``shipyard.batch_predict`` over a 1,000,000-row Parquet file
against one ``model.predict`` call on the whole table.

    bench/run   # once, to create bench/.venv-shipyard and bench/.venv-mlflow
    .venv/bin/python bench/serving.py --duration 10
    .venv/bin/python bench/serving.py --duration 5 --models lr --workers 2 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHIPYARD_PY = ROOT / "bench" / ".venv-shipyard" / "bin" / "python"
MLFLOW_PY = ROOT / "bench" / ".venv-mlflow" / "bin" / "python"

TRAIN = """
import sys, mlflow.sklearn
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
X, y = load_breast_cancer(return_X_y=True, as_frame=True)
out = sys.argv[1]
lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
rf = RandomForestClassifier(n_estimators=100, random_state=0).fit(X, y)
mlflow.sklearn.save_model(lr, out + "/mlflow-lr", input_example=X[:2], serialization_format="cloudpickle")
mlflow.sklearn.save_model(rf, out + "/mlflow-rf", input_example=X[:2], serialization_format="cloudpickle")
X[:1].to_json(out + "/row.json", orient="split", index=False)
"""

CONVERT = """
import sys
from shipyard.models import convert_mlflow_model
for name in ("lr", "rf"):
    convert_mlflow_model(sys.argv[1] + "/mlflow-" + name, sys.argv[1] + "/shipyard-" + name)
"""

# The same fitted estimators, converted to ONNX (skl2onnx) and saved as Shipyard packages; the
# script checks that the converted model predicts the same labels on the whole dataset.
CONVERT_ONNX = """
import json, sys
import numpy as np
import shipyard
from shipyard.models import to_onnx
from sklearn.datasets import load_breast_cancer
X, _ = load_breast_cancer(return_X_y=True, as_frame=True)
agree = {}
for name in ("lr", "rf"):
    native = shipyard.load_model(sys.argv[1] + "/shipyard-" + name)
    onx = to_onnx(native.unwrap(), X[:5])
    out = sys.argv[1] + "/shipyard-" + name + "-onnx"
    shipyard.save_model(onx, out, input_example=X[:2])
    converted = shipyard.load_model(out)
    agree[name] = float(np.mean(np.asarray(converted.predict(X)) == np.asarray(native.predict(X))))
print(json.dumps(agree))
"""

LOADGEN = """
import http.client, json, sys, threading, time
host, port, path, body_file, conc, duration = sys.argv[1:7]
port, conc, duration = int(port), int(conc), float(duration)
body = open(body_file, "rb").read()
headers = {"Content-Type": "application/json"}
lat, errors = [], [0]
stop = time.perf_counter() + duration
def worker():
    conn = http.client.HTTPConnection(host, port, timeout=60)
    mine = []
    while time.perf_counter() < stop:
        t = time.perf_counter()
        try:
            conn.request("POST", path, body, headers)
            r = conn.getresponse(); r.read()
            if r.status != 200:
                errors[0] += 1
        except Exception:
            errors[0] += 1
            conn.close(); conn = http.client.HTTPConnection(host, port, timeout=60)
            continue
        mine.append(time.perf_counter() - t)
    lat.extend(mine)
# warm-up
c = http.client.HTTPConnection(host, port); c.request("POST", path, body, headers); c.getresponse().read()
start = time.perf_counter()
threads = [threading.Thread(target=worker) for _ in range(conc)]
[t.start() for t in threads]; [t.join() for t in threads]
elapsed = time.perf_counter() - start
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else None
print(json.dumps({"requests": len(lat), "errors": errors[0], "rps": len(lat) / elapsed,
                  "p50_ms": q(0.50), "p99_ms": q(0.99)}))
"""

BATCH = """
import sys, time, numpy as np, pandas as pd
import shipyard
folder, n = sys.argv[1], int(sys.argv[2])
from sklearn.datasets import load_breast_cancer
X, _ = load_breast_cancer(return_X_y=True, as_frame=True)
rng = np.random.default_rng(0)
big = X.iloc[rng.integers(0, len(X), n)].reset_index(drop=True)
big.to_parquet(folder + "/big.parquet", row_group_size=100_000)
model = shipyard.load_model(folder + "/shipyard-lr")
t = time.perf_counter(); model.predict(pd.read_parquet(folder + "/big.parquet")); whole = time.perf_counter() - t
t = time.perf_counter()
shipyard.batch_predict(folder + "/shipyard-lr", folder + "/big.parquet", folder + "/preds.parquet")
streamed = time.perf_counter() - t
import json; print(json.dumps({"rows": n, "predict_whole_s": whole, "batch_predict_s": streamed}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    import psutil

    proc = psutil.Process(pid)
    procs = [proc, *proc.children(recursive=True)]
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 120) -> float:
    import http.client

    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/ping")
            if c.getresponse().status == 200:
                return time.perf_counter() - start
        except OSError:
            pass
        time.sleep(0.02)
    raise RuntimeError("server not ready in time")


def measure(
    name: str, cmd: list[str], env: dict[str, str], port: int, body: Path, args: argparse.Namespace
) -> dict[str, Any]:
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    try:
        ready = time.perf_counter() - started if wait_ready(port, proc) >= 0 else 0.0
        time.sleep(0.5)
        row: dict[str, Any] = {"server": name, "ready_s": round(ready, 2), "rss_mb": 0.0}
        for conc in args.concurrency:
            out = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    LOADGEN,
                    "127.0.0.1",
                    str(port),
                    "/invocations",
                    str(body),
                    str(conc),
                    str(args.duration),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            row[f"c{conc}"] = json.loads(out.stdout)
        row["rss_mb"] = round(rss_mb(proc.pid), 1)
        return row
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--models", nargs="+", default=["lr", "rf"], choices=["lr", "rf"])
    parser.add_argument("--workers", type=int, default=1, help="Shipyard's worker processes")
    parser.add_argument("--batch-rows", type=int, default=1_000_000, help="0 skips batch")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument(
        "--no-onnx",
        dest="onnx",
        action="store_false",
        help="skip the rows where Shipyard serves the same estimator converted to ONNX",
    )
    args = parser.parse_args()
    for py in (SHIPYARD_PY, MLFLOW_PY):
        if not py.exists():
            sys.exit(f"{py} is missing; run bench/run once to create the environments.")
    work = Path(tempfile.mkdtemp(prefix="shipyard-bench-serving-"))
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPYARD_", "MLFLOW_"))}
    base.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    subprocess.run([str(MLFLOW_PY), "-c", TRAIN, str(work)], check=True, env=base,
                   capture_output=True)  # fmt: skip
    subprocess.run([str(SHIPYARD_PY), "-W", "ignore", "-c", CONVERT, str(work)], check=True,
                   env={**base, "SHIPYARD_HOME": str(work / "home")})  # fmt: skip
    agreement: dict[str, float] = {}
    if args.onnx:
        out = subprocess.run([str(SHIPYARD_PY), "-W", "ignore", "-c", CONVERT_ONNX, str(work)],
                             check=True, capture_output=True, text=True,
                             env={**base, "SHIPYARD_HOME": str(work / "home")})  # fmt: skip
        agreement = json.loads(out.stdout.strip().splitlines()[-1])
    row = json.loads((work / "row.json").read_text())
    body = work / "body.json"
    body.write_text(
        json.dumps({"dataframe_split": {"columns": row["columns"], "data": row["data"]}})
    )
    mlflow_bin = MLFLOW_PY.parent / "mlflow"
    shipyard_bin = SHIPYARD_PY.parent / "shipyard"
    results: list[dict[str, Any]] = []
    mlflow_workers = sorted({1, args.workers})
    for model in args.models:
        for suffix in ("", "-onnx") if args.onnx else ("",):
            port = free_port()
            cmd = [str(shipyard_bin), "--home", str(work / "home"), "serve",
                   str(work / f"shipyard-{model}{suffix}"), "--port", str(port),
                   "--workers", str(args.workers)]  # fmt: skip
            label = f"shipyard{' onnx' if suffix else ''} (workers={args.workers})"
            results.append({"model": model, **measure(label, cmd, base, port, body, args)})
        for w in mlflow_workers:
            port = free_port()
            cmd = [str(mlflow_bin), "models", "serve", "-m", str(work / f"mlflow-{model}"),
                   "--env-manager", "local", "-p", str(port), "--workers", str(w)]  # fmt: skip
            env = {**base, "PATH": f"{MLFLOW_PY.parent}{os.pathsep}{base.get('PATH', '')}"}
            results.append(
                {"model": model, **measure(f"mlflow (workers={w})", cmd, env, port, body, args)}
            )
    batch = None
    if args.batch_rows:
        out = subprocess.run([str(SHIPYARD_PY), "-W", "ignore", "-c", BATCH, str(work), str(args.batch_rows)],
                             check=True, capture_output=True, text=True,
                             env={**base, "SHIPYARD_HOME": str(work / "home")})  # fmt: skip
        batch = json.loads(out.stdout.strip().splitlines()[-1])
    print_table(results, batch, args)
    for model, share in agreement.items():
        print(f"{model}: the ONNX conversion predicts the same label on {share:.1%} of the rows")
    if args.json:
        args.json.write_text(
            json.dumps({"serving": results, "batch": batch, "onnx_agreement": agreement}, indent=2)
        )


def print_table(
    results: list[dict[str, Any]], batch: dict[str, Any] | None, args: argparse.Namespace
) -> None:
    head = f"{'model':5} {'server':29} {'ready s':>8} {'RSS MB':>8}"
    for c in args.concurrency:
        head += f" {'c' + str(c) + ' req/s':>11} {'p50 ms':>8} {'p99 ms':>8}"
    print(head)
    for r in results:
        line = f"{r['model']:5} {r['server']:29} {r['ready_s']:8.2f} {r['rss_mb']:8.1f}"
        for c in args.concurrency:
            m = r[f"c{c}"]
            line += f" {m['rps']:11.1f} {m['p50_ms'] or 0:8.2f} {m['p99_ms'] or 0:8.2f}"
            if m["errors"]:
                line += f" ({m['errors']} errors)"
        print(line)
    for model, ours in ((r["model"], r) for r in results if r["server"].startswith("shipyard")):
        theirs = next(
            r for r in results if r["model"] == model and r["server"] == "mlflow (workers=1)"
        )
        parts = [f"ready {theirs['ready_s'] / ours['ready_s']:.1f}x faster",
                 f"memory {ours['rss_mb'] / theirs['rss_mb']:.2f} of MLflow's"]  # fmt: skip
        for c in args.concurrency:
            parts.append(f"c{c} throughput {ours[f'c{c}']['rps'] / theirs[f'c{c}']['rps']:.1f}x")
            parts.append(
                f"c{c} p50 {ours[f'c{c}']['p50_ms'] / theirs[f'c{c}']['p50_ms']:.3f} of MLflow's"
            )
        print(f"{model} {ours['server']}: " + ", ".join(parts))
    if batch:
        print(f"batch: {batch['rows']} rows, batch_predict {batch['batch_predict_s']:.2f}s vs "
              f"predict on the whole table {batch['predict_whole_s']:.2f}s "
              f"({batch['batch_predict_s'] / batch['predict_whole_s']:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
