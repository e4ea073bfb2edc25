"""``shipyard monitor drift`` tells why a column was not compared (an all-empty CSV column is
typed null: it has no values, not an unsupported type)."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import Shipyard


def test_drift_says_why_columns_were_skipped(tmp_path: Path) -> None:
    (tmp_path / "ref.csv").write_text("a,b\n,x\n,y\n")
    (tmp_path / "cur.csv").write_text("a,b\n1,x\n2,y\n")
    sy = Shipyard(tmp_path / "home")
    out = sy("monitor", "drift", str(tmp_path / "ref.csv"), str(tmp_path / "cur.csv"))
    assert "Skipped column a: no values in the reference data." in out.stderr
    assert "0 of 1 columns drifted" in out.stderr
