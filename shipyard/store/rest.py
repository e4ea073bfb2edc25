"""The tracking store of a Shipyard server, over its REST API (``/api/v1``).

The SDK uses it when the tracking URI is ``http(s)://...``. Every method is one request (long
metric histories are paged); errors arrive as the same :mod:`shipyard.errors` classes the server
raised, rebuilt by :class:`~shipyard._http.HttpClient`.

Permanent deletion runs on the server, which also frees the artifact bytes nothing else
references; :meth:`RestTrackingStore.purge_experiment` and :meth:`~RestTrackingStore.purge_run`
return the digests the removed artifacts referenced, as every store does (freeing them again is
a no-op: :meth:`shipyard.artifacts.rest.RestArtifactRepository.free` does nothing).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import quote

from shipyard._http import HttpClient
from shipyard.entities import (
    ArtifactInfo,
    DatasetInput,
    Experiment,
    Metric,
    Page,
    Run,
    RunInfo,
    ViewType,
    to_json,
)
from shipyard.errors import EndpointNotFound, NotFound
from shipyard.store.base import TrackingStore

HISTORY_PAGE = 25000
"""Points asked for per metric-history request (the server's page limit)."""


def _seg(value: str) -> str:
    """One path segment, percent-encoded (``/`` included, and ``.`` so that a name such as
    ``..`` is not taken for a relative path)."""
    return quote(value, safe="").replace(".", "%2E")


def _tail(path: str) -> str:
    """A path that may span segments (artifact paths, tag and metric keys), percent-encoded.

    Dots are encoded too: HTTP clients resolve literal ``.`` and ``..`` segments before sending,
    which would turn ``a/../b`` into ``b`` instead of letting the server refuse it."""
    return quote(path, safe="/").replace(".", "%2E")


class RestTrackingStore(TrackingStore):
    """:class:`TrackingStore` over a Shipyard server's REST API."""

    def __init__(self, http: HttpClient) -> None:
        self.http = http

    def __repr__(self) -> str:
        return f"RestTrackingStore({self.http.base_url!r})"

    def _call(self, method: str, url: str, json: Any = None, /, **params: Any) -> Any:
        query = {k: v for k, v in params.items() if v is not None} or None
        return self.http.call(method, url, json=json, params=query) or {}

    # ---------------------------------------------------------------- experiments

    def create_experiment(
        self,
        name: str,
        artifact_location: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> str:
        body: dict[str, Any] = {"name": name}
        if artifact_location is not None:
            body["artifact_location"] = artifact_location
        if tags:
            body["tags"] = tags
        return str(self._call("POST", "/api/v1/experiments", body)["experiment_id"])

    def get_experiment(self, experiment_id: str) -> Experiment:
        answer = self._call("GET", f"/api/v1/experiments/{_seg(experiment_id)}")
        return Experiment.from_json(answer["experiment"])

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        try:
            answer = self._call("GET", f"/api/v1/experiments/by-name/{_seg(name)}")
        except EndpointNotFound:
            raise
        except NotFound:
            return None
        return Experiment.from_json(answer["experiment"])

    def search_experiments(
        self,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        filter_string: str = "",
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[Experiment]:
        body = {
            "view_type": ViewType(view_type).value,
            "max_results": max_results,
            "filter": filter_string,
            "order_by": list(order_by or []),
            "page_token": page_token,
        }
        answer = self._call("POST", "/api/v1/experiments/search", body)
        return Page(
            [Experiment.from_json(e) for e in answer["experiments"]],
            answer.get("next_page_token"),
        )

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        self._call("PATCH", f"/api/v1/experiments/{_seg(experiment_id)}", {"name": new_name})

    def delete_experiment(self, experiment_id: str) -> None:
        self._call("DELETE", f"/api/v1/experiments/{_seg(experiment_id)}")

    def restore_experiment(self, experiment_id: str) -> None:
        self._call("POST", f"/api/v1/experiments/{_seg(experiment_id)}/restore")

    def purge_experiment(self, experiment_id: str) -> set[str]:
        path = f"/api/v1/experiments/{_seg(experiment_id)}"
        return set(self._call("DELETE", path, permanent="true").get("digests", ()))

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        path = f"/api/v1/experiments/{_seg(experiment_id)}/tags/{_tail(key)}"
        self._call("PUT", path, {"value": value})

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        self._call("DELETE", f"/api/v1/experiments/{_seg(experiment_id)}/tags/{_tail(key)}")

    # ---------------------------------------------------------------- runs

    def create_run(
        self,
        experiment_id: str,
        *,
        run_name: str | None = None,
        user_id: str = "",
        start_time: int | None = None,
        tags: dict[str, str] | None = None,
        parent_run_id: str | None = None,
    ) -> Run:
        body: dict[str, Any] = {"experiment_id": experiment_id, "user_id": user_id}
        for k, v in (
            ("run_name", run_name),
            ("start_time", start_time),
            ("tags", tags),
            ("parent_run_id", parent_run_id),
        ):
            if v is not None:
                body[k] = v
        return Run.from_json(self._call("POST", "/api/v1/runs", body)["run"])

    def get_run(self, run_id: str) -> Run:
        return Run.from_json(self._call("GET", f"/api/v1/runs/{_seg(run_id)}")["run"])

    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        body = {
            k: v
            for k, v in (("status", status), ("end_time", end_time), ("run_name", run_name))
            if v is not None
        }
        answer = self._call("PATCH", f"/api/v1/runs/{_seg(run_id)}", body)
        return RunInfo.from_json(answer["run_info"])

    def delete_run(self, run_id: str) -> None:
        self._call("DELETE", f"/api/v1/runs/{_seg(run_id)}")

    def restore_run(self, run_id: str) -> None:
        self._call("POST", f"/api/v1/runs/{_seg(run_id)}/restore")

    def purge_run(self, run_id: str) -> set[str]:
        path = f"/api/v1/runs/{_seg(run_id)}"
        return set(self._call("DELETE", path, permanent="true").get("digests", ()))

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        body: dict[str, Any] = {}
        if metrics:
            body["metrics"] = [_metric_json(m) for m in metrics]
        if params:
            body["params"] = params
        if tags:
            body["tags"] = tags
        self._call("POST", f"/api/v1/runs/{_seg(run_id)}/batch", body)

    def delete_tag(self, run_id: str, key: str) -> None:
        self._call("DELETE", f"/api/v1/runs/{_seg(run_id)}/tags/{_tail(key)}")

    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput]) -> None:
        body = {"datasets": to_json(list(datasets))}
        self._call("POST", f"/api/v1/runs/{_seg(run_id)}/inputs", body)

    def get_metric_history(
        self,
        run_id: str,
        key: str,
        max_results: int | None = None,
        page_token: str | None = None,
    ) -> Page[Metric]:
        """One page of ``max_results`` points, or every point (in as many requests as it takes)
        when ``max_results`` is ``None``."""
        path = f"/api/v1/runs/{_seg(run_id)}/metrics/{_tail(key)}/history"
        points: list[Metric] = []
        token = page_token
        while True:
            want = (
                HISTORY_PAGE
                if max_results is None
                else min(HISTORY_PAGE, max_results - len(points))
            )
            answer = self._call("GET", path, max_results=want, page_token=token)
            points += _history_points(key, answer)
            token = answer.get("next_page_token")
            done = max_results is not None and len(points) >= max_results
            if not token or done:
                return Page(points, token)

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str = "",
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[Run]:
        body = {
            "experiment_ids": list(experiment_ids),
            "filter": filter_string,
            "view_type": ViewType(view_type).value,
            "max_results": max_results,
            "order_by": list(order_by or []),
            "page_token": page_token,
        }
        answer = self._call("POST", "/api/v1/runs/search", body)
        return Page([Run.from_json(r) for r in answer["runs"]], answer.get("next_page_token"))

    # ---------------------------------------------------------------- artifact index

    def record_artifact(self, owner: str, path: str, digest: str, size: int) -> ArtifactInfo:
        answer = self._call(
            "PUT",
            f"/api/v1/admin/artifact-index/{_seg(owner)}/{_tail(path)}",
            {"digest": digest, "size": size},
        )
        return ArtifactInfo.from_json(answer["artifact"])

    def get_artifact(self, owner: str, path: str) -> ArtifactInfo:
        answer = self._call("GET", f"/api/v1/admin/artifact-index/{_seg(owner)}/{_tail(path)}")
        return ArtifactInfo.from_json(answer["artifact"])

    def list_artifacts(self, owner: str, path: str = "") -> list[ArtifactInfo]:
        answer = self._call("GET", f"/api/v1/admin/artifact-index/{_seg(owner)}", path=path)
        return [ArtifactInfo.from_json(a) for a in answer["artifacts"]]

    def delete_artifacts(self, owner: str, path: str = "") -> set[str]:
        answer = self._call("DELETE", f"/api/v1/admin/artifact-index/{_seg(owner)}", path=path)
        return set(answer["digests"])

    def unreferenced_digests(self, digests: set[str]) -> set[str]:
        if not digests:
            return set()
        answer = self._call(
            "POST", "/api/v1/admin/artifact-index/unreferenced", {"digests": sorted(digests)}
        )
        return set(answer["digests"])

    def iter_referenced_digests(self) -> Iterator[str]:
        yield from self._call("GET", "/api/v1/admin/referenced-digests")["digests"]

    def deleted_experiment_ids(self, older_than: int | None = None) -> list[str]:
        answer = self._call("GET", "/api/v1/admin/deleted-experiments", older_than=older_than)
        return [str(i) for i in answer["experiment_ids"]]

    def deleted_run_ids(self, older_than: int | None = None) -> list[str]:
        answer = self._call("GET", "/api/v1/admin/deleted-runs", older_than=older_than)
        return [str(i) for i in answer["run_ids"]]

    # ---------------------------------------------------------------- lifecycle

    def close(self) -> None:
        self.http.close()


def _metric_json(m: Metric) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key": m.key,
        "value": to_json(m.value),
        "timestamp": m.timestamp,
        "step": m.step,
    }
    for k in ("dataset_name", "dataset_digest", "model_id"):
        v = getattr(m, k)
        if v is not None:
            out[k] = v
    return out


def _history_points(key: str, answer: dict[str, Any]) -> list[Metric]:
    steps, timestamps, values = answer["steps"], answer["timestamps"], answer["values"]
    n = len(steps)
    names = answer.get("dataset_names") or [None] * n
    digests = answer.get("dataset_digests") or [None] * n
    model_ids = answer.get("model_ids") or [None] * n
    return [
        Metric(key, float(values[i]), timestamps[i], steps[i], names[i], digests[i], model_ids[i])
        for i in range(n)
    ]
