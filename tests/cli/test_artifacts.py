"""``shipyard artifacts``."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest

from shipyard.cli import artifacts as artifacts_cli
from shipyard.workspace import Workspace
from tests.cli.conftest import Seeded, Shipyard


def test_list(shipyard: Shipyard, seeded: Seeded) -> None:
    out = shipyard("artifacts", "list", seeded.run_a).stdout
    assert "notes.txt" in out
    assert "5 B" in out
    assert "model/" in out
    data = shipyard.json("artifacts", "list", seeded.run_a)
    assert data["run_id"] == seeded.run_a
    assert {a["path"] for a in data["artifacts"]} == {"notes.txt", "model"}
    inside = shipyard.json("artifacts", "list", seeded.run_a, "model")["artifacts"]
    assert [(a["path"], a["file_size"]) for a in inside] == [("model/weights.bin", 2048)]
    everything = shipyard.json("artifacts", "list", seeded.run_a, "--recursive")["artifacts"]
    assert {a["path"] for a in everything} == {"notes.txt", "model", "model/weights.bin"}
    assert "2.0 KiB" in shipyard("artifacts", "list", seeded.run_a, "-r").stdout


def test_list_empty(shipyard: Shipyard, seeded: Seeded) -> None:
    out = shipyard("artifacts", "list", seeded.run_c).stdout
    assert out.strip() == f"No artifacts in run {seeded.run_c}."


def test_get_file(shipyard: Shipyard, seeded: Seeded, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    out = shipyard("artifacts", "get", seeded.run_a, "notes.txt", "--dest", str(dest)).stdout
    assert "Downloaded 1 file (5 B)" in out
    assert (dest / "notes.txt").read_bytes() == b"hello"
    assert not list(dest.glob(".*.part"))


def test_get_folder_json(shipyard: Shipyard, seeded: Seeded, tmp_path: Path) -> None:
    data = shipyard.json("artifacts", "get", seeded.run_a, "model", "-d", str(tmp_path / "o"))
    assert data["files"] == 1
    assert data["bytes"] == 2048
    assert Path(data["local_path"]) == (tmp_path / "o" / "model").absolute()
    assert (tmp_path / "o" / "model" / "weights.bin").stat().st_size == 2048


def test_get_everything_into_cwd(shipyard: Shipyard, seeded: Seeded, tmp_path: Path) -> None:
    out = shipyard("artifacts", "get", seeded.run_a).stdout
    assert "Downloaded 2 files" in out
    assert (tmp_path / "artifacts" / "notes.txt").read_bytes() == b"hello"
    assert (tmp_path / "artifacts" / "model" / "weights.bin").exists()


def test_get_missing(shipyard: Shipyard, seeded: Seeded) -> None:
    line = shipyard.fails("artifacts", "get", seeded.run_a, "nope.txt")
    assert line.startswith("Error: Run ")
    assert "no artifact 'nope.txt'" in line
    assert f"shipyard artifacts list {seeded.run_a}" in line
    line = shipyard.fails("artifacts", "get", seeded.run_c)
    assert "has no artifacts" in line
    assert shipyard.fails("artifacts", "list", "f" * 32).startswith("Error: No run")


def test_get_large_file_with_progress(
    shipyard: Shipyard,
    seeded: Seeded,
    tmp_path: Path,
    open_workspace: Callable[[], Workspace],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The progress path reads through the progress wrapper and writes the same bytes."""
    payload = bytes(range(256)) * 8192  # 2 MiB
    open_workspace().artifacts.upload(seeded.run_c, "big.bin", io.BytesIO(payload))
    monkeypatch.setattr(artifacts_cli, "PROGRESS_THRESHOLD", 1024)
    monkeypatch.setattr(artifacts_cli, "is_terminal", lambda stream: True)
    result = shipyard("artifacts", "get", seeded.run_c, "big.bin", "-d", str(tmp_path / "big"))
    assert (tmp_path / "big" / "big.bin").read_bytes() == payload
    assert "Downloaded 1 file (2.0 MiB)" in result.stdout
