"""``shipyard lineage``: where a model version came from, or what was trained on a dataset."""

from __future__ import annotations

import click

from shipyard.cli._context import CliState, model_ref, pass_state
from shipyard.cli._output import (
    emit_json,
    esc,
    format_time,
    json_option,
    print_fields,
    print_table,
    table,
    truncate,
)


@click.command("lineage")
@click.argument("model", metavar="[MODEL]", required=False)
@click.option(
    "--dataset",
    metavar="NAME",
    default=None,
    help="Instead of a model: list the model versions whose run used dataset NAME.",
)
@click.option(
    "--digest",
    metavar="DIGEST",
    default=None,
    help="With --dataset: only that version (digest) of the dataset.",
)
@json_option
@pass_state
def lineage(
    state: CliState, model: str | None, dataset: str | None, digest: str | None, as_json: bool
) -> None:
    """Trace a model version back to its run, experiment and dataset inputs, or with --dataset
    list the versions trained on a dataset.

    MODEL is a version: models:/churn/3, churn/3, churn@champion, churn/latest (a bare NAME is
    its latest version).
    """
    if (model is None) == (dataset is None):
        raise click.UsageError("Give either MODEL or --dataset NAME (not both).")
    if digest is not None and dataset is None:
        raise click.UsageError("--digest needs --dataset.")
    from shipyard.registry import lineage_of, versions_trained_on

    ws = state.workspace
    if dataset is not None:
        versions = versions_trained_on(ws, dataset, digest)
        if as_json:
            emit_json({"dataset": dataset, "digest": digest, "versions": versions})
            return
        t = table("Model", "Version", "Aliases", "Run", "Registered", no_wrap=("Version", "Run"))
        for v in versions:
            t.add_row(
                esc(truncate(v.name, 32)),
                str(v.version),
                esc(", ".join(v.aliases) or "-"),
                v.run_id or "-",
                format_time(v.creation_timestamp),
            )
        which = f"{dataset!r}" + (f" (digest {digest})" if digest else "")
        print_table(t, empty=f"No model version was trained on dataset {which}.")
        return
    assert model is not None
    name, uri = model_ref(model)
    found = lineage_of(ws, uri or f"models:/{name}/latest")
    if as_json:
        emit_json(found)
        return
    v, run, exp = found.model_version, found.run, found.experiment
    if run is not None:
        run_text = f"{run.run_id} ({esc(run.run_name)}, {run.status})"
    elif v.run_id:
        run_text = f"{v.run_id} (deleted; the version keeps its own copy of the files)"
    else:
        run_text = "-"
    print_fields(
        [
            ("Model", f"{esc(v.name)} version {v.version}"),
            ("Source", esc(v.source)),
            ("Run", run_text),
            ("Experiment", f"{esc(exp.name)} (id {exp.experiment_id})" if exp else "-"),
        ],
        title=f"Lineage of models:/{esc(v.name)}/{v.version}",
    )
    t = table("Dataset", "Digest", "Source", "Context", title="Dataset inputs")
    for item in found.datasets:
        d = item.dataset
        context = ", ".join(f"{k}={val}" for k, val in sorted(item.tags.items())) or "-"
        t.add_row(
            esc(truncate(d.name)),
            d.digest,
            esc(truncate(d.source or d.source_type or "-")),
            esc(context),
        )
    print_table(t, empty="The run recorded no dataset inputs.")
