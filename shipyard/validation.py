"""Input rules shared by every write path (MLflow's limits, so MLflow users see no surprises).

Every function raises :class:`~shipyard.errors.InvalidInput` with a message naming the field, the
rule and the fix.
"""

from __future__ import annotations

import functools
import math
import posixpath
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from shipyard.errors import InvalidArtifactPath, InvalidInput, PayloadTooLarge

if TYPE_CHECKING:
    from shipyard.entities import DatasetInput

MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_EXPERIMENT_NAME_LENGTH = 500
MAX_EXPERIMENT_TAG_VALUE_LENGTH = 20000
MAX_RUN_NAME_LENGTH = 250
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100
MAX_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_DATASETS_PER_BATCH = 1000
MAX_DATASET_NAME_LENGTH = 500
MAX_DATASET_DIGEST_LENGTH = 36
MAX_DATASET_SOURCE_LENGTH = 65535
MAX_DATASET_SCHEMA_LENGTH = 1048575
MAX_DATASET_PROFILE_LENGTH = 16777215
MAX_INPUT_TAG_KEY_LENGTH = 255
MAX_INPUT_TAG_VALUE_LENGTH = 500
MAX_SEARCH_RESULTS = 50000
MAX_HISTORY_RESULTS = 25000
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)

_KEY_RE = re.compile(r"^[\w\-./: ]+$")
_RUN_ID_RE = re.compile(r"^[a-zA-Z0-9][\w\-]{0,255}$")


def key(value: object, what: str = "key") -> str:
    """A param, metric or tag key: 1-250 chars of letters, digits, ``_ - . / :`` and spaces."""
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string, got {type(value).__name__} {value!r}.")
    if not value:
        raise InvalidInput(f"{what} must not be empty.")
    if len(value) > MAX_KEY_LENGTH:
        raise InvalidInput(
            f"{what} {value[:40]!r}... is {len(value)} characters long; the limit is "
            f"{MAX_KEY_LENGTH}. Use a shorter name."
        )
    problem = _key_problem(value)
    if problem == "characters":
        raise InvalidInput(
            f"{what} {value!r} contains characters that are not allowed; use only letters, "
            "digits, spaces and _ - . / :"
        )
    if problem == "path":
        raise InvalidInput(
            f"{what} {value!r} is not a clean relative name (no '..', no leading or doubled '/')."
        )
    return value


@functools.lru_cache(maxsize=65_536)
def _key_problem(value: str) -> str | None:
    """What is wrong with a key's characters or shape, if anything. Cached: a training loop logs
    the same few keys again and again, and this is most of a key's check."""
    if not _KEY_RE.match(value):
        return "characters"
    if posixpath.normpath(value) != value or value.startswith("/") or ".." in value.split("/"):
        return "path"
    return None


def text(value: object, what: str, limit: int, *, allow_empty: bool = True) -> str:
    """A string value with a length limit and no NUL bytes."""
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string, got {type(value).__name__} {value!r}.")
    if not allow_empty and not value:
        raise InvalidInput(f"{what} must not be empty.")
    if len(value) > limit:
        raise InvalidInput(
            f"{what} is {len(value)} characters long; the limit is {limit}. Shorten it, or store "
            "the content as an artifact instead."
        )
    if "\x00" in value:
        raise InvalidInput(f"{what} contains a NUL character; remove it.")
    return value


def param_value(value: object, k: str) -> str:
    return text(value, f"value of param {k!r}", MAX_PARAM_VALUE_LENGTH)


def tag_value(value: object, k: str) -> str:
    return text(value, f"value of tag {k!r}", MAX_TAG_VALUE_LENGTH)


def metric_value(value: object, k: str) -> float:
    """A metric value: a real number (NaN and +-Infinity are allowed, booleans are not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(
            f"value of metric {k!r} must be a number, got {type(value).__name__} {value!r}."
        )
    v = float(value)
    if not math.isfinite(v) and not (math.isnan(v) or math.isinf(v)):  # pragma: no cover
        raise InvalidInput(f"value of metric {k!r} is not a number.")
    return v


def int64(value: object, what: str, *, minimum: int = INT64_MIN) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{what} must be an integer, got {type(value).__name__} {value!r}.")
    if not minimum <= value <= INT64_MAX:
        raise InvalidInput(f"{what}={value} is outside the range {minimum}..{INT64_MAX}.")
    return value


def experiment_name(value: object) -> str:
    name = text(value, "experiment name", MAX_EXPERIMENT_NAME_LENGTH, allow_empty=False)
    if not name.strip():
        raise InvalidInput("experiment name must not be blank.")
    return name


def experiment_id(value: object) -> str:
    """Experiment ids are decimal integers carried as strings (MLflow's convention)."""
    s = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(s, str) or not s.isdigit() or len(s) > 18:
        raise InvalidInput(
            f"experiment id {value!r} is not valid; experiment ids are whole numbers such as '0' "
            "or '12'. Look them up with `shipyard experiments list`."
        )
    return str(int(s))


NON_RUN_OWNERS = {
    "mv-": ("a registered version", "/api/v1/model-versions/{id}/artifacts, or the URI "
            "model-versions/get-download-uri gives"),
    "m-": ("a logged model", "the logged model's artifact_uri"),
    "dv-": ("a dataset version", "`shipyard data get`"),
    "ps-": ("a pipeline step", "`shipyard pipelines show`"),
}  # fmt: skip
"""The other owners in the artifact index, by id prefix: what they are and where their files
are read. No run id starts with one, so no run route can reach (or change) their files behind
their own checks."""


def run_id(value: object) -> str:
    if not isinstance(value, str) or not _RUN_ID_RE.match(value):
        raise InvalidInput(
            f"run id {value!r} is not valid; run ids are 32-character hex strings. "
            "Find them with `shipyard runs list`."
        )
    for prefix, (kind, where) in NON_RUN_OWNERS.items():
        if value.startswith(prefix):
            raise InvalidInput(
                f"{value!r} is not a run id: it owns {kind}'s files, which are read-only to "
                f"run routes. Read them through {where.format(id=value)}."
            )
    return value


def max_results(value: object, limit: int, what: str = "max_results") -> int:
    n = int64(value, what)
    if n < 1 or n > limit:
        raise InvalidInput(f"{what}={n} is out of range; use a value between 1 and {limit}.")
    return n


def batch_sizes(n_metrics: int, n_params: int, n_tags: int) -> None:
    """MLflow's log-batch limits."""
    for n, limit, what in (
        (n_metrics, MAX_METRICS_PER_BATCH, "metrics"),
        (n_params, MAX_PARAMS_PER_BATCH, "params"),
        (n_tags, MAX_TAGS_PER_BATCH, "tags"),
    ):
        if n > limit:
            raise PayloadTooLarge(
                f"a batch holds {n} {what}; the limit is {limit} per call. Split it into "
                "several calls (the Shipyard SDK does this for you)."
            )
    total = n_metrics + n_params + n_tags
    if total > MAX_ENTITIES_PER_BATCH:
        raise PayloadTooLarge(
            f"a batch holds {total} values in all; the limit is {MAX_ENTITIES_PER_BATCH}. "
            "Split it into several calls."
        )


def unique_keys(keys: Sequence[str], what: str) -> None:
    seen: set[str] = set()
    for k in keys:
        if k in seen:
            raise InvalidInput(
                f"{what} key {k!r} appears more than once in one batch; send each key once."
            )
        seen.add(k)


# ---------------------------------------------------------------- added for the SQL store

MAX_USER_ID_LENGTH = 256
MAX_DATASET_SOURCE_TYPE_LENGTH = 36
MAX_MODEL_ID_LENGTH = 64
MAX_ARTIFACT_PATH_LENGTH = 1024
MAX_DIGEST_LENGTH = 64
RUN_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")


def experiment_tag_value(value: object, k: str) -> str:
    return text(value, f"value of experiment tag {k!r}", MAX_EXPERIMENT_TAG_VALUE_LENGTH)


def run_name(value: object) -> str:
    return text(value, "run name", MAX_RUN_NAME_LENGTH)


def run_status(value: object) -> str:
    """One of RUNNING, SCHEDULED, FINISHED, FAILED, KILLED."""
    if not isinstance(value, str) or value.upper() not in RUN_STATUSES:
        raise InvalidInput(
            f"run status {value!r} is not valid; use one of {', '.join(RUN_STATUSES)}."
        )
    return value.upper()


def input_tag(k: object, value: object) -> None:
    """A tag on a dataset input (such as ``mlflow.data.context``)."""
    text(k, "dataset input tag key", MAX_INPUT_TAG_KEY_LENGTH, allow_empty=False)
    text(value, f"value of dataset input tag {k!r}", MAX_INPUT_TAG_VALUE_LENGTH)


def dataset_fields(
    name: object,
    digest: object,
    source_type: object,
    source: object,
    schema: object,
    profile: object,
) -> None:
    """The fields of a dataset record, with MLflow's length limits."""
    text(name, "dataset name", MAX_DATASET_NAME_LENGTH, allow_empty=False)
    text(digest, f"digest of dataset {name!r}", MAX_DATASET_DIGEST_LENGTH, allow_empty=False)
    text(source_type, f"source_type of dataset {name!r}", MAX_DATASET_SOURCE_TYPE_LENGTH)
    text(source, f"source of dataset {name!r}", MAX_DATASET_SOURCE_LENGTH)
    if schema is not None:
        text(schema, f"schema of dataset {name!r}", MAX_DATASET_SCHEMA_LENGTH)
    if profile is not None:
        text(profile, f"profile of dataset {name!r}", MAX_DATASET_PROFILE_LENGTH)


def dataset_inputs(datasets: Sequence[DatasetInput]) -> dict[tuple[str, str], DatasetInput]:
    """A run's dataset inputs checked (count, fields, tags) and deduplicated by name and digest
    (the first of each kept), keyed by ``(name, digest)``."""
    if len(datasets) > MAX_DATASETS_PER_BATCH:
        raise PayloadTooLarge(
            f"{len(datasets)} dataset inputs in one call; the limit is "
            f"{MAX_DATASETS_PER_BATCH}. Split them into several calls."
        )
    unique: dict[tuple[str, str], DatasetInput] = {}
    for item in datasets:
        d = item.dataset
        dataset_fields(d.name, d.digest, d.source_type, d.source, d.schema, d.profile)
        for k, v in item.tags.items():
            input_tag(k, v)
        unique.setdefault((d.name, d.digest), item)
    return unique


def artifact_path(value: object, *, allow_root: bool = False) -> str:
    """A relative artifact path such as ``model/MLmodel`` (``""`` is the root when allowed).

    Trailing slashes are dropped; ``..``, absolute paths, backslashes, NUL and empty segments
    raise :class:`~shipyard.errors.InvalidArtifactPath`.
    """
    if not isinstance(value, str):
        raise InvalidArtifactPath(f"artifact path must be a string, got {type(value).__name__}.")
    path = value.rstrip("/") if value != "/" else ""
    if not path:
        if allow_root:
            return ""
        raise InvalidArtifactPath(
            "artifact path must not be empty; name a file such as 'model.pkl'."
        )
    segments = path.split("/")
    if (
        value.startswith("/")
        or "\\" in path
        or "\x00" in path
        or len(path) > MAX_ARTIFACT_PATH_LENGTH
        or any(s in ("", ".", "..") for s in segments)
    ):
        raise InvalidArtifactPath(
            f"artifact path {value[:200]!r} is not allowed: use a relative path of at most "
            f"{MAX_ARTIFACT_PATH_LENGTH} characters with '/' separators and no '.', '..' or "
            "empty segments, backslashes or NUL characters."
        )
    return path


def spec_file(path: object, what: str = "spec") -> object:
    """The parsed contents of a ``.json``, ``.yaml`` or ``.yml`` file (a deployment spec, say);
    ``InvalidInput`` naming the file when it can't be read or parsed."""
    import json
    from pathlib import Path

    file = Path(str(path))
    try:
        content = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(
            f"Cannot read the {what} {file}: {exc.strerror}; check the path."
        ) from None
    if file.suffix.lower() == ".json":
        try:
            return json.loads(content)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{file} is not valid JSON: {exc}.") from None
    import yaml

    try:
        return yaml.safe_load(content)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{file} is not valid YAML: {exc}.") from None
