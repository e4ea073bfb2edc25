"""Registry: models, their versions and aliases, the audit history, model cards and lineage.

Each page calls :class:`shipyard.registry.Registry` and :func:`shipyard.registry.card.model_card`
(the same card ``shipyard models card`` renders, drawn here with the UI's own styles); the
lineage graph joins data -> run -> model version -> deployments -> alerts from
:func:`shipyard.registry.lineage.lineage_of`, the dataset store, and (where those services are
installed) :mod:`shipyard.server.ui._downstream`.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import PlainTextResponse

from shipyard.errors import InvalidInput, NotFound
from shipyard.registry.card import model_card, to_markdown
from shipyard.registry.registry import Registry
from shipyard.server.auth import readable_ids
from shipyard.server.ui import _downstream
from shipyard.server.ui._graph import Edge, Graph, Node, layout
from shipyard.server.ui._routing import UiRouter, list_page, path_version, query_int

if TYPE_CHECKING:
    from shipyard.entities import ModelVersion, RegisteredModel
    from shipyard.workspace import Workspace

router = UiRouter()


@router.page("/models", "models.html", resource="ui")
def models_page(request: Request, ws: Workspace) -> dict[str, Any]:
    """Registered models (name order), narrowed by a filter such as ``name LIKE 'churn%'``; a
    project-scoped user sees the models their grants name."""
    text = request.query_params.get("filter", "").strip()
    token = request.query_params.get("page_token") or None
    registry = Registry(ws)
    allowed = readable_ids(request, "model")

    def search(page_token: str | None, size: int) -> tuple[list[RegisteredModel], str | None]:
        page = registry.search_models(
            text, max_results=size, order_by=["name ASC"], page_token=page_token
        )
        return page.items, page.next_page_token

    try:
        items, next_token = list_page(
            allowed, text, token, partial(_model_or_none, registry), search, lambda m: m.name
        )
    except InvalidInput as exc:
        return {"models": [], "filter": text, "error": exc.message, "next_token": None}
    return {"models": items, "filter": text, "error": None, "next_token": next_token}


def _model_or_none(registry: Registry, name: str) -> RegisteredModel | None:
    try:
        found = registry.get_model(name)
    except (NotFound, InvalidInput):  # deleted, or a grant that names no valid model
        return None
    return found if found.name == name else None


@router.page("/models/{name}", "model.html", resource="model", resource_param="name")
def model_page(request: Request, ws: Workspace) -> dict[str, Any]:
    """One model: aliases, versions (newest first, paged), and its audit history."""
    registry = Registry(ws)
    name = request.path_params["name"]
    model = registry.get_model(name)
    per_page = query_int(request, "per_page", 50, 1, 500)
    page = registry.list_versions(
        name, max_results=per_page, page_token=request.query_params.get("page_token") or None
    )
    events = registry.history(name)
    return {
        "model": model,
        "versions": page.items,
        "next_token": page.next_page_token,
        "events": list(reversed(events)),
        "quote": quote,
    }


@router.page(
    "/models/{name}/versions/{version}",
    "model_version.html",
    resource="model",
    resource_param="name",
)
def version_page(request: Request, ws: Workspace) -> dict[str, Any]:
    """A version's model card and its lineage graph."""
    version = Registry(ws).get_version(request.path_params["name"], path_version(request))
    card = model_card(ws, version)
    downstream = _downstream.of_version(ws, version)
    return {
        "card": card,
        "version": version,
        "graph": lineage_graph(ws, version, downstream),
        "slice_metrics": sorted({m for ms in card.slices.values() for m in ms}),
        "downstream": downstream,
        "quote": quote,
    }


@router.data("/models/{name}/versions/{version}/card.md", resource="model", resource_param="name")
def card_markdown(request: Request, ws: Workspace) -> Any:
    """The version's card as Markdown (what ``shipyard models card`` prints)."""
    version = Registry(ws).get_version(request.path_params["name"], path_version(request))
    return PlainTextResponse(
        to_markdown(model_card(ws, version)), media_type="text/markdown; charset=utf-8"
    )


def lineage_graph(
    ws: Workspace, version: ModelVersion, downstream: _downstream.Downstream | None = None
) -> Graph:
    """data -> run -> model version -> deployments -> alerts, as a laid-out graph."""
    from shipyard.registry.lineage import lineage_of

    if downstream is None:
        downstream = _downstream.of_version(ws, version)

    lineage = lineage_of(ws, version)
    nodes: list[Node] = []
    edges: list[Edge] = []
    columns: dict[str, int] = {}
    mv = Node(
        f"mv:{version.name}/{version.version}",
        f"{version.name} v{version.version}",
        ", ".join(f"@{a}" for a in version.aliases) or version.status,
        "kind-model",
        f"/models/{quote(version.name, safe='')}/versions/{version.version}",
    )
    columns[mv.id] = 2
    nodes.append(mv)
    if lineage.run is not None:
        run = lineage.run
        rn = Node(
            f"run:{run.run_id}",
            run.run_name or run.run_id[:8],
            f"run {run.run_id[:8]} · {run.status}",
            "kind-run",
            f"/runs/{run.run_id}",
        )
        nodes.append(rn)
        columns[rn.id] = 1
        edges.append(Edge(rn.id, mv.id))
        for data in _datasets_of(ws, run.run_id, lineage.datasets):
            if data.id not in columns:
                nodes.append(data)
                columns[data.id] = 0
            edges.append(Edge(data.id, rn.id))
    for item in downstream.nodes:
        nodes.append(item.node)
        columns[item.node.id] = item.column
        edges.append(Edge(item.parent or mv.id, item.node.id))
    return layout(nodes, edges, columns)


def _datasets_of(ws: Workspace, run_id: str, inputs: Any) -> list[Node]:
    out: list[Node] = []
    registered: list[Any] = []
    if ws.dataset_store is not None:
        try:
            registered = ws.dataset_store.inputs_of(run_id)
        except NotFound:
            registered = []
    for dv, context in registered:
        out.append(
            Node(
                f"dv:{dv.name}/{dv.version}",
                f"{dv.name} v{dv.version}",
                context or dv.format,
                "kind-data",
                f"/datasets/{quote(dv.name, safe='')}/versions/{dv.version}",
            )
        )
    known = {dv.content_digest for dv, _ in registered} | {
        f"{dv.name}/{dv.version}" for dv, _ in registered
    }
    for item in inputs:
        ds = item.dataset
        if ds.digest in known or ds.source.removeprefix("datasets:/") in known:
            continue  # the registered version above, as the run's input record
        out.append(
            Node(
                f"ds:{ds.name}/{ds.digest}",
                ds.name,
                f"digest {ds.digest[:8]}",
                "kind-data",
                None,
                ds.source,
            )
        )
    return out
