"""Batch inference: a Parquet file scored in chunks into another, in constant memory.

:func:`batch_predict` reads ``chunk_rows`` rows at a time (``pyarrow.parquet.ParquetFile.
iter_batches``), predicts, and appends the predictions to the output file as they come, so
memory stays at a few chunks whatever the file size. The output holds the predictions (column
``prediction``, or the model's own columns when it returns a table) plus any ``keep`` columns of
the input, in input order.

``executor="ray"`` spreads the chunks over a pool of Ray actors, each loading the model once
(from the package folder, so every actor must see the same file system: one machine, or a
shared volume); at most two chunks per actor are in flight, so memory stays bounded there too.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidData, InvalidInput, ShipyardError, missing_extra

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.models.package import LoadedModel
    from shipyard.workspace import Workspace

DEFAULT_CHUNK_ROWS = 100_000
EXECUTORS = ("local", "ray")


def batch_predict(
    model_uri: str,
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    keep: Sequence[str] = (),
    executor: str = "local",
    ray_workers: int | None = None,
    workspace: Workspace | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Score the Parquet file ``input_path`` with the model at ``model_uri`` into
    ``output_path`` (written to a temporary name, renamed when complete). Returns the number of
    rows scored. ``progress(rows_done, rows_total)`` is called after each chunk."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise missing_extra("pyarrow", "data") from None
    from shipyard.models.sdk import load_model

    if executor not in EXECUTORS:
        raise InvalidInput(f"executor={executor!r}; use one of {', '.join(EXECUTORS)}.")
    if chunk_rows < 1:
        raise InvalidInput(f"chunk_rows={chunk_rows}; use 1 or more.")
    source = Path(input_path)
    try:
        reader = pq.ParquetFile(source)
    except FileNotFoundError:
        raise InvalidInput(f"No input file {source}; pass a Parquet file.") from None
    except Exception as exc:
        raise InvalidData(f"{source} is not a readable Parquet file: {exc}.") from None
    missing = [c for c in keep if c not in reader.schema_arrow.names]
    if missing:
        raise InvalidInput(f"--keep names columns {missing} that {source} does not have.")
    model = load_model(model_uri, workspace=workspace)
    total = reader.metadata.num_rows
    target = Path(output_path)
    tmp = target.with_name(f".{target.name}.tmp")
    # Kept columns are copied from the Arrow batches, so their types stay the file's (an
    # integer id with nulls in a later chunk stays an integer).
    chunks = ((b, b.to_pandas()) for b in reader.iter_batches(batch_size=chunk_rows))
    if executor == "ray":
        results: Iterator[tuple[Any, pd.DataFrame, Any]] = _ray_map(model, chunks, ray_workers)
    else:
        results = _local_map(model, chunks, str(source))
    done = 0
    writer = None
    try:
        for batch, chunk, predictions in results:
            table = _output_table(batch, predictions, keep)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            elif table.schema != writer.schema:
                table = _conform(table, writer.schema, done)
            writer.write_table(table)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
        if writer is None:  # an empty input still gets an (empty) output
            import pyarrow as pa

            pq.write_table(pa.table({"prediction": pa.array([], pa.float64())}), tmp)
    except BaseException:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
        raise
    if writer is not None:
        writer.close()
    os.replace(tmp, target)
    return done


def _local_map(
    model: Any, chunks: Iterator[tuple[Any, pd.DataFrame]], source: str
) -> Iterator[tuple[Any, pd.DataFrame, Any]]:
    """Each chunk with the model's predictions. A model that raises on a chunk ends the run
    with the rows it failed on (a signature mismatch keeps its own error)."""
    start = 0
    for batch, chunk in chunks:
        try:
            predictions = model.predict(chunk)
        except ShipyardError:
            raise
        except Exception as exc:
            raise InvalidData(
                f"the model failed on rows {start}-{start + len(chunk) - 1} of {source} "
                f"({type(exc).__name__}: {exc}); nothing was written. Check those rows, or the "
                "model with shipyard.load_model(...).predict(...)."
            ) from exc
        start += len(chunk)
        yield batch, chunk, predictions


def _output_table(batch: Any, predictions: Any, keep: Sequence[str]) -> Any:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    if isinstance(predictions, pd.DataFrame):
        out = predictions.reset_index(drop=True)
    elif isinstance(predictions, pd.Series):
        out = pd.DataFrame({"prediction": predictions.to_numpy()})
    else:
        arr = np.asarray(predictions)
        if arr.ndim == 2:
            out = pd.DataFrame({f"prediction_{i}": arr[:, i] for i in range(arr.shape[1])})
        else:
            out = pd.DataFrame({"prediction": arr})
    table = pa.Table.from_pandas(out, preserve_index=False).replace_schema_metadata(None)
    for i, col in enumerate(keep):
        table = table.add_column(i, col, batch.column(col))
    return table


def _conform(table: Any, schema: Any, done: int) -> Any:
    """``table`` cast to the output's schema (set by the first chunk): a chunk whose
    predictions came out as another type (all-null, or integers after floats) must still
    land in the same file."""
    import pyarrow as pa

    if table.schema.names == schema.names:
        try:
            return table.cast(schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
            pass
    raise InvalidData(
        f"The predictions for the rows after row {done} have the columns "
        f"{_describe(table.schema)}, but the first chunk's were {_describe(schema)}; the model "
        "must return the same columns and types for every chunk."
    )


def _describe(schema: Any) -> str:
    return ", ".join(f"{f.name} ({f.type})" for f in schema)


def _ray_map(
    model: LoadedModel, chunks: Iterator[tuple[Any, pd.DataFrame]], workers: int | None
) -> Iterator[tuple[Any, pd.DataFrame, Any]]:
    try:
        import ray
    except ImportError:
        raise missing_extra("ray", "ray") from None
    if not ray.is_initialized():
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    n = workers or max(1, int(ray.available_resources().get("CPU", 1)))
    folder = str(model.path)

    @ray.remote
    class _Scorer:
        def __init__(self, path: str) -> None:
            from shipyard.models.package import load_package

            self.model = load_package(path)

        def predict(self, chunk: Any) -> Any:
            return self.model.predict(chunk)

    actors = [_Scorer.remote(folder) for _ in range(n)]  # type: ignore[attr-defined]
    pending: list[tuple[Any, pd.DataFrame, Any]] = []
    try:
        for i, (batch, chunk) in enumerate(chunks):
            pending.append((batch, chunk, actors[i % n].predict.remote(chunk)))
            if len(pending) >= 2 * n:
                first, frame, ref = pending.pop(0)
                yield first, frame, ray.get(ref)
        for batch, chunk, ref in pending:
            yield batch, chunk, ray.get(ref)
    finally:
        for actor in actors:
            ray.kill(actor)
