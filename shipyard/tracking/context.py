"""What a run records about where it came from: user, source file, git state, Python, packages.

Tag names follow MLflow's (``mlflow.user``, ``mlflow.source.*``) so runs look the same to MLflow
clients; Shipyard's additions live under ``shipyard.*``. Everything here is best-effort: a missing
git binary or an unreadable package never stops a run.
"""

from __future__ import annotations

import getpass
import os
import platform
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

USER_TAG = "mlflow.user"
SOURCE_NAME_TAG = "mlflow.source.name"
SOURCE_TYPE_TAG = "mlflow.source.type"
GIT_COMMIT_TAG = "mlflow.source.git.commit"
GIT_BRANCH_TAG = "mlflow.source.git.branch"
GIT_REPO_TAG = "mlflow.source.git.repoURL"
RUN_NAME_TAG = "mlflow.runName"
PARENT_RUN_TAG = "mlflow.parentRunId"
GIT_DIRTY_TAG = "shipyard.git.dirty"
PYTHON_VERSION_TAG = "shipyard.python.version"
PLATFORM_TAG = "shipyard.platform"
REQUIREMENTS_ARTIFACT = "environment/requirements.txt"


def current_user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def source_file() -> str | None:
    """The script or notebook the run was started from."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path:
        return str(Path(path).resolve())
    return sys.argv[0] or None if sys.argv else None


def _git(args: list[str], cwd: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_tags(path: str | None) -> dict[str, str]:
    """Commit, branch, remote and whether tracked files have uncommitted changes."""
    cwd = str(Path(path).parent) if path and Path(path).is_file() else os.getcwd()
    commit = _git(["rev-parse", "HEAD"], cwd)
    if not commit:
        return {}
    tags = {GIT_COMMIT_TAG: commit}
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd)
    tags[GIT_DIRTY_TAG] = "true" if status else "false"
    branch = _git(["rev-parse", "--abbrev-ref", "HEAD"], cwd)
    if branch and branch != "HEAD":
        tags[GIT_BRANCH_TAG] = branch
    remote = _git(["config", "--get", "remote.origin.url"], cwd)
    if remote:
        tags[GIT_REPO_TAG] = _without_credentials(remote)
    return tags


def _without_credentials(url: str) -> str:
    """A remote URL without the user and password (or token) some clones embed in it."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or "@" not in parts.netloc:
        return url  # ssh (``git@host:org/repo``) names a user, never a secret
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def run_context_tags() -> dict[str, str]:
    """The system tags recorded when a run starts from the module-level API."""
    src = source_file()
    tags = {
        USER_TAG: current_user(),
        SOURCE_TYPE_TAG: "LOCAL",
        PYTHON_VERSION_TAG: platform.python_version(),
        PLATFORM_TAG: platform.platform(terse=True),
    }
    if src:
        tags[SOURCE_NAME_TAG] = src
    tags.update(git_tags(src))
    return tags


@lru_cache(maxsize=1)
def installed_packages() -> str:
    """``name==version`` of every installed distribution, sorted (a requirements file)."""
    from importlib import metadata

    pins: set[str] = set()
    for dist in metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if name:
            pins.add(f"{name}=={dist.version}")
    header = f"# Python {platform.python_version()} on {platform.platform(terse=True)}\n"
    return header + "\n".join(sorted(pins, key=str.lower)) + "\n"
