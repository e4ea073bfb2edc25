"""The run context: the git remote is recorded without the credentials a clone URL may hold."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from shipyard.tracking import context


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.mark.parametrize(
    ("remote", "recorded"),
    [
        (
            "https://alice:ghp_s3cret@github.com/org/repo.git",
            "https://github.com/org/repo.git",
        ),
        ("https://ghp_s3cret@github.com/org/repo.git", "https://github.com/org/repo.git"),
        ("https://github.com/org/repo.git", "https://github.com/org/repo.git"),
        ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
        ("ssh://git@github.com/org/repo.git", "ssh://git@github.com/org/repo.git"),
    ],
)
def test_the_git_remote_is_recorded_without_credentials(
    tmp_path: Path, remote: str, recorded: str
) -> None:
    _git(tmp_path, "init", "-q")
    _git(
        tmp_path,
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@e",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "init",
    )
    _git(tmp_path, "remote", "add", "origin", remote)
    script = tmp_path / "train.py"
    script.write_text("print('hi')\n")
    tags = context.git_tags(str(script))
    assert tags[context.GIT_REPO_TAG] == recorded
    assert "s3cret" not in "".join(tags.values())
