"""Previews of artifact files for the run page's artifact browser.

A preview reads at most a bounded head of the file: text and JSON up to :data:`TEXT_LIMIT`
bytes, CSV up to :data:`TABLE_ROWS` rows, Parquet its first row batch (its footer says where
that is, so a large file costs one small read where the bytes are local). Images are shown by
the browser from the API's download endpoint, which serves them with their type and
``nosniff``; active types (HTML, SVG) come back as plain text there, so nothing runs.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.artifacts.base import ArtifactRepository

TEXT_LIMIT = 256 * 1024
TABLE_ROWS = 50
PARQUET_REMOTE_LIMIT = 64 * 1024 * 1024
"""Largest Parquet file previewed when its bytes are not on local disk (it is read whole)."""

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".ico"})
TEXT_SUFFIXES = frozenset(
    {
        ".txt", ".log", ".md", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".py", ".sh", ".sql",
        ".html", ".htm", ".xml", ".svg", ".js", ".css", ".r", ".ipynb", ".jsonl", ".rst",
    }
)  # fmt: skip
TEXT_NAMES = frozenset({"MLmodel", "requirements.txt", "conda.yaml", "python_env.yaml", "LICENSE"})


@dataclass
class Preview:
    kind: str
    """``image``, ``json``, ``table``, ``text``, ``binary`` or ``unavailable``."""
    text: str = ""
    truncated: bool = False
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    note: str = ""


def kind_of(path: str) -> str:
    p = PurePosixPath(path)
    suffix = p.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix == ".json":
        return "json"
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in TEXT_SUFFIXES or p.name in TEXT_NAMES:
        return "text"
    return "unknown"


def preview(repo: ArtifactRepository, owner: str, path: str, size: int | None) -> Preview:
    """What the artifact page shows for file ``path`` of ``owner``."""
    kind = kind_of(path)
    if kind == "image":
        return Preview("image")
    if kind == "parquet":
        return _parquet(repo, owner, path, size)
    if kind == "csv":
        return _csv(repo, owner, path)
    head, truncated = _head(repo, owner, path)
    if kind == "json" and not truncated:
        try:
            return Preview("json", json.dumps(json.loads(head), indent=2, ensure_ascii=False))
        except ValueError as exc:
            return Preview("text", _decode(head), note=f"not valid JSON ({exc}); shown as text")
    if kind in ("json", "text") or _looks_textual(head):
        return Preview("text", _decode(head), truncated=truncated)
    return Preview("binary", note="binary file; download it to open it")


def _head(repo: ArtifactRepository, owner: str, path: str) -> tuple[bytes, bool]:
    with repo.open(owner, path) as src:
        data = src.read(TEXT_LIMIT + 1)
    return data[:TEXT_LIMIT], len(data) > TEXT_LIMIT


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _looks_textual(data: bytes) -> bool:
    if b"\x00" in data[:8192]:
        return False
    try:
        data[:8192].decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start > 8180  # a character cut at the sample's end
    return True


def _csv(repo: ArtifactRepository, owner: str, path: str) -> Preview:
    head, truncated = _head(repo, owner, path)
    text = _decode(head)
    if truncated:  # drop the partial last line
        text = text[: text.rfind("\n") + 1]
    delimiter = "\t" if path.lower().endswith(".tsv") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    rows = [row for _, row in zip(range(TABLE_ROWS + 1), reader, strict=False)]
    if not rows:
        return Preview("table", note="empty file")
    more = len(rows) > TABLE_ROWS or truncated
    return Preview(
        "table",
        columns=rows[0],
        rows=rows[1 : TABLE_ROWS + 1],
        truncated=more,
        note=f"first {min(len(rows) - 1, TABLE_ROWS)} rows" if more else "",
    )


def _parquet(repo: ArtifactRepository, owner: str, path: str, size: int | None) -> Preview:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        return Preview(
            "unavailable", note="previewing Parquet needs pyarrow: pip install 'shipyard[data]'"
        )
    local = repo.local_path(owner, path)
    source: Any
    if local is not None and local.is_file():
        source = str(local)
    elif size is not None and size > PARQUET_REMOTE_LIMIT:
        return Preview("unavailable", note="file too large to preview remotely; download it")
    else:
        with repo.open(owner, path) as src:
            source = io.BytesIO(src.read())
    try:
        pf = pq.ParquetFile(source)
        batch = next(pf.iter_batches(batch_size=TABLE_ROWS), None)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        return Preview("unavailable", note=f"not a readable Parquet file ({exc})")
    columns = list(pf.schema_arrow.names)
    rows: list[list[str]] = []
    if batch is not None:
        data = batch.to_pydict()
        rows = [[_cell(data[c][i]) for c in columns] for i in range(batch.num_rows)]
    total = pf.metadata.num_rows
    return Preview(
        "table",
        columns=columns,
        rows=rows,
        truncated=total > len(rows),
        note=f"first {len(rows)} of {total:,} rows" if total > len(rows) else "",
    )


def _cell(value: Any) -> str:
    return "" if value is None else str(value)
