"""A small pipeline the UI tests run for real: load -> (clean, stats) -> train."""

from __future__ import annotations

from shipyard.pipelines.dsl import pipeline, step


@step
def load(n: int = 20) -> list[float]:
    print(f"loading {n} rows")
    return [float(i) for i in range(n)]


@step
def clean(rows: list[float]) -> list[float]:
    print("dropping negatives")
    return [r for r in rows if r >= 0]


@step
def stats(rows: list[float]) -> dict[str, float]:
    return {"mean": sum(rows) / len(rows)}


@step
def train(rows: list[float], summary: dict[str, float]) -> dict[str, float]:
    print(f"training on {len(rows)} rows, mean {summary['mean']}")
    return {"score": 0.9}


@pipeline
def demo(n: int = 20):
    rows = load(n)
    cleaned = clean(rows)
    train(cleaned, stats(cleaned))
