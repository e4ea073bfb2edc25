"""Pipelines the tests run (importable, so process pools and Ray can load the steps)."""

from __future__ import annotations

import os
from pathlib import Path

from shipyard.pipelines import current, pipeline, step, when


@step
def ingest(seed: int = 0) -> dict[str, list[float]]:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    return {"x": [float(v) for v in data.data[:, 0]], "y": [int(v) for v in data.target]}


@step
def square(x: int) -> int:
    return x * x


@step
def total(values: list[int]) -> int:
    return sum(values)


@step
def add(a: int, b: int) -> int:
    return a + b


@step
def positive(x: int) -> bool:
    return x > 0


@pipeline
def fan(items: list[int] = [1, 2, 3], offset: int = 0):  # noqa: B006
    squares = square.map(items)
    s = total(squares)
    add(s, offset)


@pipeline
def branches(x: int = 3):
    ok = positive(x)
    with when(ok):
        square.options(name="only_if_positive")(x)
    add(x, 1)


def counter_file() -> Path:
    return Path(os.environ["PIPELINE_TEST_COUNTER"])


@step(retries=2, retry_delay_s=0.01)
def flaky(x: int) -> int:
    path = counter_file()
    n = int(path.read_text()) if path.exists() else 0
    path.write_text(str(n + 1))
    if n < 2:
        raise RuntimeError(f"transient failure {n + 1}")
    print(f"succeeded on attempt {current().attempt}")
    return x + 1


@pipeline
def flaky_pipeline(x: int = 1):
    add(flaky(x), 1)


@step
def breaks(x: int) -> int:
    if os.environ.get("PIPELINE_TEST_BROKEN") == "1":
        raise ValueError("broken on purpose")
    return x * 10


@step
def slow(x: int) -> int:
    import time

    time.sleep(2)
    return x


@pipeline
def fragile(x: int = 2):
    a = square(x)
    b = breaks(a)
    add(b, 1)
    square.options(name="independent")(x + 1)


@pipeline(on_failure="cancel")
def fragile_cancel(x: int = 2):
    breaks(x)
    slow(x)


@step(timeout_s=0.3)
def too_slow(x: int) -> int:
    import time

    time.sleep(1.5)
    return x


@pipeline
def timing_out(x: int = 1):
    too_slow(x)
