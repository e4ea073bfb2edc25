"""``shipyard serve`` (a model server) and ``shipyard predict`` (batch inference).

``serve`` is one of the two places where ``cli/`` reaches into an edge package: the serving
runner is imported inside the command, so the rest of the CLI never loads the web stack.
"""

from __future__ import annotations

import time

import click

from shipyard.cli._context import CliState, FiniteRange, pass_state
from shipyard.cli._output import console, emit_json, json_option
from shipyard.cli.server import LOG_LEVELS
from shipyard.errors import InvalidInput, missing_extra
from shipyard.security.bootstrap import insecure_warning, resolve_auth


@click.command()
@click.argument("model_uri", required=False)
@click.option(
    "--deployment",
    "deployment_file",
    type=click.Path(dir_okay=False),
    help="A deployment spec (YAML or JSON: arms with weights, shadow arms, sticky header) "
    "instead of MODEL_URI; or the NAME of a controller-managed deployment (`shipyard deploy "
    "apply`), whose traffic weights the server then follows without restarts.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=5001, show_default=True, help="TCP port."
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes (each loads its own copy of the models).",
)
@click.option(
    "--poll-interval",
    type=FiniteRange(min=0),
    default=None,
    help="Seconds between checks of the registry for moved aliases (0: never). Default 5, or "
    "the spec's poll_interval_s.",
)
@click.option(
    "--batching",
    type=click.Choice(["auto", "on", "off"]),
    default="auto",
    show_default=True,
    help="Micro-batching: auto turns it on per model version when warm-up shows it pays.",
)
@click.option(
    "--max-batch-rows",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Micro-batching: most rows per model call.",
)
@click.option(
    "--max-batch-wait-ms",
    type=FiniteRange(min=0),
    default=0.0,
    show_default=True,
    help="Micro-batching: how long a batch waits for more requests (0: only those already queued).",
)
@click.option(
    "--max-body-mb",
    type=FiniteRange(min=0.001),
    default=16.0,
    show_default=True,
    help="Largest request body accepted (MiB); larger ones get 413.",
)
@click.option("--no-log", is_flag=True, help="Keep no prediction log (and accept no feedback).")
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default="warning",
    show_default=True,
    help="How much the server logs.",
)
@pass_state
def serve(
    state: CliState,
    model_uri: str | None,
    deployment_file: str | None,
    host: str,
    port: int,
    workers: int,
    poll_interval: float | None,
    batching: str,
    max_batch_rows: int,
    max_batch_wait_ms: float,
    max_body_mb: float,
    no_log: bool,
    log_level: str,
) -> None:
    """Serve a model (MODEL_URI, e.g. models:/churn@champion) or a deployment over HTTP.

    Answers MLflow's /invocations, the Open Inference Protocol (/v2/...), /predict, /feedback
    and /metrics. Stop it with Ctrl-C.
    """
    from dataclasses import replace

    from shipyard.serving.traffic import DeploymentSpec

    if (model_uri is None) == (deployment_file is None):
        raise click.UsageError("Give either MODEL_URI or --deployment FILE (one of them).")
    managed = None
    spec: DeploymentSpec | None = None
    if deployment_file is not None and _is_deployment_name(state, deployment_file):
        managed = deployment_file  # the runner reads its traffic (serving.managed)
    elif deployment_file is not None:
        spec = DeploymentSpec.from_file(deployment_file)
    else:
        assert model_uri is not None
        spec = DeploymentSpec.single(model_uri)
    if poll_interval is not None and spec is not None:
        spec = replace(spec, poll_interval_s=poll_interval)
    # On another address than loopback the admin endpoints need credentials (the runner
    # resolves SHIPYARD_AUTH the same way); warn only when that was turned off.
    warning = insecure_warning(resolve_auth(state.settings, host), host, port)
    if warning:
        click.secho(warning, err=True, fg="yellow")
    try:
        import shipyard.serving.runner as runner
    except ImportError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing and missing != "shipyard":
            raise missing_extra(missing, "server") from None
        raise
    runner.serve(
        state.settings,
        spec,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level.lower(),
        batching=batching,
        max_rows=max_batch_rows,
        max_wait_ms=max_batch_wait_ms,
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        log_predictions=not no_log,
        managed=managed,
        managed_poll_interval_s=poll_interval,
    )


def _is_deployment_name(state: CliState, value: str) -> bool:
    """Whether ``--deployment`` names a controller-managed deployment (not a spec file)."""
    from pathlib import Path

    if Path(value).exists() or value.endswith((".yaml", ".yml", ".json")):
        return False
    store = state.workspace.deployment_store
    return store is not None and store.find(value) is not None


@click.command()
@click.argument("model_uri")
@click.option(
    "--input",
    "input_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Parquet file to score.",
)
@click.option(
    "--output",
    "output_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Parquet file to write the predictions to (replaced when complete).",
)
@click.option(
    "--chunk-rows",
    type=click.IntRange(min=1),
    default=100_000,
    show_default=True,
    help="Rows read, scored and written at a time (memory use follows this).",
)
@click.option(
    "--keep",
    multiple=True,
    help="An input column to copy into the output (an id, say); repeat for several.",
)
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Score in this process, or over a pool of Ray actors.",
)
@click.option(
    "--ray-workers",
    type=click.IntRange(min=1),
    default=None,
    help="Ray actors to start (default: one per CPU Ray sees).",
)
@json_option
@pass_state
def predict(
    state: CliState,
    model_uri: str,
    input_path: str,
    output_path: str,
    chunk_rows: int,
    keep: tuple[str, ...],
    executor: str,
    ray_workers: int | None,
    as_json: bool,
) -> None:
    """Score a Parquet file with a model, in chunks, into another Parquet file."""
    from shipyard.serving.batch import batch_predict

    if input_path == output_path:
        raise InvalidInput("--output must differ from --input; write the predictions elsewhere.")
    started = time.perf_counter()
    if as_json:
        rows = batch_predict(
            model_uri,
            input_path,
            output_path,
            chunk_rows=chunk_rows,
            keep=keep,
            executor=executor,
            ray_workers=ray_workers,
            workspace=state.workspace,
        )
    else:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console(stderr=True),
            transient=True,
        ) as bar:
            task = bar.add_task("scoring", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            rows = batch_predict(
                model_uri,
                input_path,
                output_path,
                chunk_rows=chunk_rows,
                keep=keep,
                executor=executor,
                ray_workers=ray_workers,
                workspace=state.workspace,
                progress=progress,
            )
    seconds = time.perf_counter() - started
    if as_json:
        emit_json({"rows": rows, "output": output_path, "seconds": round(seconds, 3)})
    else:
        click.echo(f"Scored {rows} rows into {output_path} in {seconds:.1f}s.")
