"""``shipyard features``: apply with a diff, list, show, materialize, schedule; errors are one
readable line."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tests.cli.conftest import Shipyard
from tests.features.conftest import Generated
from tests.features.test_definitions import write_defs


def test_apply_list_show_materialize(tmp_path: Path, generated: Generated) -> None:
    sy = Shipyard(tmp_path / "home")
    defs = write_defs(tmp_path, generated.path)
    dry = sy("features", "apply", str(defs), "--dry-run")
    assert "+ feature view customer_stats" in dry.stdout
    assert sy.json("features", "list")["definitions"] == []
    applied = sy("features", "apply", str(defs))
    assert "+ feature service churn" in applied.stdout
    assert "No changes" in sy("features", "apply", str(defs)).stdout
    changed = sy.json("features", "apply", str(write_defs(tmp_path, generated.path, 2)))
    assert changed["changes"][0]["diff"][1] == "    ttl_seconds: 43200.0 -> 7200.0"
    listed = sy.json("features", "list")["definitions"]
    assert [(d["kind"], d["name"], d["version"]) for d in listed] == [
        ("entity", "customer", 1),
        ("feature_service", "churn", 1),
        ("feature_view", "customer_stats", 2),
        ("on_demand_feature_view", "basket", 1),
    ]
    table = sy("features", "list").stdout
    assert "customer_stats" in table
    assert "spend, orders, tier" in table
    window = sy.json("features", "materialize", "--start", "2026-01-02T00:00:00+00:00",
                     "--end", "2026-01-03T00:00:00+00:00")["materializations"]  # fmt: skip
    start, end = datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 3, tzinfo=UTC)
    in_window = {r["customer_id"] for r in generated.rows if start <= r["ts"] <= end}
    assert [(m["view"], m["mode"], m["rows"]) for m in window] == [
        ("customer_stats", "range", len(in_window))]  # fmt: skip
    mats = sy.json("features", "materialize", "--end", "2026-01-04T00:00:00")["materializations"]
    assert mats[0]["view"] == "customer_stats"
    assert mats[0]["rows"] > 0
    again = sy.json(
        "features", "materialize", "customer_stats", "--incremental", "--end", "2026-01-04"
    )
    assert again["materializations"][0]["mode"] == "incremental"
    shown = sy.json("features", "show", "customer_stats")
    assert shown["version"] == 2
    assert shown["materializations"][0]["mode"] == "incremental"
    assert "ttl_seconds" in sy("features", "show", "customer_stats").stdout
    history = sy.json("features", "show", "customer_stats", "--history")["versions"]
    assert [v["version"] for v in history] == [2, 1]
    assert all(v["user_id"] for v in history)  # who applied each version
    sched = sy.json("features", "schedule", "hourly", "--cron", "0 * * * *")
    assert sched["reference"] == "shipyard.features.schedule:materialize_pipeline"


def test_errors_are_one_line(tmp_path: Path) -> None:
    sy = Shipyard(tmp_path / "home")
    for args, needle in [
        (("features", "apply", str(tmp_path / "missing.py")), "does not exist"),
        (("features", "show", "nope"), "No definition named 'nope'"),
        (("features", "materialize"), "no online feature views are applied"),
        (("features", "apply", "no_such_module_xyz"), "can't import module"),
    ]:
        message = sy.fails(*args)
        assert needle in message
        assert len(message.strip().splitlines()) == 1, message


def test_a_definitions_file_that_fails_is_the_users_error_not_an_internal_one(
    tmp_path: Path,
) -> None:
    sy = Shipyard(tmp_path / "home")
    (tmp_path / "syntax.py").write_text("x = (\n")
    (tmp_path / "boom.py").write_text("raise RuntimeError('boom')\n")
    line = sy.fails("features", "apply", str(tmp_path / "syntax.py"))
    assert line.startswith("Error: can't load ")
    assert "SyntaxError" in line
    assert "Fix the file" in line
    line = sy.fails("features", "apply", str(tmp_path / "boom.py"))
    assert "RuntimeError: boom" in line
    assert "Internal error" not in line
