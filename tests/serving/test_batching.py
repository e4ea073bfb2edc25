"""Micro-batching: concurrent requests coalesced up to a row limit, split back correctly,
observable in the metrics; a bad request fails alone."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx
import numpy as np
import pandas as pd

from shipyard.errors import InvalidInput
from shipyard.registry import Registry
from shipyard.serving import DeploymentSpec
from shipyard.serving.batching import MicroBatcher
from shipyard.serving.endpoint import BatchingOptions
from shipyard.serving.metrics import ServingMetrics
from shipyard.workspace import Workspace
from tests.serving.conftest import Data, serving


def _batcher(calls: list[int], max_rows: int = 8, wait: float = 0.05) -> MicroBatcher:
    def predict(frame: pd.DataFrame) -> np.ndarray:
        if (frame["x"] < 0).any():
            raise ValueError("negative")
        calls.append(len(frame))
        return frame["x"].to_numpy() * 10

    return MicroBatcher(predict, max_rows=max_rows, max_wait_s=wait, metrics=ServingMetrics(),
                        labels=(("arm", "a"),))  # fmt: skip


def test_concurrent_requests_share_calls_up_to_max_rows() -> None:
    calls: list[int] = []
    batcher = _batcher(calls)

    async def main() -> list[np.ndarray]:
        frames = [pd.DataFrame({"x": [i, i]}) for i in range(10)]  # 20 rows, 2 per request
        return await asyncio.gather(*(batcher.submit(f) for f in frames))

    out = asyncio.run(main())
    assert [o.tolist() for o in out] == [[i * 10, i * 10] for i in range(10)]
    assert sum(calls) == 20
    assert max(calls) <= 8
    assert len(calls) < 10
    assert batcher.metrics.batch_rows.count((("arm", "a"),)) == len(calls)
    assert batcher.metrics.queue_wait.count((("arm", "a"),)) == 10


def test_a_bad_request_fails_alone() -> None:
    calls: list[int] = []
    batcher = _batcher(calls)

    async def main() -> list[object]:
        frames = [pd.DataFrame({"x": [1]}), pd.DataFrame({"x": [-1]}), pd.DataFrame({"x": [2]})]
        return await asyncio.gather(*(batcher.submit(f) for f in frames), return_exceptions=True)

    good, bad, other = asyncio.run(main())
    assert good.tolist() == [10]
    assert other.tolist() == [20]
    assert isinstance(bad, ValueError)


def test_batching_server_answers_each_request_with_its_own_rows(
    workspace: Workspace, models: Registry, cancer: Data
) -> None:
    opts = BatchingOptions(mode="on", max_rows=16, max_wait_ms=20)
    rows = cancer.X.iloc[:24]
    with serving(workspace, DeploymentSpec.single("models:/cancer@champion"), batching=opts) as s:
        expected = s.endpoint.state().versions["main"].model.predict(rows).tolist()
        got: dict[int, object] = {}

        def send(i: int) -> None:
            with httpx.Client(base_url=s.url) as c:
                r = c.post(
                    "/invocations", json={"dataframe_records": rows.iloc[[i]].to_dict("records")}
                )
                got[i] = r.json()["predictions"][0]

        threads = [threading.Thread(target=send, args=(i,)) for i in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [got[i] for i in range(24)] == expected
        bad = s.client.post("/invocations", json={"dataframe_records": [{"mean radius": 1.0}]})
        assert bad.status_code == 400
        assert "missing column" in bad.json()["message"]
        metrics = s.client.get("/metrics").text
        assert "shipyard_serving_batch_rows_count" in metrics
        assert "shipyard_serving_queue_wait_seconds_bucket" in metrics
        assert "shipyard_serving_model_load_seconds_count" in metrics


def test_invalid_input_is_not_retried_forever() -> None:
    calls: list[int] = []

    def predict(frame: pd.DataFrame) -> np.ndarray:
        calls.append(len(frame))
        raise InvalidInput("no")

    batcher = MicroBatcher(
        predict, max_rows=4, max_wait_s=0.01, metrics=ServingMetrics(), labels=()
    )

    async def main() -> list[object]:
        return await asyncio.gather(
            *(batcher.submit(pd.DataFrame({"x": [1]})) for _ in range(3)), return_exceptions=True
        )

    assert all(isinstance(e, InvalidInput) for e in asyncio.run(main()))
    assert len(calls) <= 4


class SlowPerCall:
    """A model whose every call costs 3 ms whatever the rows: batching pays for it."""

    def predict(self, data: Any) -> Any:
        import numpy as np

        time.sleep(0.003)
        return np.zeros(len(data))


def test_auto_batching_is_off_for_a_fast_model_and_on_for_a_slow_call(
    workspace: Workspace, cancer: Data
) -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    import shipyard
    from shipyard.serving.endpoint import Endpoint

    home = workspace.settings.home
    shipyard.save_model(LogisticRegression(max_iter=50).fit(cancer.X.iloc[:, :3], cancer.y),
                        home / "lr", input_example=cancer.X.iloc[:3, :3])  # fmt: skip
    shipyard.save_model(SlowPerCall(), home / "slow", input_example=cancer.X[:3])
    forest = RandomForestClassifier(n_estimators=100, random_state=0).fit(cancer.X, cancer.y)
    shipyard.save_model(forest, home / "rf", input_example=cancer.X[:3])
    endpoints = {
        name: Endpoint(workspace, DeploymentSpec.single(str(home / name), poll_interval_s=0))
        for name in ("lr", "slow", "rf")
    }
    for endpoint in endpoints.values():
        endpoint.load()
    assert endpoints["lr"].state().versions["main"].batcher is None
    assert endpoints["slow"].state().versions["main"].batcher is not None
    # The forest takes the numeric fast path, where its matrix predictor answers
    # (scikit-learn's per-tree checks skipped; warm-up checked the predictions are the same).
    assert endpoints["rf"].state().versions["main"].fast_columns == tuple(cancer.X.columns)


def test_bad_batching_options() -> None:
    import pytest

    with pytest.raises(InvalidInput, match="batching mode"):
        BatchingOptions(mode="sometimes")


def test_close_answers_what_is_queued_then_stops_and_later_calls_still_predict() -> None:
    calls: list[int] = []
    batcher = _batcher(calls, wait=0.05)

    async def main() -> tuple[list[Any], Any, bool]:
        queued = [asyncio.ensure_future(batcher.submit(pd.DataFrame({"x": [i]}))) for i in range(3)]
        await asyncio.sleep(0)  # queued, the collector waiting for more
        batcher.close()  # what a version switch does
        answers = await asyncio.gather(*queued)
        for _ in range(100):
            if not batcher.collecting:
                break
            await asyncio.sleep(0.01)
        # a request that picked the version just before the switch is still answered
        late = await batcher.submit(pd.DataFrame({"x": [7]}))
        return answers, late, batcher.collecting

    answers, late, collecting = asyncio.run(main())
    assert [list(a) for a in answers] == [[0], [10], [20]]
    assert list(late) == [70]
    assert collecting is False  # the collector task ended: nothing is left behind per switch
    assert calls == [3, 1]


def test_requests_that_cannot_be_joined_or_split_fail_alone_and_the_collector_lives() -> None:
    calls: list[int] = []
    batcher = _batcher(calls, wait=0.05)
    # Duplicate column names: pandas refuses to concatenate this table with any other.
    odd = pd.DataFrame([[1, 2]], columns=["x", "x"])

    async def main() -> list[Any]:
        first = [batcher.submit(odd), batcher.submit(pd.DataFrame({"x": [1]}))]
        answers = await asyncio.wait_for(asyncio.gather(*first, return_exceptions=True), 5)
        later = await asyncio.wait_for(batcher.submit(pd.DataFrame({"x": [2]})), 5)
        return [*answers, later]

    bad, good, later = asyncio.run(main())
    assert isinstance(bad, Exception)  # answered with its error, not left waiting
    assert list(good) == [10]
    assert list(later) == [20]  # the collector still runs


def test_a_prediction_that_cannot_be_split_fails_its_requests_instead_of_hanging() -> None:
    batcher = MicroBatcher(lambda frame: 1.0, max_rows=8, max_wait_s=0.05,
                           metrics=ServingMetrics(), labels=(("arm", "a"),))  # fmt: skip

    async def main() -> list[Any]:
        calls = [batcher.submit(pd.DataFrame({"x": [i]})) for i in range(2)]
        return await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 5)

    answers = asyncio.run(main())
    assert all(isinstance(a, TypeError) for a in answers)


SLEEPY_STARTED = threading.Event()


class Sleepy:
    """A model whose every call takes 0.3 s (and says when one began), and which does not gain
    from batching."""

    def predict(self, data: Any) -> Any:
        SLEEPY_STARTED.set()
        time.sleep(0.3)
        return np.zeros(len(data))


def test_call_cost_moves_slow_calls_off_the_event_loop_and_back() -> None:
    from shipyard.serving.endpoint import CallCost

    cost = CallCost()
    assert cost.inline(1)
    cost.timed(lambda _: time.sleep(0.05), None, 1)
    assert not cost.inline(1)
    for _ in range(60):  # cheap calls again: back on the loop
        cost.timed(lambda _: None, None, 1)
    assert cost.inline(1)
    try:
        cost.timed(lambda _: (time.sleep(0.05), 1 / 0), None, 1)
    except ZeroDivisionError:
        pass
    assert not cost.inline(1)  # a slow failure counts too


def test_call_cost_scales_with_the_rows_of_the_request() -> None:
    """After many cheap one-row calls, a 100,000-row request of the same model is not cheap."""
    from shipyard.serving.endpoint import CallCost

    cost = CallCost()
    cost.per_row = 5e-6  # what a model taking 5 us a row has been measured at
    assert cost.inline(1)
    assert cost.inline(400)
    assert not cost.inline(100_000)  # 0.5 s: a worker thread
    cost.timed(lambda _: time.sleep(0.005), None, 10_000)  # 0.5 us a row: folded in per row
    assert 5e-7 < cost.per_row < 5e-6


def test_a_slow_unbatched_model_does_not_hold_up_health_checks(
    workspace: Workspace, cancer: Data
) -> None:
    import shipyard

    path = workspace.settings.home / "sleepy"
    shipyard.save_model(Sleepy(), path, input_example=cancer.X[:3])
    body = {"dataframe_records": cancer.X.iloc[[0]].to_dict("records")}
    spec = DeploymentSpec.single(str(path), poll_interval_s=0)
    with serving(workspace, spec, batching=BatchingOptions(mode="off")) as s:
        assert s.endpoint.state().versions["main"].batcher is None
        assert s.client.post("/invocations", json=body).status_code == 200  # measured: slow
        finished: dict[str, float] = {}

        def predict() -> None:
            with httpx.Client(base_url=s.url, timeout=30) as c:
                assert c.post("/invocations", json=body).status_code == 200
            finished["predict"] = time.monotonic()

        SLEEPY_STARTED.clear()
        worker = threading.Thread(target=predict)
        worker.start()
        assert SLEEPY_STARTED.wait(10)  # the prediction is under way
        asked = time.monotonic()
        assert s.client.get("/ping").status_code == 200
        finished["ping"] = time.monotonic()
        worker.join()
        # The health check was answered while the model was still predicting (it has 0.3 s).
        assert finished["ping"] < finished["predict"]
        assert finished["ping"] - asked < 0.2  # on the loop, it would wait out the 0.3 s
