"""What can be registered or validated, read as Arrow record batches without loading it whole.

A :class:`Source` is made from a pandas, Polars or Arrow table, a Parquet or CSV file, or a
folder of such files (:func:`open_source`). It knows which files hold it (a table is written to
one Parquet file first), and reads as batches: Parquet by row groups, CSV with Arrow's streaming
reader. Files that can't be read as tables raise :class:`~shipyard.errors.InvalidData` with the
file and the cause, whenever the problem shows up (opening, or half-way through a stream).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidData, InvalidInput, missing_extra

if TYPE_CHECKING:
    import pyarrow as pa

CHUNK = 1 << 20
BATCH_ROWS = 131_072
TABLE_FILE = "data.parquet"
_PARQUET = (".parquet", ".pq")
_CSV = (".csv",)


def arrow() -> Any:
    """The ``pyarrow`` module, or MissingDependency naming the ``data`` extra."""
    try:
        import pyarrow
    except ImportError:
        raise missing_extra("pyarrow", "data") from None
    return pyarrow


def file_digest(path: Path) -> tuple[str, int]:
    """sha256 and size of a file, read 1 MiB at a time."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _bad(path: Path | str, kind: str, exc: BaseException) -> InvalidData:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "utf8" in text.lower() or "utf-8" in text.lower():
        return InvalidData(
            f"{path} is not UTF-8 text ({text}). Re-encode it as UTF-8 (for example "
            "`iconv -f latin1 -t utf-8`) and try again."
        )
    if kind == "CSV" and ("expected" in text.lower() and "columns" in text.lower()):
        return InvalidData(
            f"{path} has rows with a different number of fields than its header ({text}). "
            "Fix or remove the ragged rows, or quote fields that contain the delimiter."
        )
    return InvalidData(
        f"{path} can't be read as {kind} ({text}). The file may be truncated or not a {kind} "
        "file; write it again, or check its extension."
    )


@dataclass
class Source:
    """A table-shaped input (see the module docstring). ``files``: (path in version, local file)."""

    format: str
    files: list[tuple[str, Path]]
    uri: str | None = None
    table: pa.Table | None = None
    _temp: list[Path] = field(default_factory=list, repr=False)

    @property
    def tabular(self) -> bool:
        return self.format in ("parquet", "csv")

    def arrow_schema(self) -> pa.Schema:
        if self.table is not None:
            return self.table.schema
        for batch in self.batches():
            return batch.schema
        return self._dataset().schema

    def _dataset(self) -> Any:
        import pyarrow.dataset as ds

        fmt = "parquet" if self.format == "parquet" else ds.CsvFileFormat()
        paths = [str(p) for _, p in self.files]
        try:
            return ds.dataset(paths, format=fmt)
        except (arrow().ArrowException, OSError) as exc:
            raise _bad(self.uri or paths[0], self.format.upper(), exc) from None

    def batches(self, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
        """The rows as record batches, a row group or CSV block at a time."""
        pa = arrow()
        if not self.tabular:
            raise InvalidInput(
                f"{self.uri or 'this dataset'} is a folder of files that are not all Parquet or "
                "all CSV, so it has no rows to read; profile or validate its tabular files."
            )
        if self.table is not None:
            table = self.table.select(columns) if columns else self.table
            yield from table.to_batches(max_chunksize=BATCH_ROWS)
            return
        for _, path in self.files:
            try:
                if self.format == "parquet":
                    yield from _parquet_batches(path, columns)
                else:
                    yield from _csv_batches(path, columns)
            except pa.ArrowException as exc:
                raise _bad(path, self.format.upper(), exc) from None

    def read_column(self, name: str) -> pa.ChunkedArray:
        """One column whole (uniqueness checks need every value of that column)."""
        pa = arrow()
        chunks = [b.column(0) for b in self.batches([name])]
        return pa.chunked_array(chunks, type=chunks[0].type if chunks else pa.null())

    def close(self) -> None:
        for path in self._temp:
            path.unlink(missing_ok=True)
        self._temp.clear()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _parquet_batches(path: Path, columns: list[str] | None) -> Iterator[pa.RecordBatch]:
    import pyarrow.parquet as pq

    _not_empty(path)
    f = pq.ParquetFile(path)
    try:
        for group in range(f.num_row_groups):
            table = f.read_row_group(group, columns=columns)
            yield from table.to_batches(max_chunksize=BATCH_ROWS)
    finally:
        f.close()


def _csv_batches(path: Path, columns: list[str] | None) -> Iterator[pa.RecordBatch]:
    import pyarrow.csv as csv

    _not_empty(path)
    convert = csv.ConvertOptions(include_columns=columns) if columns else None
    reader = csv.open_csv(
        path, read_options=csv.ReadOptions(block_size=8 << 20), convert_options=convert
    )
    for batch in reader:
        # Arrow reads text that is not UTF-8 as binary columns rather than failing.
        binary = [f.name for f in batch.schema if str(f.type) in ("binary", "large_binary")]
        if binary:
            raise InvalidData(
                f"{path} is not UTF-8 text (column {binary[0]!r} has bytes that are not valid "
                "UTF-8). Re-encode it as UTF-8 (for example `iconv -f latin1 -t utf-8`) and "
                "try again."
            )
        yield batch


def _not_empty(path: Path) -> None:
    if os.path.getsize(path) == 0:
        raise InvalidData(f"{path} is empty (0 bytes); there is no table in it to read.")


def _table_from(data: Any) -> pa.Table | None:
    pa = arrow()
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    module = type(data).__module__
    if module.startswith("pandas") and type(data).__name__ == "DataFrame":
        try:
            return pa.Table.from_pandas(data)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise InvalidData(
                f"this pandas DataFrame can't be converted to an Arrow table ({exc}). Give "
                "mixed-type object columns one type (for example df[col].astype(str))."
            ) from None
    if module.startswith("polars") and type(data).__name__ == "DataFrame":
        return data.to_arrow()
    return None


def _file_format(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in _PARQUET:
        return "parquet"
    if suffix in _CSV:
        return "csv"
    return None


def open_source(data: Any, *, materialize: bool = False, tmp_dir: Path | None = None) -> Source:
    """A :class:`Source` for ``data``. With ``materialize``, a table is written to one Parquet
    file (what a version stores), in ``tmp_dir``."""
    table = _table_from(data)
    if table is not None:
        source = Source("parquet", [], table=table)
        if materialize:
            import pyarrow.parquet as pq

            if tmp_dir is not None:
                Path(tmp_dir).mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix="shipyard-data-", suffix=".parquet", dir=tmp_dir)
            os.close(fd)
            path = Path(name)
            source._temp.append(path)
            pq.write_table(table, path, row_group_size=BATCH_ROWS, compression="zstd")
            source.files = [(TABLE_FILE, path)]
        return source
    if not isinstance(data, str | os.PathLike):
        raise InvalidInput(
            f"can't register {type(data).__name__} as a dataset; pass a pandas, Polars or "
            "Arrow table, or the path of a Parquet file, a CSV file or a folder."
        )
    path = Path(data)
    if not path.exists():
        raise InvalidInput(f"{path} does not exist; check the path.")
    arrow()
    uri = path.resolve().as_uri()
    if path.is_dir():
        files = sorted(
            (p.relative_to(path).as_posix(), p)
            for p in path.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )
        if not files:
            raise InvalidInput(f"{path} is an empty folder; there is nothing to register.")
        formats = {_file_format(p) for _, p in files}
        fmt = formats.pop() if len(formats) == 1 else None
        return Source(fmt or "files", files, uri=uri)
    fmt = _file_format(path)
    if fmt is None:
        raise InvalidInput(
            f"{path} is neither Parquet (.parquet, .pq) nor CSV (.csv); convert it, or "
            "register the folder that holds it."
        )
    return Source(fmt, [(path.name, path)], uri=uri)
