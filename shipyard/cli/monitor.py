"""``shipyard monitor``: drift between two tables, monitors over serving logs, alert rules and
alerts, reports.

Every command calls one function of :mod:`shipyard.monitoring`.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Any

import click

from shipyard.cli._context import CliState, FiniteRange, pass_state
from shipyard.cli._output import (
    emit_json,
    esc,
    format_time,
    is_terminal,
    json_option,
    note,
    print_table,
    table,
    write_file,
)
from shipyard.entities import DATASETS_URI, parse_dataset_uri
from shipyard.errors import InvalidInput


@click.group()
def monitor() -> None:
    """Detect drift, watch deployments window by window, alert, report."""


def _table_arg(state: CliState, ref: str) -> Any:
    """A file path, or a dataset version ``datasets:/NAME[/VERSION]``."""
    if ref.startswith(DATASETS_URI):
        from shipyard.data.service import Datasets

        return Datasets(state.workspace).open(*parse_dataset_uri(ref)).to_table()
    path = Path(ref)
    if not path.exists():
        raise InvalidInput(
            f"{ref} does not exist; give a Parquet or CSV file, or a dataset version as "
            "datasets:/NAME/VERSION."
        )
    return path


def _tests(values: tuple[str, ...]) -> str | dict[str, str] | None:
    if not values:
        return None
    out: dict[str, str] = {}
    for v in values:
        if "=" not in v:
            if len(values) == 1:
                return v
            raise InvalidInput(f"--test {v!r}: write COLUMN=TEST (or one TEST for every column).")
        column, _, test = v.partition("=")
        out[column.strip()] = test.strip()
    return out


@monitor.command("drift")
@click.argument("reference")
@click.argument("current")
@click.option("--column", "-c", "columns", multiple=True, help="Compare only these columns.")
@click.option(
    "--test", "tests", multiple=True,
    help="TEST for every column, or COLUMN=TEST / numeric=TEST / categorical=TEST (repeatable).",
)  # fmt: skip
@click.option(
    "--correction",
    type=click.Choice(["bonferroni", "holm", "fdr_bh"]),
    help="Correct the p-value tests for testing many columns.",
)
@click.option("--html", "html_path", type=click.Path(dir_okay=False), help="Also write HTML.")
@json_option
@pass_state
def drift_cmd(
    state: CliState,
    reference: str,
    current: str,
    columns: tuple[str, ...],
    tests: tuple[str, ...],
    correction: str | None,
    html_path: str | None,
    as_json: bool,
) -> None:
    """Compare CURRENT with REFERENCE column by column (Parquet/CSV files or
    datasets:/NAME/VERSION)."""
    from shipyard.monitoring.drift import compare

    ref, cur = _table_arg(state, reference), _table_arg(state, current)
    with _busy("Comparing columns", enabled=not as_json):
        report = compare(
            ref, cur, columns=list(columns) or None, tests=_tests(tests), correction=correction
        )
    if html_path:
        from shipyard.monitoring.report import drift_html

        write_file(
            html_path, drift_html(report, f"Drift: {current} vs {reference}"), make_folder=True
        )
    if as_json:
        emit_json(report.to_dict())
        return
    t = table("Column", "Test", "Statistic", "p-value", "Threshold", "Drift")
    for c in report.columns:
        t.add_row(
            esc(c.column), c.test, _num(c.statistic), _num(c.p_value), _num(c.threshold),
            "[red]yes[/red]" if c.drifted else "no",
        )  # fmt: skip
    print_table(t, empty="No columns compared.")
    for column, why in report.skipped.items():
        note(f"Skipped column {column}: {why}.")
    verdict = "drift" if report.dataset_drift else "no dataset drift"
    note(
        f"{len(report.drifted_columns)} of {len(report.columns)} columns drifted "
        f"(share {report.share_drifted:.2f}): {verdict}."
    )


def _busy(text: str, *, enabled: bool) -> Any:
    """A spinner on stderr while long work runs (on a terminal only)."""
    import contextlib

    if not (enabled and is_terminal(sys.stderr)):
        return contextlib.nullcontext()
    from shipyard.cli._output import console

    return console(stderr=True).status(text)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _span(value: str) -> dict[str, int]:
    start, sep, end = value.partition(":")
    try:
        return {"start": int(start), "end": int(end)} if sep else {"start": int(start)}
    except ValueError:
        raise InvalidInput(
            f"--reference-window {value!r}: write START:END in epoch milliseconds."
        ) from None


@monitor.command("create")
@click.argument("name")
@click.option("--endpoint", required=True, help="The endpoint whose prediction log to watch.")
@click.option("--reference-model", help="models:/NAME/VERSION (or @ALIAS): the dataset version "
              "that model version was trained on, from its lineage.")  # fmt: skip
@click.option("--reference-dataset", help="NAME or NAME:VERSION: the training data version.")
@click.option("--reference-window", help="START:END (epoch ms) of the endpoint's own log.")
@click.option("--window-rows", type=int, help="Windows of this many predictions.")
@click.option(
    "--window-seconds", type=FiniteRange(min=0), help="Tumbling windows of this many seconds."
)
@click.option("--label-delay", type=FiniteRange(min=0), default=0.0, show_default=True,
              help="Seconds to wait after a window's last prediction, for labels to arrive.")  # fmt: skip
@click.option("--model", help="The model the endpoint serves (recorded in alerts).")
@click.option("--deployment", help="The deployment watched [default: the endpoint].")
@click.option("--task", type=click.Choice(["classification", "regression"]),
              help="The model's task, for performance metrics once labels arrive.")  # fmt: skip
@click.option("--target", help="The label column of the reference dataset.")
@click.option("--feature", "features", multiple=True, help="Watch only these features.")
@click.option("--segment", "segments", multiple=True, help="Break performance down by these.")
@click.option("--test", "tests", multiple=True, help="As for `monitor drift`.")
@click.option("--correction", type=click.Choice(["bonferroni", "holm", "fdr_bh"]),
              help="Correct the p-value tests for testing many columns.")  # fmt: skip
@click.option("--interval", type=int, default=300, show_default=True,
              help="Seconds between scheduled runs on the server.")  # fmt: skip
@click.option("--classes", help="A,B,C: the class labels of probability predictions, in the "
              "order of the model's columns (model.classes_), or a JSON list.")  # fmt: skip
@json_option
@pass_state
def create_cmd(
    state: CliState,
    name: str,
    endpoint: str,
    reference_model: str | None,
    reference_dataset: str | None,
    reference_window: str | None,
    window_rows: int | None,
    window_seconds: float | None,
    label_delay: float,
    model: str | None,
    deployment: str | None,
    task: str | None,
    target: str | None,
    features: tuple[str, ...],
    segments: tuple[str, ...],
    tests: tuple[str, ...],
    correction: str | None,
    interval: int,
    classes: str | None,
    as_json: bool,
) -> None:
    """Create monitor NAME over an endpoint's serving windows."""
    from shipyard.monitoring.monitors import create_monitor, monitor_dict

    given = [r for r in (reference_model, reference_dataset, reference_window) if r is not None]
    if len(given) != 1:
        raise InvalidInput(
            "give one of --reference-model models:/NAME/VERSION, --reference-dataset "
            "NAME[:VERSION] or --reference-window START:END."
        )
    if (window_rows is None) == (window_seconds is None):
        raise InvalidInput("give one of --window-rows N or --window-seconds S.")
    reference: dict[str, Any]
    if reference_model is not None:
        reference = {"model": reference_model}
    elif reference_dataset is not None:
        ds, _, version = reference_dataset.partition(":")
        reference = {"dataset": ds}
        if version:
            if not version.isdigit():
                raise InvalidInput(f"--reference-dataset {reference_dataset!r}: NAME:VERSION.")
            reference["version"] = int(version)
    else:
        reference = {"window": _span(str(reference_window))}
    window: dict[str, Any] = (
        {"rows": window_rows} if window_rows is not None else {"seconds": window_seconds}
    )
    if label_delay:
        window["label_delay_s"] = label_delay
    m = create_monitor(
        state.workspace, name, endpoint=endpoint, reference=reference, window=window,
        model=model, deployment=deployment, task=task, target=target,
        features=list(features) or None, segments=list(segments), tests=_tests(tests),
        correction=correction, interval_s=interval,
        classes=_classes(classes) if classes is not None else None,
    )  # fmt: skip
    if as_json:
        emit_json(monitor_dict(m))
        return
    note(f"Created monitor {m.name} on endpoint {m.endpoint}.")


def _classes(value: str) -> list[Any]:
    """``--classes``: a JSON list, or labels separated by commas (numbers read as numbers,
    true/false as booleans)."""
    import json
    import math

    if value.lstrip().startswith("["):
        try:
            return list(json.loads(value))
        except ValueError as e:
            raise InvalidInput(f"--classes {value!r} is not a JSON list: {e}.") from None
    out: list[Any] = []
    for item in (v.strip() for v in value.split(",")):
        if not item:
            raise InvalidInput(
                f"--classes {value!r} has an empty label: write A,B,C, or a JSON list such as "
                '\'["a,b", "c"]\' for labels that hold commas.'
            )
        if item.lower() in ("true", "false"):  # a boolean label, as feedback sends true/false
            out.append(item.lower() == "true")
            continue
        try:
            number = json.loads(item)
        except ValueError:
            number = None
        is_number = isinstance(number, int | float) and not isinstance(number, bool)
        out.append(number if is_number and math.isfinite(number) else item)
    return out


@monitor.command("list")
@json_option
@pass_state
def list_cmd(state: CliState, as_json: bool) -> None:
    """List monitors with their latest window."""
    from shipyard.monitoring.monitors import list_monitors

    monitors = list_monitors(state.workspace)
    if as_json:
        emit_json(monitors)
        return
    t = table("Name", "Endpoint", "Window", "Enabled", "Last run", "Drift share", "Alerts")
    ws = state.workspace
    for m in monitors:
        latest = (m["latest"] or {}).get("metrics", {})
        open_alerts = len(ws.monitors.list_alerts(status="open", monitor=m["name"]))
        t.add_row(
            esc(m["name"]), esc(m["endpoint"]), esc(m["window"]), "yes" if m["enabled"] else "no",
            format_time(m["last_run_time"]), _num(latest.get("drift_share")), str(open_alerts),
        )  # fmt: skip
    print_table(t, empty="No monitors; create one with `shipyard monitor create`.")


@monitor.command("delete")
@click.argument("name")
@pass_state
def delete_cmd(state: CliState, name: str) -> None:
    """Delete monitor NAME and its results (alerts are kept)."""
    state.workspace.monitors.delete_monitor(name)
    note(f"Deleted monitor {name}.")


@monitor.command("run")
@click.argument("names", nargs=-1)
@click.option("--partial", is_flag=True, help="Also compute the trailing incomplete window.")
@click.option("--settle", type=FiniteRange(min=0), default=None,
              help="Seconds a window waits after its end before it is done, for prediction-log "
              "rows written late [default: 5]; 0 once the model servers have stopped.")  # fmt: skip
@json_option
@pass_state
def run_cmd(
    state: CliState, names: tuple[str, ...], partial: bool, settle: float | None, as_json: bool
) -> None:
    """Compute the new windows of monitors NAMES (default: every enabled monitor) now."""
    from shipyard.monitoring.monitors import LOG_SETTLE_S, run_monitor

    settle_s = LOG_SETTLE_S if settle is None else settle
    from shipyard.monitoring.report import performance_notes

    ws = state.workspace
    targets = list(names) or [m.name for m in ws.monitors.list_monitors() if m.enabled]
    outcomes = []
    show = is_terminal(sys.stderr) and not as_json
    if show:
        from rich.progress import Progress

        from shipyard.cli._output import console

        with Progress(console=console(stderr=True), transient=True) as progress:
            task = progress.add_task("monitors", total=len(targets))
            for name in targets:
                outcomes.append(run_monitor(ws, name, partial=partial, settle_s=settle_s))
                progress.advance(task)
    else:
        outcomes = [run_monitor(ws, name, partial=partial, settle_s=settle_s) for name in targets]
    if as_json:
        emit_json([o.to_dict() for o in outcomes])
        return
    t = table("Monitor", "Windows", "Rows", "Drift share", "Alerts fired")
    for o in outcomes:
        last = o.results[-1].metrics if o.results else {}
        t.add_row(
            esc(o.monitor), str(len(o.results)), str(sum(r.num_rows for r in o.results)),
            _num(last.get("drift_share")), ", ".join(esc(a.rule) for a in o.alerts) or "-",
        )  # fmt: skip
    print_table(t, empty="No monitors to run; create one with `shipyard monitor create`.")
    for o in outcomes:
        for text in dict.fromkeys(n for r in o.results for n in performance_notes(r.details)):
            note(f"Monitor {o.monitor}: {text}.")


@monitor.command("results")
@click.argument("name")
@click.option(
    "--limit", type=int, default=20, show_default=True, help="Windows shown, newest first."
)
@json_option
@pass_state
def results_cmd(state: CliState, name: str, limit: int, as_json: bool) -> None:
    """Show monitor NAME's latest window results."""
    from shipyard.monitoring.monitors import results_over_time
    from shipyard.monitoring.report import performance_notes

    results = results_over_time(state.workspace, name, max_results=limit)
    if as_json:
        emit_json(results)
        return
    keys = ("drift_share", "prediction_drift", "missing_rate", "accuracy", "rmse", "error_rate",
            "latency_p95_ms")  # fmt: skip
    t = table("Window end", "Rows", *keys)
    for r in results:
        t.add_row(format_time(r["window_end"]), str(r["num_rows"]),
                  *(_num(r["metrics"].get(k)) for k in keys))  # fmt: skip
    print_table(t, empty=f"No results yet; run `shipyard monitor run {name}`.")
    for latest in state.workspace.monitors.list_results(name, max_results=1):
        for text in performance_notes(latest.details):
            note(f"Latest window: {text}.")


@monitor.command("report")
@click.argument("name")
@click.option("--output", "-o", type=click.Path(dir_okay=False),
              help="HTML file to write [default: NAME-report.html].")  # fmt: skip
@click.option("--limit", type=int, default=200, show_default=True, help="Windows shown.")
@json_option
@pass_state
def report_cmd(state: CliState, name: str, output: str | None, limit: int, as_json: bool) -> None:
    """Write monitor NAME's report: HTML (drift table with distribution overlays, metrics over
    time, alerts), or JSON on stdout with --json."""
    from shipyard.monitoring.monitors import alert_dict, monitor_dict, result_dict
    from shipyard.monitoring.report import monitor_html, monitor_report

    ws = state.workspace
    m = ws.monitors.get_monitor(name)
    results = ws.monitors.list_results(name, max_results=limit)
    rows = [result_dict(r, details=(i == len(results) - 1)) for i, r in enumerate(results)]
    alerts = [alert_dict(a) for a in ws.monitors.list_alerts(monitor=name)]
    report = monitor_report(monitor_dict(m), rows, alerts)
    if as_json:
        emit_json(report)
        return
    path = Path(output or f"{name}-report.html")
    write_file(path, monitor_html(report), make_folder=True)
    note(f"Wrote {path}.")


@monitor.command("rule-create")
@click.argument("name")
@click.option("--monitor", "monitor_name", required=True, help="The monitor the rule watches.")
@click.option("--metric", required=True, help="drift_share, accuracy, error_rate, drift:COL ...")
@click.option("--op", "operator", type=click.Choice([">", ">=", "<", "<="]), required=True,
              help="How the metric compares with the threshold when it breaches.")  # fmt: skip
@click.option(
    "--threshold",
    type=FiniteRange(min=None, max=None),
    required=True,
    help="The value the metric is compared with.",
)
@click.option("--for", "consecutive", type=int, default=1, show_default=True,
              help="Fire after this many breached windows in a row.")  # fmt: skip
@click.option("--cooldown", type=int, default=0, show_default=True,
              help="Seconds (window time) before a new breach may fire again.")  # fmt: skip
@click.option("--webhook", "webhooks", multiple=True, help="POST the alert as JSON here.")
@click.option("--event", is_flag=True, help="Record a Shipyard alert event (starts pipelines).")
@click.option("--no-log", is_flag=True, help="Do not log the alert.")
@click.option("--action", type=click.Choice(["retrain", "hold", "rollback"]),
              help="What the alert asks for (the deployment controller acts on hold/rollback).")  # fmt: skip
@json_option
@pass_state
def rule_create_cmd(
    state: CliState,
    name: str,
    monitor_name: str,
    metric: str,
    operator: str,
    threshold: float,
    consecutive: int,
    cooldown: int,
    webhooks: tuple[str, ...],
    event: bool,
    no_log: bool,
    action: str | None,
    as_json: bool,
) -> None:
    """Create alert rule NAME on a monitor's metric."""
    from shipyard.monitoring.alerts import create_rule

    sinks: list[dict[str, Any]] = [] if no_log else [{"kind": "log"}]
    sinks += [{"kind": "webhook", "url": u} for u in webhooks]
    if event:
        sinks.append({"kind": "event"})
    if not sinks:
        raise InvalidInput("the rule has no sink; drop --no-log or add --webhook / --event.")
    rule = create_rule(
        state.workspace, name, monitor=monitor_name, metric=metric, operator=operator,
        threshold=threshold, consecutive=consecutive, cooldown_s=cooldown, sinks=sinks,
        action=action,
    )  # fmt: skip
    if as_json:
        emit_json(_rule_dict(rule))
        return
    note(f"Created alert rule {rule.name}: {metric} {operator} {threshold} on {monitor_name}.")


def _rule_dict(rule: Any) -> dict[str, Any]:
    return {
        k: getattr(rule, k)
        for k in ("name", "monitor", "metric", "operator", "threshold", "consecutive",
                  "cooldown_s", "sinks", "action", "enabled", "in_breach", "breach_count")
    }  # fmt: skip


@monitor.command("rules")
@click.option("--monitor", "monitor_name", help="Only this monitor's rules.")
@json_option
@pass_state
def rules_cmd(state: CliState, monitor_name: str | None, as_json: bool) -> None:
    """List alert rules."""
    rules = state.workspace.monitors.list_rules(monitor_name)
    if as_json:
        emit_json([_rule_dict(r) for r in rules])
        return
    t = table("Name", "Monitor", "Condition", "For", "Cooldown", "Sinks", "Action", "Breached")
    for r in rules:
        t.add_row(
            esc(r.name), esc(r.monitor), esc(f"{r.metric} {r.operator} {r.threshold}"),
            str(r.consecutive), f"{r.cooldown_s}s", ", ".join(s["kind"] for s in r.sinks),
            r.action or "-", "yes" if r.in_breach else "no",
        )  # fmt: skip
    print_table(t, empty="No alert rules; create one with `shipyard monitor rule-create`.")


@monitor.command("rule-delete")
@click.argument("name")
@pass_state
def rule_delete_cmd(state: CliState, name: str) -> None:
    """Delete alert rule NAME (its alerts are kept)."""
    state.workspace.monitors.delete_rule(name)
    note(f"Deleted alert rule {name}.")


@monitor.command("alerts")
@click.option("--status", type=click.Choice(["open", "acknowledged", "resolved"]),
              help="Only alerts in this state.")  # fmt: skip
@click.option("--monitor", "monitor_name", help="Only this monitor's alerts.")
@click.option(
    "--limit", type=int, default=50, show_default=True, help="Alerts shown, newest first."
)
@json_option
@pass_state
def alerts_cmd(
    state: CliState, status: str | None, monitor_name: str | None, limit: int, as_json: bool
) -> None:
    """List alerts, newest first."""
    from shipyard.monitoring.monitors import list_alerts

    alerts = list_alerts(state.workspace, status=status, monitor=monitor_name, max_results=limit)
    if as_json:
        emit_json(alerts)
        return
    t = table("Id", "Fired", "Rule", "Monitor", "Value", "Status", "Action", "Acknowledged by")
    for a in alerts:
        t.add_row(
            str(a["alert_id"]), format_time(a["fired_time"]), esc(a["rule"]), esc(a["monitor"]),
            esc(f"{a['metric']} = {_num(a['value'])}"), a["status"], a["action"] or "-",
            esc(a["acknowledged_by"] or "-"),
        )  # fmt: skip
    print_table(t, empty="No alerts.")


@monitor.command("ack")
@click.argument("alert_id", type=int)
@click.option("--note", "text", help="Why, or what is being done.")
@click.option("--user", help="Who acknowledges [default: the user running the command].")
@json_option
@pass_state
def ack_cmd(
    state: CliState, alert_id: int, text: str | None, user: str | None, as_json: bool
) -> None:
    """Acknowledge alert ALERT_ID."""
    from shipyard.monitoring.alerts import acknowledge
    from shipyard.monitoring.monitors import alert_dict

    alert = acknowledge(state.workspace, alert_id, user or getpass.getuser(), text)
    if as_json:
        emit_json(alert_dict(alert))
        return
    note(f"Alert {alert_id} is {alert.status} (by {alert.acknowledged_by}).")
