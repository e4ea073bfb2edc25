"""Datasets: registered datasets, their versions, schema, profile charts and validation reports.

A version's page shows its metadata, its schema (the user-edited one when the dataset has one,
else the inferred one), a summary and a chart per column from its stored profile (histograms of
numeric columns, top values of categorical ones: the data rides in ``data-`` attributes), and
the runs that used it. The validation report checks the version's rows against the dataset's
schema on request (:meth:`shipyard.data.Datasets.validate`).
"""

from __future__ import annotations

import itertools
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request

from shipyard.data.service import Datasets
from shipyard.errors import InvalidInput, NotFound
from shipyard.server.ui._routing import UiRouter, path_version, query_int

if TYPE_CHECKING:
    from shipyard.workspace import Workspace

router = UiRouter()

VALIDATE_MAX_ROWS = 5_000_000
"""Versions larger than this are not validated from the UI (run ``shipyard data validate``)."""


@router.page("/datasets", "datasets.html", resource="dataset")
def datasets_page(request: Request, ws: Workspace) -> dict[str, Any]:
    return {"datasets": Datasets(ws).list_datasets(), "quote": quote}


@router.page("/datasets/{name}", "dataset.html", resource="dataset", resource_param="name")
def dataset_page(request: Request, ws: Workspace) -> dict[str, Any]:
    service = Datasets(ws)
    name = request.path_params["name"]
    dataset = ws.datasets.get_dataset(name)
    versions = sorted(service.versions(name), key=lambda v: -v.version)
    return {"dataset": dataset, "versions": versions, "quote": quote}


@router.page(
    "/datasets/{name}/versions/{version}",
    "dataset_version.html",
    resource="dataset",
    resource_param="name",
)
def version_page(request: Request, ws: Workspace) -> dict[str, Any]:
    service = Datasets(ws)
    name = request.path_params["name"]
    v = service.get(name, path_version(request))
    schema = None
    schema_source = ""
    schema_error = None
    try:
        if ws.datasets.get_user_schema(name) is not None:
            schema, schema_source = service.schema(name), "user-edited schema of the dataset"
        else:
            schema, schema_source = service.inferred_schema(name, v.version), "inferred"
    except NotFound:
        schema = None
    except InvalidInput as exc:  # an unreadable schema must not hide the rest of the version
        schema_error = exc.message
    columns = []
    if v.profile is not None:
        for col in service.profile(name, v.version).summary()["columns"]:
            columns.append({**col, "chart": json.dumps(_chart(col), allow_nan=False)})
    return {
        "version": v,
        "schema": schema,
        "schema_source": schema_source,
        "schema_error": schema_error,
        "columns": columns,
        "runs": ws.datasets.runs_of(name, v.version),
        "tags": sorted(v.tags.items()),
        "quote": quote,
        "validatable": v.format in ("parquet", "csv"),
    }


def _chart(col: dict[str, Any]) -> dict[str, Any]:
    """The bar chart of one column's profile: histogram bins or top values."""
    hist = col.get("histogram")
    if hist and hist["counts"]:
        edges = hist["edges"]
        centers = [(a + b) / 2 for a, b in itertools.pairwise(edges)]
        if len(edges) == 2:
            centers = [edges[0]]
        return {"kind": "histogram", "x": centers, "y": hist["counts"], "labels": []}
    top = col.get("top") or []
    if top:
        return {
            "kind": "categories",
            "x": list(range(len(top))),
            "y": [t["count"] for t in top],
            "labels": [str(t["value"]) for t in top],
        }
    return {"kind": "none", "x": [], "y": [], "labels": []}


@router.page(
    "/datasets/{name}/diff", "dataset_diff.html", resource="dataset", resource_param="name"
)
def diff_page(request: Request, ws: Workspace) -> dict[str, Any]:
    """What changed between two versions (``?base=1&other=2``; by default the last two):
    metadata, and column by column the profile's shift (PSI and friends), new and missing
    categories."""
    service = Datasets(ws)
    name = request.path_params["name"]
    numbers = sorted(v.version for v in service.versions(name))
    if len(numbers) < 2:
        raise InvalidInput(f"dataset {name!r} has one version; register another to compare.")
    base = query_int(request, "base", numbers[-2], 1, numbers[-1])
    other = query_int(request, "other", numbers[-1], 1, numbers[-1])
    diff = service.diff(name, base, other)
    return {"name": name, "numbers": numbers, "base": base, "other": other, "diff": diff}


@router.page(
    "/datasets/{name}/versions/{version}/validation",
    "validation.html",
    resource="dataset",
    resource_param="name",
)
def validation_page(request: Request, ws: Workspace) -> dict[str, Any]:
    """Validate the version's rows against the dataset's schema and show the report."""
    service = Datasets(ws)
    name = request.path_params["name"]
    v = service.get(name, path_version(request))
    if v.format not in ("parquet", "csv"):
        raise InvalidInput(f"{v.uri} is a folder of {v.format} files, not a table to validate.")
    if v.num_rows is not None and v.num_rows > VALIDATE_MAX_ROWS:
        raise InvalidInput(
            f"{v.uri} has {v.num_rows:,} rows, more than the UI validates "
            f"({VALIDATE_MAX_ROWS:,}); run `shipyard data validate` on it instead."
        )
    environment = request.query_params.get("environment") or None
    schema = service.schema(name)
    report = service.validate(
        name, service.open(name, v.version).to_table(), environment=environment, schema=schema
    )
    return {
        "version": v,
        "report": report,
        "environment": environment or "",
        "environments": schema.environments,
        "quote": quote,
    }
