"""Keep the documentation honest.

* every CLI command and group has ``--help`` text and is described in ``docs/cli.md``, with each
  of its options;
* every ```` ```python ```` block of the README and of ``docs/*.md`` runs, in a fresh temp folder
  with a fresh ``SHIPYARD_HOME`` (a ``<!-- no-test -->`` line just before the fence skips a block
  that needs a server or is only a signature);
* every error code in :data:`shipyard.errors.ERROR_CLASSES` is described in ``docs/errors.md``;
* every environment variable :meth:`Settings.from_env` reads is described in
  ``docs/configuration.md`` and in the README;
* every extra in ``pyproject.toml`` is named in the README, and every relative link resolves.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from shipyard.cli.main import cli
from shipyard.config import Settings
from shipyard.errors import ERROR_CLASSES

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
NO_TEST = "<!-- no-test -->"
DOC_PAGES = (
    "index", "tracking", "configuration", "server", "cli", "storage", "errors", "registry",
    "pipelines", "data", "serving", "monitoring", "deploy", "features", "ui", "security",
    "deployment",
)  # fmt: skip


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------ CLI


def _walk(
    command: click.Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from _walk(sub, (*path, name))


COMMANDS = [(path, cmd) for path, cmd in _walk(cli) if path]


def _id(path: tuple[str, ...]) -> str:
    return " ".join(path)


def test_the_cli_has_commands() -> None:
    names = {_id(p) for p, _ in COMMANDS}
    assert {"server", "gc", "db upgrade", "runs list", "experiments create"} <= names


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[_id(p) for p, _ in COMMANDS])
def test_every_command_has_help_and_is_documented(
    path: tuple[str, ...], command: click.Command
) -> None:
    assert (command.help or "").strip(), f"`shipyard {_id(path)}` has no help text"
    result = CliRunner().invoke(cli, [*path, "--help"], prog_name="shipyard")
    assert result.exit_code == 0, result.output
    assert "Usage: shipyard " + _id(path) in result.output

    cli_doc = _read(DOCS / "cli.md")
    assert f"shipyard {_id(path)}" in cli_doc, (
        f"docs/cli.md does not describe `shipyard {_id(path)}`"
    )
    for param in command.params:
        if isinstance(param, click.Option) and param.name != "help":
            for opt in param.opts:
                if opt.startswith("--"):
                    assert f"`{opt}" in cli_doc, (
                        f"docs/cli.md does not describe option {opt} of `shipyard {_id(path)}`"
                    )


def test_global_options_are_documented() -> None:
    cli_doc = _read(DOCS / "cli.md")
    for param in cli.params:
        for opt in param.opts:
            if opt.startswith("--"):
                assert f"`{opt}" in cli_doc, f"docs/cli.md does not describe global option {opt}"


# ------------------------------------------------------------------------------- code examples


@dataclass(frozen=True)
class Block:
    file: Path
    line: int
    code: str
    skip: bool

    @property
    def id(self) -> str:
        return f"{self.file.relative_to(ROOT)}:{self.line}"


def python_blocks(path: Path) -> list[Block]:
    """The ```python fenced blocks of a Markdown file, each flagged if `<!-- no-test -->` is the
    last non-blank line before its fence."""
    lines = _read(path).splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            start = i
            previous = next((ln.strip() for ln in reversed(lines[:start]) if ln.strip()), "")
            i += 1
            body: list[str] = []
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            assert i < len(lines), f"{path}:{start + 1}: unclosed ```python block"
            blocks.append(Block(path, start + 1, "\n".join(body) + "\n", previous == NO_TEST))
        i += 1
    return blocks


DOC_FILES = [README, *(DOCS / f"{name}.md" for name in DOC_PAGES)]
BLOCKS = [b for f in DOC_FILES if f.exists() for b in python_blocks(f)]


def test_the_readme_has_a_tested_sdk_example() -> None:
    readme = [b for b in BLOCKS if b.file == README]
    assert any(not b.skip and "shipyard.start_run" in b.code for b in readme)


def _clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPYARD_", "MLFLOW_"))}
    env.update(
        SHIPYARD_HOME=str(home),
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
        PYTHONWARNINGS="error::DeprecationWarning:shipyard",
    )
    return env


@pytest.mark.parametrize("block", [b for b in BLOCKS if not b.skip], ids=lambda b: b.id)
def test_python_examples_run(block: Block, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(block.code, encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=work,
        env=_clean_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, (
        f"the example at {block.id} failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    )
    assert not (work / ".shipyard").exists(), "the example ignored SHIPYARD_HOME"


# ------------------------------------------------------------------------ errors and settings


@pytest.mark.parametrize("code", sorted(ERROR_CLASSES))
def test_every_error_code_is_documented(code: str) -> None:
    errors_doc = _read(DOCS / "errors.md")
    cls = ERROR_CLASSES[code]
    assert f"`{code}`" in errors_doc, f"docs/errors.md does not mention {code}"
    assert f"`{cls.__name__}`" in errors_doc, f"docs/errors.md does not mention {cls.__name__}"
    row = next(
        (ln for ln in errors_doc.splitlines() if ln.startswith(f"| `{cls.__name__}` |")), None
    )
    assert row is not None, f"docs/errors.md has no table row for {cls.__name__}"
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == f"`{code}`", row
    assert cells[3] == str(cls.http_status), row
    assert cells[4].startswith(f"`{cls.mlflow_code}`"), row


class _Recorder(Mapping[str, str]):
    """An empty environment that remembers which variables were asked for."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        raise KeyError(key)

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        self.asked.add(key)
        return default

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.asked.add(key)
        return False

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def settings_variables() -> set[str]:
    env = _Recorder()
    Settings.from_env(env)
    return env.asked


def test_settings_variables_are_found() -> None:
    assert {"SHIPYARD_HOME", "SHIPYARD_TRACKING_URI", "SHIPYARD_ARTIFACT_URI"} <= (
        settings_variables()
    )


@pytest.mark.parametrize("name", sorted(settings_variables()))
def test_every_setting_is_documented(name: str) -> None:
    config_doc = _read(DOCS / "configuration.md")
    assert f"| `{name}` |" in config_doc, f"docs/configuration.md has no table row for {name}"
    readme = _read(README)
    short = name.rsplit("_", 1)[-1]
    assert name in readme or f"`_{short}`" in readme, f"README.md does not mention {name}"


# ----------------------------------------------------------------------------- README, links


def test_readme_opens_with_the_two_commands() -> None:
    lines = _read(README).splitlines()
    first_block = lines[lines.index("```bash") + 1 : lines.index("```bash") + 3]
    assert first_block == ["scripts/demo", "scripts/test"]
    assert lines.index("```bash") < 4


def test_every_extra_is_named_in_the_readme() -> None:
    extras = tomllib.loads(_read(ROOT / "pyproject.toml"))["project"]["optional-dependencies"]
    readme = _read(README)
    for extra in extras:
        assert f"[{extra}]" in readme or f"`{extra}`" in readme, (
            f"README.md does not mention the extra {extra!r}"
        )


_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("page", DOC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    for target in _LINK.findall(_read(page)):
        if "://" in target or target.startswith("mailto:"):
            continue
        if target == "bench/README.md" or target.endswith("/bench/README.md"):
            continue  # written with the benchmark harness
        assert (page.parent / target).exists(), f"{page.name} links to missing {target}"
