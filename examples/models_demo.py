"""Log a scikit-learn pipeline with its signature, load it back by URI, and time a warm load.

python examples/models_demo.py            # uses ./.shipyard (or SHIPYARD_HOME)
"""

from __future__ import annotations

import statistics
import time

from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import shipyard


def main() -> None:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)

    shipyard.set_experiment("models-demo")
    with shipyard.start_run(run_name="logreg", capture_environment=False):
        shipyard.log_input(X.assign(target=y), context="training", name="breast_cancer")
        shipyard.log_metric("train_accuracy", float(model.score(X, y)))
        info = shipyard.log_model(model, "model", input_example=X.head(5))
    print(
        f"logged {info.model_uri} ({info.flavor}, {info.size} bytes, sha256 {info.content_hash[:12]})"
    )

    t0 = time.perf_counter()
    loaded = shipyard.load_model(info.model_uri)  # downloads into the cache
    print(f"cold load: {(time.perf_counter() - t0) * 1000:.1f} ms")
    assert (loaded.predict(X) == model.predict(X)).all()

    times = []
    for _ in range(50):
        t0 = time.perf_counter()
        shipyard.load_model(info.model_uri)
        times.append((time.perf_counter() - t0) * 1000)
    print(
        f"warm load (resolve runs:/ + read manifest + unpickle), 50 runs: "
        f"median {statistics.median(times):.2f} ms, max {max(times):.2f} ms"
    )

    try:
        loaded.predict(X.drop(columns=["mean radius"]))
    except shipyard.InvalidInput as exc:
        print(f"signature check: {exc}")


if __name__ == "__main__":
    main()
