"""The top-level ``shipyard`` command: help, version, the error boundary, the console script."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import click
import pytest
from click.testing import CliRunner

from shipyard._version import __version__
from shipyard.cli import _context
from shipyard.cli.main import cli, main
from shipyard.errors import NotFound
from tests.cli.conftest import Shipyard


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in sorted(group.commands.items()):
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


ALL_COMMANDS = list(_commands(cli))


def test_command_tree_is_complete() -> None:
    assert set(ALL_COMMANDS) >= {
        ("experiments", name) for name in ("list", "create", "rename", "delete", "restore")
    } | {("runs", name) for name in ("list", "show", "compare", "delete", "restore")} | {
        ("artifacts", "list"),
        ("artifacts", "get"),
        ("db", "upgrade"),
        ("db", "current"),
        ("gc",),
        ("server",),
    }


def test_help(shipyard: Shipyard) -> None:
    out = shipyard("--help").stdout
    assert "Usage: shipyard" in out
    for group in ("experiments", "runs", "artifacts", "db", "gc", "server"):
        assert group in out
    assert "SHIPYARD_HOME" in out


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=" ".join)
def test_every_command_and_option_has_help(shipyard: Shipyard, path: tuple[str, ...]) -> None:
    out = shipyard(*path, "--help").stdout
    assert out.startswith(f"Usage: shipyard {' '.join(path)}")
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    assert command.help, f"{path} has no help text"
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"option {param.opts} of {path} has no help text"


def test_version(shipyard: Shipyard) -> None:
    assert __version__ in shipyard("--version").stdout


def test_usage_error_exits_2(shipyard: Shipyard) -> None:
    result = shipyard("runs", "list", "--max-results", "0", expect=2)
    assert "Traceback" not in result.output
    result = shipyard("no-such-command", expect=2)
    assert "No such command" in result.stderr


def _raising(exc: BaseException) -> property:
    """A property that raises ``exc``: patched over ``CliState.workspace``."""

    def get(self: object) -> NoReturn:
        raise exc

    return property(get)


def test_shipyard_error_is_one_red_line(
    shipyard: Shipyard, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_context.CliState, "workspace", _raising(NotFound("Gone.\nReally gone.")))
    line = shipyard.fails("experiments", "list")
    assert line == "Error: Gone. Really gone."


def test_unexpected_error_is_one_line(shipyard: Shipyard, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_context.CliState, "workspace", _raising(ZeroDivisionError("zero")))
    line = shipyard.fails("experiments", "list")
    assert line == (
        "Internal error: ZeroDivisionError: zero (run with SHIPYARD_DEBUG=1 for the traceback)"
    )


def test_debug_shows_the_traceback(shipyard: Shipyard, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_DEBUG", "1")
    monkeypatch.setattr(_context.CliState, "workspace", _raising(ZeroDivisionError("zero")))
    with pytest.raises(ZeroDivisionError):
        shipyard("experiments", "list")


def test_ctrl_c_exits_130(shipyard: Shipyard, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_context.CliState, "workspace", _raising(KeyboardInterrupt()))
    result = shipyard("experiments", "list", expect=130)
    assert "Interrupted" in result.stderr
    assert "Traceback" not in result.output


def test_main_exits_with_the_code(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(_context.CliState, "workspace", _raising(NotFound("nope")))
    with pytest.raises(SystemExit) as info:
        main(["--home", str(tmp_path), "experiments", "list"])
    assert info.value.code == 1


def test_invalid_tracking_uri_is_an_error_line(shipyard: Shipyard) -> None:
    line = shipyard.fails("--tracking-uri", "ftp://nowhere", "experiments", "list")
    assert line.startswith("Error: Tracking URI 'ftp://nowhere' has an unknown scheme")


def test_home_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "elsewhere"))
    result = CliRunner().invoke(cli, ["experiments", "list", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "elsewhere").is_dir()


def _run_module(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shipyard", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
        env=_env(),
    )


def _env() -> dict[str, str]:
    import os

    root = str(Path(__file__).resolve().parents[2])
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env


def test_python_dash_m_shipyard(tmp_path: Path) -> None:
    proc = _run_module(
        "--home", str(tmp_path / "ws"), "experiments", "list", "--json", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert '"experiments"' in proc.stdout
    proc = _run_module("--home", str(tmp_path / "ws"), "runs", "show", "f" * 32, cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.startswith("Error: ")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr


def test_help_does_not_load_heavy_modules(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from shipyard.cli.main import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('sqlalchemy', 'rich.table', 'rich.console', 'alembic', 'httpx',\n"
        "         'shipyard.store.sql', 'shipyard.workspace', 'starlette') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
        env=_env(),
    )
    assert "HEAVY []" in proc.stdout, proc.stdout + proc.stderr


def test_the_users_paths_files_and_numbers_are_error_lines(
    shipyard: Shipyard, tmp_path: Path
) -> None:
    """A folder that is a file, a file that is not UTF-8 text, a number too large to store: one
    ``Error:`` line that names the cause, not ``Internal error: <type>``."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    line = shipyard.fails("backup", str(blocker / "sub" / "backup.tar"))
    assert line.startswith(f"Error: {blocker / 'sub'}")
    assert "Not a directory" in line
    latin = tmp_path / "spec.yaml"
    latin.write_bytes(b"name: \xff\xfe\n")
    assert "is not UTF-8 text (byte 0xff" in shipyard.fails("deploy", "apply", str(latin))
    assert "a number is too large" in shipyard.fails(
        "gc", "--older-than", "9999999999999d", "--dry-run"
    )


@pytest.mark.parametrize(
    "args",
    [
        ("scheduler", "--interval", "nan"),
        ("controller", "--poll-interval", "inf", "--no-scheduler"),
        ("serve", "models:/m/1", "--max-batch-wait-ms", "nan"),
        ("serve", "models:/m/1", "--poll-interval", "1e30"),
        ("monitor", "run", "--settle", "-inf"),
    ],
)
def test_numbers_that_are_not_finite_are_usage_errors(
    shipyard: Shipyard, args: tuple[str, ...]
) -> None:
    """nan made the pollers spin at 100% CPU and the batcher never answer; 1e30 overflowed."""
    result = shipyard(*args, expect=2)
    assert "is not a finite number" in result.stderr or "is not in the range" in result.stderr


def test_a_closed_pipe_exits_quietly(tmp_path: Path) -> None:
    """``shipyard runs show RUN | head -1`` printed ``Internal error: BrokenPipeError``."""
    from shipyard.config import Settings
    from shipyard.workspace import Workspace

    env = {**os.environ, "SHIPYARD_HOME": str(tmp_path / "home")}
    with Workspace.open(Settings.from_env({}, home=tmp_path / "home")) as ws:
        run_id = ws.store.create_run("0").info.run_id
        for k in range(10):  # a table far larger than the pipe's 64 KiB buffer
            ws.store.log_batch(run_id, params={f"p{k}_{j}": "v" * 80 for j in range(100)})
    reader = subprocess.Popen(
        f"{sys.executable} -m shipyard runs show {run_id} | head -1 > /dev/null; "
        "exit ${PIPESTATUS[0]}",
        shell=True, executable="/bin/bash", env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _, err = reader.communicate(timeout=60)
    assert err == ""
    assert reader.returncode in (0, 1)
