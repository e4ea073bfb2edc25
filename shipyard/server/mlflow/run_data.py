"""MLflow's logging endpoints: log-parameter, log-metric, set-tag, delete-tag, log-batch and
log-inputs.

Every write goes through the store's one atomic ``log_batch`` (or ``delete_tag`` /
``log_inputs``), which enforces the run-level rules: params are write-once (a changed value is a
``Conflict``, answered as MLflow's 400 ``INVALID_PARAMETER_VALUE``), and a deleted run accepts no
writes; it also checks keys, values and batch sizes. This module adds the rules that only the
request can show: the body size and a param key sent twice in one batch.

These are the hottest endpoints of the server, so the work per call is kept to parsing and one
store call.
"""

from __future__ import annotations

from typing import Any

from shipyard import validation
from shipyard.errors import PayloadTooLarge
from shipyard.server.mlflow import _convert
from shipyard.server.mlflow._wire import Args, Endpoint
from shipyard.server.mlflow.runs import run_id
from shipyard.store.logged_models import check_model_id
from shipyard.workspace import Workspace

MAX_BATCH_BODY_BYTES = 1_000_000
"""MLflow's limit on a log-batch request body."""


def log_param(ws: Workspace, args: Args) -> dict[str, Any]:
    """``POST runs/log-parameter {run_id, key, value}``. The same value again is accepted."""
    rid = run_id(args)
    key = args.require_string("key")
    ws.store.log_batch(rid, params={key: args.require_string("value", allow_empty=True)})
    return {}


def log_metric(ws: Workspace, args: Args) -> dict[str, Any]:
    """``POST runs/log-metric {run_id, key, value, timestamp, step?, model_id?, dataset_name?,
    dataset_digest?}``."""
    rid = run_id(args)
    ws.store.log_batch(rid, metrics=(_convert.metric_from(args),))
    return {}


def set_tag(ws: Workspace, args: Args) -> dict[str, Any]:
    """``POST runs/set-tag {run_id, key, value}`` (overwrites)."""
    rid = run_id(args)
    key = args.require_string("key")
    ws.store.log_batch(rid, tags={key: args.require_string("value", allow_empty=True)})
    return {}


def delete_tag(ws: Workspace, args: Args) -> dict[str, Any]:
    """``POST runs/delete-tag {run_id, key}``; 404 when the run has no such tag."""
    ws.store.delete_tag(run_id(args), args.require_string("key"))
    return {}


def log_batch(ws: Workspace, args: Args) -> dict[str, Any]:
    """``POST runs/log-batch {run_id, metrics[], params[], tags[]}``, written atomically.

    Limits (MLflow's): 1000 metrics, 100 params, 100 tags, 1000 values in all, a 1 MB body,
    each param key once per batch."""
    if args.size > MAX_BATCH_BODY_BYTES:
        raise PayloadTooLarge(
            f"The log-batch request body is {args.size} bytes; the limit is "
            f"{MAX_BATCH_BODY_BYTES}. Split it into several calls."
        )
    rid = run_id(args)
    raw_metrics = args.raw_list("metrics")
    param_items = args.objects("params")
    tag_items = args.objects("tags")
    validation.batch_sizes(len(raw_metrics or ()), len(param_items), len(tag_items))
    ws.store.log_batch(
        rid,
        metrics=_convert.batch_metrics(raw_metrics, args),
        params=_convert.param_pairs(param_items),
        tags=_convert.pairs(tag_items),
    )
    return {}


def log_inputs(ws: Workspace, args: Args) -> dict[str, Any]:
    """``POST runs/log-inputs {run_id, datasets[], models[] {model_id}}``: record the datasets
    and logged models a run used.

    Everything is checked before anything is written: the datasets' fields first, then the
    model links (which check the run and that every model exists), then the datasets. A call
    refused for a bad dataset or an unknown model records nothing; links are idempotent, so a
    retry after a failure in between converges."""
    rid = run_id(args)
    inputs = [_convert.dataset_input_from(item) for item in args.objects("datasets")]
    models = [check_model_id(m.require_string("model_id")) for m in args.objects("models")]
    validation.dataset_inputs(inputs)
    if models:
        ws.logged_models.log_run_models(rid, inputs=models)
    if inputs:
        ws.store.log_inputs(rid, inputs)
    if not inputs and not models:
        ws.store.get_run(rid)  # nothing to record, but an unknown run is still a 404
    return {}


ENDPOINTS: list[Endpoint] = [
    Endpoint("/runs/log-metric", ("POST",), log_metric, "write", "run", inline=True),
    Endpoint("/runs/log-batch", ("POST",), log_batch, "write", "run", inline=True),
    Endpoint("/runs/set-tag", ("POST",), set_tag, "write", "run", inline=True),
    Endpoint("/runs/log-parameter", ("POST",), log_param, "write", "run", inline=True),
    Endpoint("/runs/delete-tag", ("POST",), delete_tag, "write", "run", inline=True),
    Endpoint("/runs/log-inputs", ("POST",), log_inputs, "write", "run"),
]
"""The specs of every logging endpoint."""
