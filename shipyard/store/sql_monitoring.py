"""Monitoring on SQLite or PostgreSQL, in the same database as the tracking store.

Every public method is one transaction. Watermarks and rule states move under compare-and-set,
so schedulers in several processes share the work without doing it twice.
"""

from __future__ import annotations

import math
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from shipyard import errors
from shipyard.store._sql_common import inserted_id as _inserted_id
from shipyard.store._sql_common import json_text as _dumps
from shipyard.store._sql_common import json_value as _loads
from shipyard.store._sql_common import now_ms
from shipyard.store.db import Database
from shipyard.store.monitoring import (
    Alert,
    AlertRule,
    AlertStatus,
    Monitor,
    MonitorResult,
    MonitorStore,
)
from shipyard.store.schema import alert_rules, alerts, monitor_results, monitors

_m, _res, _ru, _al = monitors.c, monitor_results.c, alert_rules.c, alerts.c


def _monitor(row: Row[Any]) -> Monitor:
    return Monitor(
        monitor_id=row.monitor_id,
        name=row.name,
        endpoint=row.endpoint,
        model=row.model,
        deployment=row.deployment,
        spec=_loads(row.spec) or {},
        reference_profile=row.reference_profile,
        enabled=bool(row.enabled),
        watermark=row.watermark,
        creation_time=row.creation_time,
        last_run_time=row.last_run_time,
    )


def _result(row: Row[Any]) -> MonitorResult:
    return MonitorResult(
        result_id=row.result_id,
        monitor_id=row.monitor_id,
        window_start=row.window_start,
        window_end=row.window_end,
        num_rows=row.num_rows,
        metrics=_loads(row.metrics) or {},
        details=_loads(row.details) or {},
        computed_time=row.computed_time,
    )


def _rule(row: Row[Any]) -> AlertRule:
    return AlertRule(
        rule_id=row.rule_id,
        name=row.name,
        monitor=row.monitor,
        metric=row.metric,
        operator=row.operator,
        threshold=row.threshold,
        consecutive=row.consecutive,
        cooldown_s=row.cooldown_s,
        sinks=_loads(row.sinks) or [],
        action=row.action,
        enabled=bool(row.enabled),
        creation_time=row.creation_time,
        last_result_id=row.last_result_id,
        breach_count=row.breach_count,
        in_breach=bool(row.in_breach),
        last_fired_time=row.last_fired_time,
    )


def _alert(row: Row[Any]) -> Alert:
    return Alert(
        alert_id=row.alert_id,
        rule_id=row.rule_id,
        rule=row.rule,
        monitor=row.monitor,
        metric=row.metric,
        value=row.value,
        threshold=row.threshold,
        result_id=row.result_id,
        status=row.status,
        fired_time=row.fired_time,
        resolved_time=row.resolved_time,
        acknowledged_by=row.acknowledged_by,
        acknowledged_time=row.acknowledged_time,
        note=row.note,
        payload=_loads(row.payload) or {},
        deliveries=_loads(row.deliveries) or [],
    )


def _no_monitor(name: str) -> errors.NotFound:
    return errors.NotFound(
        f"No monitor is named {name!r}. List monitors with `shipyard monitor list`, or create "
        "one with `shipyard monitor create`."
    )


def _no_rule(name: str) -> errors.NotFound:
    return errors.NotFound(
        f"No alert rule is named {name!r}. List rules with `shipyard monitor rules`."
    )


class SqlMonitorStore(MonitorStore):
    """Monitors, results, rules and alerts in SQL. ``database`` is the tracking store's, which
    owns it: :meth:`close` leaves it open."""

    def __init__(self, database: Database) -> None:
        self._db = database

    # ---------------------------------------------------------------- monitors

    def create_monitor(self, monitor: Monitor) -> Monitor:
        def write(conn: Connection) -> None:
            if conn.scalar(sa.select(_m.monitor_id).where(_m.name == monitor.name)) is not None:
                raise errors.AlreadyExists(
                    f"A monitor named {monitor.name!r} already exists; delete it with "
                    f"`shipyard monitor delete {monitor.name}` or choose another name."
                )
            conn.execute(
                monitors.insert().values(
                    name=monitor.name,
                    endpoint=monitor.endpoint,
                    model=monitor.model,
                    deployment=monitor.deployment,
                    spec=_dumps(monitor.spec),
                    reference_profile=monitor.reference_profile,
                    enabled=monitor.enabled,
                    watermark=monitor.watermark,
                    creation_time=monitor.creation_time or now_ms(),
                    last_run_time=None,
                )
            )

        self._db.write(write)
        return self.get_monitor(monitor.name)

    def get_monitor(self, name: str) -> Monitor:
        row = self._db.read(lambda c: c.execute(sa.select(monitors).where(_m.name == name)).first())
        if row is None:
            raise _no_monitor(name)
        return _monitor(row)

    def list_monitors(self) -> list[Monitor]:
        rows = self._db.read(lambda c: c.execute(sa.select(monitors).order_by(_m.name)).all())
        return [_monitor(r) for r in rows]

    def delete_monitor(self, name: str) -> None:
        def write(conn: Connection) -> None:
            monitor_id = conn.scalar(sa.select(_m.monitor_id).where(_m.name == name))
            if monitor_id is None:
                raise _no_monitor(name)
            # Explicit, so SQLite without foreign-key enforcement cleans up too.
            conn.execute(sa.delete(monitor_results).where(_res.monitor_id == monitor_id))
            conn.execute(sa.delete(monitors).where(_m.monitor_id == monitor_id))

        self._db.write(write)

    def update_monitor(
        self,
        name: str,
        *,
        enabled: bool | None = None,
        reference_profile: str | None = None,
        spec: dict[str, Any] | None = None,
        last_run_time: int | None = None,
    ) -> Monitor:
        values: dict[str, Any] = {}
        if enabled is not None:
            values["enabled"] = enabled
        if reference_profile is not None:
            values["reference_profile"] = reference_profile
        if spec is not None:
            values["spec"] = _dumps(spec)
        if last_run_time is not None:
            values["last_run_time"] = int(last_run_time)

        def write(conn: Connection) -> None:
            result = conn.execute(sa.update(monitors).where(_m.name == name).values(**values))
            if result.rowcount == 0:
                raise _no_monitor(name)

        if values:
            self._db.write(write)
        return self.get_monitor(name)

    def claim_window(self, monitor_id: int, expected: int | None, new: int) -> bool:
        current = _m.watermark.is_(None) if expected is None else _m.watermark == expected
        stmt = (
            sa.update(monitors)
            .where(_m.monitor_id == monitor_id, current)
            .values(watermark=new, last_run_time=now_ms())
        )
        return bool(self._db.write(lambda c: c.execute(stmt).rowcount) == 1)

    # ---------------------------------------------------------------- results

    def add_result(
        self,
        monitor_id: int,
        window_start: int,
        window_end: int,
        num_rows: int,
        metrics: dict[str, float | None],
        details: dict[str, Any],
    ) -> MonitorResult:
        now = now_ms()
        # NaN and infinities are not JSON: stored as missing.
        metrics = {
            k: (None if v is None or not math.isfinite(v) else float(v)) for k, v in metrics.items()
        }

        def write(conn: Connection) -> int:
            result = conn.execute(
                monitor_results.insert().values(
                    monitor_id=monitor_id,
                    window_start=window_start,
                    window_end=window_end,
                    num_rows=num_rows,
                    metrics=_dumps(metrics),
                    details=_dumps(details),
                    computed_time=now,
                )
            )
            return _inserted_id(result)

        result_id = self._db.write(write)
        return MonitorResult(
            result_id, monitor_id, window_start, window_end, num_rows, dict(metrics),
            dict(details), now,
        )  # fmt: skip

    def list_results(
        self,
        monitor: str,
        *,
        since: int | None = None,
        until: int | None = None,
        max_results: int = 1000,
    ) -> list[MonitorResult]:
        monitor_id = self.get_monitor(monitor).monitor_id
        query = (
            sa.select(monitor_results)
            .where(_res.monitor_id == monitor_id)
            .order_by(_res.window_end.desc(), _res.result_id.desc())
            .limit(max(1, max_results))
        )
        if since is not None:
            query = query.where(_res.window_end >= since)
        if until is not None:
            query = query.where(_res.window_end <= until)
        rows = self._db.read(lambda c: c.execute(query).all())
        return [_result(r) for r in reversed(rows)]

    def get_result(self, result_id: int) -> MonitorResult:
        row = self._db.read(
            lambda c: c.execute(
                sa.select(monitor_results).where(_res.result_id == result_id)
            ).first()
        )
        if row is None:
            raise errors.NotFound(f"No monitor result has the id {result_id}.")
        return _result(row)

    # ---------------------------------------------------------------- rules

    def create_rule(self, rule: AlertRule) -> AlertRule:
        def write(conn: Connection) -> None:
            if conn.scalar(sa.select(_ru.rule_id).where(_ru.name == rule.name)) is not None:
                raise errors.AlreadyExists(
                    f"An alert rule named {rule.name!r} already exists; delete it with "
                    f"`shipyard monitor rule-delete {rule.name}` or choose another name."
                )
            conn.execute(
                alert_rules.insert().values(
                    name=rule.name,
                    monitor=rule.monitor,
                    metric=rule.metric,
                    operator=rule.operator,
                    threshold=rule.threshold,
                    consecutive=rule.consecutive,
                    cooldown_s=rule.cooldown_s,
                    sinks=_dumps(rule.sinks),
                    action=rule.action,
                    enabled=rule.enabled,
                    creation_time=rule.creation_time or now_ms(),
                    last_result_id=rule.last_result_id,
                    breach_count=0,
                    in_breach=False,
                    last_fired_time=None,
                )
            )

        self._db.write(write)
        return self.get_rule(rule.name)

    def get_rule(self, name: str) -> AlertRule:
        row = self._db.read(
            lambda c: c.execute(sa.select(alert_rules).where(_ru.name == name)).first()
        )
        if row is None:
            raise _no_rule(name)
        return _rule(row)

    def list_rules(self, monitor: str | None = None) -> list[AlertRule]:
        query = sa.select(alert_rules).order_by(_ru.name)
        if monitor is not None:
            query = query.where(_ru.monitor == monitor)
        return [_rule(r) for r in self._db.read(lambda c: c.execute(query).all())]

    def delete_rule(self, name: str) -> None:
        def write(conn: Connection) -> None:
            if conn.execute(sa.delete(alert_rules).where(_ru.name == name)).rowcount == 0:
                raise _no_rule(name)

        self._db.write(write)

    def update_rule_state(
        self,
        rule_id: int,
        expected_result_id: int | None,
        *,
        last_result_id: int,
        breach_count: int,
        in_breach: bool,
        last_fired_time: int | None,
    ) -> bool:
        current = (
            _ru.last_result_id.is_(None)
            if expected_result_id is None
            else _ru.last_result_id == expected_result_id
        )
        stmt = (
            sa.update(alert_rules)
            .where(_ru.rule_id == rule_id, current)
            .values(
                last_result_id=last_result_id,
                breach_count=breach_count,
                in_breach=in_breach,
                last_fired_time=last_fired_time,
            )
        )
        return bool(self._db.write(lambda c: c.execute(stmt).rowcount) == 1)

    # ---------------------------------------------------------------- alerts

    def add_alert(self, alert: Alert) -> Alert:
        def write(conn: Connection) -> int:
            result = conn.execute(
                alerts.insert().values(
                    rule_id=alert.rule_id,
                    rule=alert.rule,
                    monitor=alert.monitor,
                    metric=alert.metric,
                    value=alert.value,
                    threshold=alert.threshold,
                    result_id=alert.result_id,
                    status=alert.status,
                    fired_time=alert.fired_time,
                    payload=_dumps(alert.payload),
                    deliveries=_dumps(alert.deliveries),
                )
            )
            return _inserted_id(result)

        return self.get_alert(self._db.write(write))

    def set_deliveries(
        self,
        alert_id: int,
        deliveries: list[dict[str, Any]],
        payload: dict[str, Any] | None = None,
    ) -> None:
        values = {"deliveries": _dumps(deliveries)}
        if payload is not None:
            values["payload"] = _dumps(payload)
        stmt = sa.update(alerts).where(_al.alert_id == alert_id).values(**values)
        self._db.write(lambda c: c.execute(stmt))

    def get_alert(self, alert_id: int) -> Alert:
        row = self._db.read(
            lambda c: c.execute(sa.select(alerts).where(_al.alert_id == alert_id)).first()
        )
        if row is None:
            raise errors.NotFound(
                f"No alert has the id {alert_id}. List alerts with `shipyard monitor alerts`."
            )
        return _alert(row)

    def list_alerts(
        self,
        *,
        status: str | None = None,
        rule: str | None = None,
        monitor: str | None = None,
        max_results: int = 100,
    ) -> list[Alert]:
        query = sa.select(alerts).order_by(_al.alert_id.desc()).limit(max(1, max_results))
        if status is not None:
            query = query.where(_al.status == status)
        if rule is not None:
            query = query.where(_al.rule == rule)
        if monitor is not None:
            query = query.where(_al.monitor == monitor)
        return [_alert(r) for r in self._db.read(lambda c: c.execute(query).all())]

    def acknowledge_alert(self, alert_id: int, user: str, note: str | None = None) -> Alert:
        def write(conn: Connection) -> None:
            row = conn.execute(sa.select(alerts).where(_al.alert_id == alert_id)).first()
            if row is None:
                raise errors.NotFound(
                    f"No alert has the id {alert_id}. List alerts with `shipyard monitor alerts`."
                )
            values: dict[str, Any] = {
                "acknowledged_by": user,
                "acknowledged_time": now_ms(),
                "note": note,
            }
            if row.status == AlertStatus.OPEN:
                values["status"] = AlertStatus.ACKNOWLEDGED.value
            conn.execute(sa.update(alerts).where(_al.alert_id == alert_id).values(**values))

        self._db.write(write)
        return self.get_alert(alert_id)

    def resolve_alerts(self, rule_id: int, when: int) -> int:
        stmt = (
            sa.update(alerts)
            .where(_al.rule_id == rule_id, _al.status != AlertStatus.RESOLVED.value)
            .values(status=AlertStatus.RESOLVED.value, resolved_time=when)
        )
        return int(self._db.write(lambda c: c.execute(stmt).rowcount))

    def close(self) -> None:
        """Nothing to release: the tracking store owns the database."""
