"""A workspace with something on every UI page: runs with params, metrics (one long history),
tags and artifacts of every previewable kind; a registered model with versions, aliases and
audit events; a pipeline run (twice, so the second hits the cache); a dataset version with its
profile and a user-edited schema."""

from __future__ import annotations

import io
import json
import random
import struct
import zlib
from dataclasses import dataclass, field

from shipyard.entities import Metric
from shipyard.workspace import Workspace

LONG_HISTORY = 5_000
BASE_MS = 1_760_000_000_000


@dataclass
class Seeded:
    experiment_id: str
    run_ids: list[str]
    long_run_id: str
    model: str = "churn"
    dataset: str = "customers"
    pipeline_run_ids: list[str] = field(default_factory=list)
    deployment: str = "churn-prod"
    monitor: str = "churn-live"


def png_bytes(width: int = 8, height: int = 8) -> bytes:
    """A valid RGB PNG (a gradient), written by hand so the tests need no imaging library."""
    raw = b"".join(
        b"\x00" + b"".join(bytes((x * 30 % 256, y * 30 % 256, 128)) for x in range(width))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def parquet_bytes(rows: int = 120) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"id": list(range(rows)), "score": [i / rows for i in range(rows)]})
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def seed(ws: Workspace, runs: int = 12, history: int = LONG_HISTORY) -> Seeded:
    rng = random.Random(7)
    store = ws.store
    exp = store.create_experiment("churn-experiments", tags={"team": "risk"})
    run_ids = []
    for i in range(runs):
        run = store.create_run(
            exp, run_name=f"cv-{i:02d}", user_id="ada", start_time=BASE_MS + i * 60_000
        )
        rid = run.info.run_id
        run_ids.append(rid)
        metrics = [
            Metric("accuracy", 0.7 + 0.02 * i, BASE_MS + i * 60_000 + s * 1000, s) for s in range(5)
        ] + [Metric("loss", 1.0 / (i + 1), BASE_MS + i * 60_000, 0)]
        store.log_batch(
            rid,
            metrics,
            params={"lr": str(0.001 * (i + 1)), "model": "xgb" if i % 2 else "linear"},
            tags={"team": "risk", "fold": str(i % 3)},
        )
        store.update_run(rid, status="FINISHED", end_time=BASE_MS + i * 60_000 + 30_000)
    long_run = run_ids[-1]
    values = [
        Metric("val_loss", 1.0 / (1 + s / 100) + rng.random() * 0.01, BASE_MS + s * 10, s)
        for s in range(history)
    ]
    values[history // 2] = Metric("val_loss", 50.0, BASE_MS + (history // 2) * 10, history // 2)
    for start in range(0, history, 1000):
        store.log_batch(long_run, values[start : start + 1000])

    art = ws.artifacts
    art.upload(long_run, "plots/roc.png", io.BytesIO(png_bytes()))
    art.upload(long_run, "metrics.json", io.BytesIO(json.dumps({"auc": 0.91, "f1": 0.8}).encode()))
    art.upload(long_run, "data/sample.csv", io.BytesIO(b"id,score\n1,0.5\n2,0.7\n3,0.9\n"))
    art.upload(long_run, "data/sample.parquet", io.BytesIO(parquet_bytes()))
    art.upload(long_run, "notes.txt", io.BytesIO(b"trained on <all> the data\n"))
    art.upload(long_run, "blob.bin", io.BytesIO(bytes(range(256)) * 4))
    for rid in run_ids[-2:]:
        art.upload(rid, "model/MLmodel", io.BytesIO(b"flavors:\n  python_function: {}\n"))

    seeded = Seeded(exp, run_ids, long_run)
    _seed_dataset(ws, seeded)
    _seed_registry(ws, seeded)
    _seed_pipeline(ws, seeded)
    _seed_deployment(ws, seeded)
    _seed_monitor(ws, seeded)
    return seeded


def _seed_dataset(ws: Workspace, seeded: Seeded) -> None:
    import pyarrow as pa

    from shipyard.data.service import Datasets

    service = Datasets(ws)
    table = pa.table(
        {
            "age": [20 + (i % 50) for i in range(400)],
            "plan": [("basic", "pro", "team")[i % 3] for i in range(400)],
            "churned": [i % 7 == 0 for i in range(400)],
        }
    )
    service.register(seeded.dataset, table, description="customer snapshot")
    service.set_schema(
        seeded.dataset,
        "columns:\n  age: {type: integer, min: 18, max: 60}\n  plan: {type: string, "
        "domain: [basic, pro]}\n  churned: {type: boolean}\n",
    )
    service.log_input(seeded.long_run_id, seeded.dataset, 1, context="training")
    later = pa.table(
        {
            "age": [40 + (i % 50) for i in range(300)],  # older customers
            "plan": [("basic", "pro", "team", "enterprise")[i % 4] for i in range(300)],
            "churned": [i % 5 == 0 for i in range(300)],
        }
    )
    service.register(seeded.dataset, later, description="customer snapshot, a month later")


def _seed_registry(ws: Workspace, seeded: Seeded) -> None:
    from shipyard.registry.registry import Registry

    registry = Registry(ws)
    registry.create_model(seeded.model, description="Predicts churn", user="ada")
    for rid in seeded.run_ids[-2:]:
        registry.register_model_version(seeded.model, f"runs:/{rid}/model", user="ada")
    registry.set_alias(seeded.model, "champion", 2, user="ada", reason="best AUC")
    registry.set_alias(seeded.model, "challenger", 1, user="bob")


def _seed_pipeline(ws: Workspace, seeded: Seeded) -> None:
    from shipyard.pipelines import service
    from tests.server.ui._pipeline import demo

    for _ in range(2):
        seeded.pipeline_run_ids.append(service.run(demo, workspace=ws).run_id)


POLICY = {
    "name": "churn-prod",
    "model": "churn",
    "environments": [
        {
            "name": "production",
            "alias": "champion",
            "gates": [{"type": "metric", "metric": "accuracy", "min": 0.5}],
            "rollout": {
                "shadow": {"requests": 50},
                "canary": {"steps": [10, 50], "window": {"requests": 100}},
            },
        }
    ],
}


def _seed_deployment(ws: Workspace, seeded: Seeded) -> None:
    """A deployment in its first canary step: v2 takes 10% next to the stable v1."""
    from shipyard.deploy import DeploymentPolicy, traffic_for
    from shipyard.store.deployments import DeploymentRecord

    policy = DeploymentPolicy.from_dict(POLICY)
    ws.deployments.create(
        DeploymentRecord(
            name=seeded.deployment,
            model=seeded.model,
            policy=policy.to_dict(),
            state="canary",
            environment="production",
            stable_version=1,
            candidate_version=2,
            step=0,
            step_started=BASE_MS,
            traffic=traffic_for(seeded.model, 1, 2, weight=10.0),
        )
    )
    ws.deployments.record_event(
        seeded.deployment,
        "gates_checked",
        "version 2 of 'churn' passes the 1 offline gate(s) of production.",
        from_state="idle",
        to_state="gating",
        version=2,
        evidence={
            "passed": True,
            "results": [
                {
                    "gate": "accuracy >= 0.5",
                    "type": "metric",
                    "passed": True,
                    "value": 0.92,
                    "threshold": ">= 0.5",
                    "message": "accuracy 0.92 >= 0.5",
                    "details": {},
                }
            ],
        },
        user_id="shipyard-controller",
    )
    ws.deployments.record_event(
        seeded.deployment,
        "shadow_passed",
        "shadow window complete: agreement 0.97",
        from_state="shadow",
        to_state="canary",
        version=2,
        evidence={"window": {"requests": 50, "agreement": 0.97, "error_rate": 0.0}},
        user_id="shipyard-controller",
    )


def _seed_monitor(ws: Workspace, seeded: Seeded) -> None:
    """A monitor of the deployment with 12 windows (drift rising on ``age``) and one alert."""
    from shipyard.store.monitoring import Alert, AlertRule, Monitor

    monitor = ws.monitors.create_monitor(
        Monitor(
            monitor_id=0,
            name=seeded.monitor,
            endpoint="churn",
            model=seeded.model,
            deployment=seeded.deployment,
            spec={
                "reference": "datasets:/customers/1",
                "window": {"rows": 500},
                "task": "classification",
            },
        )
    )
    hour = 3_600_000
    for i in range(12):
        drift = 0.02 + 0.03 * i
        details = {
            "drift": {
                "dataset_drift": i > 8,
                "share_drifted": 0.5 if i > 8 else 0.0,
                "columns": [
                    {
                        "column": "age",
                        "test": "wasserstein",
                        "statistic": drift,
                        "p_value": None,
                        "threshold": 0.1,
                        "drifted": drift > 0.1,
                        "distribution": {
                            "edges": [20.0 + 5 * k for k in range(11)],
                            "reference": [0.1] * 10,
                            "current": [0.05] * 5 + [0.15] * 5,
                        },
                    },
                    {
                        "column": "plan",
                        "test": "chi2",
                        "statistic": 0.01,
                        "p_value": 0.8,
                        "threshold": 0.05,
                        "drifted": False,
                        "distribution": {
                            "categories": ["basic", "pro", "team"],
                            "reference": [0.34, 0.33, 0.33],
                            "current": [0.4, 0.3, 0.3],
                        },
                    },
                ],
            }
        }
        ws.monitors.add_result(
            monitor.monitor_id,
            BASE_MS + i * hour,
            BASE_MS + (i + 1) * hour,
            500,
            {
                "rows": 500.0,
                "requests": 480.0,
                "error_rate": 0.001 * i,
                "latency_p99_ms": 20.0 + i,
                "drift_share": 0.5 if i > 8 else 0.0,
                "drift:age": drift,
                "drift:plan": 0.01,
                "accuracy": 0.9 - 0.01 * i,
                "accuracy[plan=pro]": 0.88,
                "missing_rate": 0.0,
            },
            details,
        )
    rule = ws.monitors.create_rule(
        AlertRule(
            rule_id=0,
            name="age-drift",
            monitor=seeded.monitor,
            metric="drift:age",
            operator=">",
            threshold=0.3,
            action="retrain",
        )
    )
    ws.monitors.add_alert(
        Alert(
            alert_id=0,
            rule_id=rule.rule_id,
            rule=rule.name,
            monitor=seeded.monitor,
            metric="drift:age",
            value=0.35,
            threshold=0.3,
            result_id=None,
            status="open",
            fired_time=BASE_MS + 11 * hour,
            payload={"action": "retrain"},
        )
    )
