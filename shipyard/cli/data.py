"""``shipyard data``: register dataset versions, inspect, diff, download, validate and profile.

Versions are content-addressed: ``add`` of unchanged data prints the existing version with
``created: false``. Every command calls :class:`~shipyard.data.Datasets`; ``validate`` exits 1
when the report has an error-severity anomaly, so it works as a gate in scripts and CI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from shipyard.cli._context import CliState, parse_tags, pass_state
from shipyard.cli._output import (
    emit_json,
    esc,
    format_time,
    human_size,
    json_option,
    note,
    print_fields,
    print_table,
    read_file,
    table,
    truncate,
    write_file,
)

if TYPE_CHECKING:
    from shipyard.data import Datasets
    from shipyard.entities import DatasetVersion


def _service(state: CliState) -> Datasets:
    from shipyard.data import Datasets

    return Datasets(state.workspace)


version_option = click.option(
    "--version", "version", type=click.IntRange(min=1), default=None, metavar="V",
    help="Version number [default: the latest].",
)  # fmt: skip


def _version_json(v: DatasetVersion, **extra: Any) -> dict[str, Any]:
    from shipyard.entities import to_json

    body = {k: val for k, val in to_json(v).items() if k not in ("schema", "profile")}
    body.update(uri=v.uri, **extra)
    return body


@click.group()
def data() -> None:
    """Register content-addressed dataset versions, validate tables against their schema, and
    profile them."""


@data.command("add")
@click.argument("name")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--description", default=None, metavar="TEXT", help="What this version holds.")
@click.option(
    "--tag", "tags", multiple=True, metavar="KEY=VALUE", help="A version tag (repeatable)."
)
@click.option("--run-id", default=None, metavar="RUN", help="The run that created this data.")
@json_option
@pass_state
def add(
    state: CliState,
    name: str,
    path: Path,
    description: str | None,
    tags: tuple[str, ...],
    run_id: str | None,
    as_json: bool,
) -> None:
    """Register PATH (a Parquet or CSV file, or a folder) as a version of dataset NAME."""
    v, created = _service(state).register(
        name, path, description=description, tags=parse_tags(tags), run_id=run_id
    )
    if as_json:
        emit_json(_version_json(v, created=created))
        return
    what = "Registered" if created else "Unchanged: already registered as"
    click.echo(f"{what} {v.uri} ({v.num_rows} rows, {human_size(v.num_bytes)}).")


@data.command("list")
@json_option
@pass_state
def list_(state: CliState, as_json: bool) -> None:
    """List registered datasets."""
    items = _service(state).list_datasets()
    if as_json:
        emit_json({"datasets": items})
        return
    t = table("name", "latest", "updated", "user schema")
    for d in items:
        t.add_row(esc(d.name), str(d.latest_version or ""), format_time(d.last_updated_timestamp),
                  "yes" if d.has_user_schema else "")  # fmt: skip
    print_table(t, empty="No datasets yet; register one with `shipyard data add NAME PATH`.")


@data.command("versions")
@click.argument("name")
@json_option
@pass_state
def versions(state: CliState, name: str, as_json: bool) -> None:
    """List the versions of dataset NAME, newest first."""
    items = _service(state).versions(name)
    if as_json:
        emit_json({"versions": [_version_json(v) for v in items]})
        return
    t = table("version", "rows", "columns", "size", "digest", "created", "run")
    for v in items:
        t.add_row(str(v.version), str(v.num_rows if v.num_rows is not None else ""),
                  str(v.num_columns if v.num_columns is not None else ""), human_size(v.num_bytes),
                  v.content_digest[:12], format_time(v.creation_timestamp), v.run_id or "")  # fmt: skip
    print_table(t, empty=f"Dataset {name!r} has no versions.")


@data.command("show")
@click.argument("name")
@version_option
@json_option
@pass_state
def show(state: CliState, name: str, version: int | None, as_json: bool) -> None:
    """Show a version's metadata and inferred schema."""
    svc = _service(state)
    v = svc.get(name, version)
    schema = json.loads(v.schema) if v.schema else None
    runs = svc.store.runs_of(name, v.version)
    if as_json:
        emit_json(_version_json(v, inferred_schema=schema, input_of_runs=runs))
        return
    print_fields(
        [("uri", v.uri), ("digest", v.content_digest), ("format", v.format),
         ("rows", str(v.num_rows)), ("columns", str(v.num_columns)),
         ("size", human_size(v.num_bytes)), ("source", v.source_uri or ""),
         ("created", format_time(v.creation_timestamp)), ("created by run", v.run_id or ""),
         ("read by runs", ", ".join(runs)),
         ("tags", truncate(", ".join(f"{k}={val}" for k, val in v.tags.items())))],
        title=v.uri,
    )  # fmt: skip
    if schema:
        from shipyard.data.schema import schema_from_dict

        click.echo(schema_from_dict(schema).to_yaml())


@data.command("diff")
@click.argument("name")
@click.argument("base", type=click.IntRange(min=1))
@click.argument("other", type=click.IntRange(min=1))
@json_option
@pass_state
def diff(state: CliState, name: str, base: int, other: int, as_json: bool) -> None:
    """Show what changed from version BASE to version OTHER of dataset NAME."""
    result = _service(state).diff(name, base, other)
    if as_json:
        emit_json(result)
        return
    for key, change in result["metadata"].items():
        click.echo(f"{key}: {change['base']} -> {change['other']}")
    if not result["metadata"]:
        note("The two versions hold the same content.")
    t = table("column", "status", "moved", "psi")
    for c in result.get("profile", {}).get("columns", []):
        if c["status"] == "unchanged":
            continue
        moved = "; ".join(
            f"{k} {v.get('base')} -> {v.get('other')}" for k, v in c["changes"].items()
        )
        psi = c["distance"].get("psi")
        t.add_row(
            esc(c["column"]), c["status"], truncate(moved, 90), "" if psi is None else f"{psi:.3f}"
        )
    print_table(t, empty="No column changed.")


@data.command("get")
@click.argument("name")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@version_option
@json_option
@pass_state
def get(state: CliState, name: str, dest: Path, version: int | None, as_json: bool) -> None:
    """Download a version's files into folder DEST."""
    svc = _service(state)
    v = svc.get(name, version)
    svc.download(name, v.version, dest)
    if as_json:
        emit_json({"uri": v.uri, "path": str(dest)})
        return
    click.echo(f"Downloaded {v.uri} to {dest}.")


@data.command("validate")
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@version_option
@click.option(
    "--environment",
    default=None,
    metavar="ENV",
    help="Check only the columns the schema expects in ENV (e.g. serving).",
)
@click.option(
    "--schema",
    "schema_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Validate against this schema YAML file instead of the dataset's.",
)
@click.option(
    "--html",
    "html_out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the report as an HTML page here.",
)
@json_option
@pass_state
def validate(
    state: CliState,
    name: str,
    file: Path,
    version: int | None,
    environment: str | None,
    schema_file: Path | None,
    html_out: Path | None,
    as_json: bool,
) -> None:
    """Check FILE against the schema of dataset NAME; exit 1 on an error-severity anomaly."""
    from shipyard.data.schema import load_schema

    schema = None
    if schema_file is not None:
        schema = load_schema(read_file(schema_file), str(schema_file))
    report = _service(state).validate(
        name, file, version=version, environment=environment, schema=schema
    )
    if html_out is not None:
        from shipyard.data.report import validation_html

        write_file(html_out, validation_html(report, f"Validation of {file.name}"))
    if as_json:
        emit_json(report.to_dict())
    else:
        t = table("column", "kind", "severity", "count", "fraction", "examples")
        for a in report.anomalies:
            rows = ", ".join(str(e.get("row", e.get("value"))) for e in a.examples)
            t.add_row(
                esc(a.column or ""),
                a.kind,
                a.severity,
                str(a.count),
                f"{a.fraction:.4f}",
                truncate(rows),
            )
        print_table(t, empty=f"No anomalies in {report.num_rows} rows.")
    if not report.ok:
        raise click.exceptions.Exit(1)


@data.command("profile")
@click.argument("name")
@version_option
@click.option(
    "--file",
    "file",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Profile this file instead, and compare it with the version (training-serving skew).",
)
@click.option(
    "--html",
    "html_out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="With --file: also write the comparison as an HTML page here.",
)
@json_option
@pass_state
def profile(
    state: CliState,
    name: str,
    version: int | None,
    file: Path | None,
    html_out: Path | None,
    as_json: bool,
) -> None:
    """Show a version's per-column profile, or with --file the skew of FILE against it."""
    svc = _service(state)
    if file is not None:
        result = svc.skew(name, file, version=version)
        if html_out is not None:
            from shipyard.data.report import profile_diff_html

            write_file(html_out, profile_diff_html(result, f"Skew of {file.name}"))
        if as_json:
            emit_json(result.to_dict())
            return
        t = table("column", "status", "psi", "drifted")
        for c in result.columns:
            psi = c.distance.get("psi")
            t.add_row(
                esc(c.column),
                c.status,
                "" if psi is None else f"{psi:.3f}",
                "yes" if c.drifted else "",
            )
        print_table(t, empty="No columns.")
        return
    summary = svc.profile(name, version).summary()
    if as_json:
        emit_json(summary)
        return
    t = table("column", "type", "count", "nulls", "distinct", "mean", "std", "min", "max", "top")
    for c in summary["columns"]:
        fmt = lambda x: "" if x is None else f"{x:.6g}"  # noqa: E731
        top = ", ".join(f"{e['value']} ({e['count']})" for e in c.get("top", [])[:3])
        t.add_row(esc(c["name"]), c["type"], str(c["count"]), str(c["nulls"]), str(c["distinct"]),
                  fmt(c.get("mean")), fmt(c.get("std")), fmt(c.get("min")), fmt(c.get("max")),
                  truncate(top))  # fmt: skip
    print_table(t, empty="No columns.")


@data.command("schema")
@click.argument("name")
@version_option
@click.option(
    "--set",
    "set_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Keep this YAML file as the dataset's user-edited schema.",
)
@click.option(
    "--unset", is_flag=True, help="Forget the user-edited schema (fall back to the inferred one)."
)
@json_option
@pass_state
def schema(
    state: CliState,
    name: str,
    version: int | None,
    set_file: Path | None,
    unset: bool,
    as_json: bool,
) -> None:
    """Print the schema of dataset NAME as YAML (to edit and keep in git), or set it."""
    svc = _service(state)
    if set_file is not None or unset:
        svc.set_schema(name, None if unset else set_file)
        note(f"Schema of {name!r} {'cleared' if unset else 'set from ' + str(set_file)}.")
        return
    s = svc.schema(name, version)
    if as_json:
        emit_json(s.to_dict())
        return
    click.echo(s.to_yaml(), nl=False)
