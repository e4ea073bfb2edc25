"""The prediction log's format and its reader, shared by serving (which writes it) and monitoring.

Layout: ``<SHIPYARD_HOME>/predictions/<endpoint>/pred-<time>-<pid>-<n>.parquet`` for answered
requests (one row each, shadow arms' rows flagged ``shadow``; requests the model failed on have
their error code in ``error`` and no predictions; segments written before that column existed
read as ``error`` null), and ``feedback-*.parquet`` in the
same folder for ground-truth labels posted later by request id. Segments are written to a
temporary name and renamed into place, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.errors import InvalidInput, missing_extra

if TYPE_CHECKING:
    import pandas as pd

PREDICTION_COLUMNS = (
    "request_id",
    "timestamp_ms",
    "model_name",
    "model_version",
    "arm",
    "shadow",
    "latency_ms",
    "features",
    "predictions",
    "error",
)
FEEDBACK_COLUMNS = ("request_id", "timestamp_ms", "label")


def log_folder(home: Path, endpoint: str) -> Path:
    """Where the prediction log of endpoint ``endpoint`` lives under ``home``."""
    return home / "predictions" / endpoint


def _written_ms(segment: Path) -> int | None:
    """When a segment was written (from its name ``pred-<time ns>-...``); every row in it is
    older."""
    try:
        return int(segment.name.split("-")[1]) // 1_000_000
    except (IndexError, ValueError):
        return None


def read_predictions(
    folder: str | os.PathLike[str],
    *,
    include_shadow: bool = False,
    with_feedback: bool = True,
    include_errors: bool = False,
    since_ms: int | None = None,
) -> pd.DataFrame:
    """The prediction log in ``folder`` as a DataFrame, oldest first.

    One row per answered request (``include_shadow=True`` adds the shadow arms' rows,
    ``include_errors=True`` the requests the model failed on). ``since_ms`` skips the segments
    written before that time (they hold only older rows) and the rows older than it. With
    ``with_feedback``, a ``label`` column holds the latest feedback posted for each request id
    (decoded from JSON; missing where none arrived). ``features`` and ``predictions`` are JSON strings.
    """
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise missing_extra("pyarrow", "data") from None
    import pandas as pd

    path = Path(folder)
    if not path.is_dir():
        raise InvalidInput(
            f"No prediction log at {path}; serve a model first (the log is written under "
            "<SHIPYARD_HOME>/predictions/<endpoint>/)."
        )
    segments = sorted(path.glob("pred-*.parquet"))
    if since_ms is not None:
        segments = [s for s in segments if (_written_ms(s) or since_ms) >= since_ms]
    if segments:
        table = pa.concat_tables([pq.read_table(s) for s in segments], promote_options="default")
        if "error" not in table.column_names:
            table = table.append_column("error", pa.nulls(table.num_rows, pa.string()))
        frame = table.to_pandas()
        frame = frame.sort_values("timestamp_ms", kind="stable").reset_index(drop=True)
        if since_ms is not None:
            frame = frame[frame["timestamp_ms"] >= since_ms].reset_index(drop=True)
    else:
        frame = pd.DataFrame({c: [] for c in PREDICTION_COLUMNS})
    if not include_shadow:
        frame = frame[~frame["shadow"].astype(bool)].reset_index(drop=True)
    if not include_errors:
        frame = frame[frame["error"].isna()].reset_index(drop=True)
    if with_feedback:
        fb_segments = sorted(path.glob("feedback-*.parquet"))
        if fb_segments:
            fb = pa.concat_tables([pq.read_table(s) for s in fb_segments]).to_pandas()
            fb = fb.sort_values("timestamp_ms", kind="stable").drop_duplicates(
                "request_id", keep="last"
            )
            fb["label"] = fb["label"].map(json.loads)
            frame = frame.merge(
                fb[["request_id", "label"]], on="request_id", how="left", validate="many_to_one"
            )
        else:
            frame["label"] = None
    return frame
