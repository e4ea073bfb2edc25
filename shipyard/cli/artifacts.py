"""``shipyard artifacts``: list a run's artifacts and download them."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import click

from shipyard.artifacts.base import ArtifactRepository
from shipyard.cli._context import CliState, get_run, pass_state
from shipyard.cli._output import (
    emit_json,
    esc,
    human_size,
    is_terminal,
    json_option,
    print_table,
    table,
)
from shipyard.errors import NotFound

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from shipyard.entities import ArtifactInfo

PROGRESS_THRESHOLD = 8 * 1024 * 1024
"""Downloads at least this large (in bytes) show a progress bar on a terminal."""


@click.group()
def artifacts() -> None:
    """List and download the files runs logged."""


@artifacts.command("list")
@click.argument("run_id")
@click.argument("path", default="", required=False)
@click.option("--recursive", "-r", is_flag=True, help="Also list everything inside sub-folders.")
@json_option
@pass_state
def list_artifacts(state: CliState, run_id: str, path: str, recursive: bool, as_json: bool) -> None:
    """List the artifacts of RUN_ID, at the top or inside folder PATH."""
    ws = state.workspace
    rid = get_run(ws.store, run_id).info.run_id
    path = _clean(path)
    entries = _walk(ws.artifacts, rid, path) if recursive else ws.artifacts.list(rid, path)
    if as_json:
        emit_json({"run_id": rid, "path": path, "artifacts": entries})
        return
    t = table("Path", "Size", "Digest", no_wrap=("Size",))
    for a in entries:
        size = "" if a.is_dir else human_size(a.file_size)
        digest = (a.digest or "")[:12]
        t.add_row(esc(a.path + ("/" if a.is_dir else "")), size, digest)
    where = f"folder {path!r} of run {rid}" if path else f"run {rid}"
    print_table(t, empty=f"No artifacts in {where}.")


@artifacts.command("get")
@click.argument("run_id")
@click.argument("path", default="", required=False)
@click.option(
    "--dest",
    "-d",
    type=click.Path(file_okay=False, dir_okay=True, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder to download into (created if missing).",
)
@json_option
@pass_state
def get_artifact(state: CliState, run_id: str, path: str, dest: Path, as_json: bool) -> None:
    """Download file or folder PATH of RUN_ID (everything when PATH is omitted) into --dest.

    Files are written under a temporary name and renamed when complete, so an interrupted
    download leaves no partial file behind.
    """
    ws = state.workspace
    rid = get_run(ws.store, run_id).info.run_id
    path = _clean(path)
    files = _files(ws.artifacts, rid, path)
    total = sum(f.file_size or 0 for f in files)
    if total >= PROGRESS_THRESHOLD and is_terminal(sys.stderr):
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        from shipyard.cli._output import console

        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console(stderr=True),
            transient=True,
        ) as progress:
            task = progress.add_task(f"Downloading {path or 'artifacts'}", total=total)
            target = _ProgressRepository(ws.artifacts, progress, task).download(rid, path, dest)
    else:
        target = ws.artifacts.download(rid, path, dest)
    if as_json:
        emit_json(
            {
                "run_id": rid,
                "path": path,
                "local_path": str(target.absolute()),
                "files": len(files),
                "bytes": total,
            }
        )
        return
    what = f"{len(files)} files" if len(files) != 1 else "1 file"
    click.echo(f"Downloaded {what} ({human_size(total)}) to {target}")


def _clean(path: str) -> str:
    """A user-typed artifact path in the store's form (no leading/trailing slash, '.' = root)."""
    path = path.strip().strip("/")
    return "" if path == "." else path


def _walk(repo: ArtifactRepository, owner: str, path: str) -> list[ArtifactInfo]:
    """Every entry below folder ``path``, depth first, folders before their contents."""
    out: list[ArtifactInfo] = []
    stack = list(reversed(repo.list(owner, path)))
    while stack:
        item = stack.pop()
        out.append(item)
        if item.is_dir:
            stack.extend(reversed(repo.list(owner, item.path)))
    return out


def _files(repo: ArtifactRepository, owner: str, path: str) -> list[ArtifactInfo]:
    """The files a download of ``path`` will write; ``NotFound`` when there are none."""
    files = [a for a in _walk(repo, owner, path) if not a.is_dir]
    if files:
        return files
    hint = f"See what it has with `shipyard artifacts list {owner}`."
    if not path:
        raise NotFound(f"Run {owner} has no artifacts. {hint}")
    try:
        return [repo.stat(owner, path)]
    except NotFound:
        raise NotFound(f"Run {owner} has no artifact {path!r}. {hint}") from None


class _ProgressReader(io.RawIOBase):
    """A read-only stream that reports how many bytes each read returned (and owns ``inner``)."""

    def __init__(self, inner: BinaryIO, advance: Callable[[int], None]) -> None:
        self.inner = inner
        self.advance = advance

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        data = self.inner.read(-1 if size is None else size)
        self.advance(len(data))
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self.inner.close()
        super().close()


class _ProgressRepository(ArtifactRepository):
    """Reads through another repository, advancing a progress bar with every chunk read."""

    def __init__(self, inner: ArtifactRepository, progress: Progress, task: TaskID) -> None:
        self.inner = inner
        self.progress = progress
        self.task = task

    def open(self, owner: str, path: str) -> BinaryIO:
        def advance(n: int) -> None:
            self.progress.advance(self.task, n)

        return cast(BinaryIO, _ProgressReader(self.inner.open(owner, path), advance))

    def list(self, owner: str, path: str = "") -> list[ArtifactInfo]:
        return self.inner.list(owner, path)

    def stat(self, owner: str, path: str) -> ArtifactInfo:
        return self.inner.stat(owner, path)

    def upload(self, owner: str, path: str, src: BinaryIO) -> ArtifactInfo:
        raise NotImplementedError("read-only view used for downloads")

    def upload_file(self, owner: str, path: str, local_path: Path) -> ArtifactInfo:
        raise NotImplementedError("read-only view used for downloads")

    def delete(self, owner: str, path: str = "") -> None:
        raise NotImplementedError("read-only view used for downloads")

    def free(self, digests: set[str]) -> int:
        raise NotImplementedError("read-only view used for downloads")
