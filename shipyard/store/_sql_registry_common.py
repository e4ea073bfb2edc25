"""Helpers of the SQL registry store: input rules, the audit-trail writer, and turning rows of the
registry tables into entities (the details of many models or versions in a few ``IN`` queries)."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from shipyard import errors, validation
from shipyard.entities import (
    Approval,
    ModelAlias,
    ModelStage,
    ModelVersion,
    ModelVersionStatus,
    RegisteredModel,
    RegistryAction,
    RegistryEvent,
)
from shipyard.errors import InvalidInput
from shipyard.store import _sql_artifacts
from shipyard.store._sql_common import IN_CHUNK, chunks, driver_execute, driver_sql, now_ms
from shipyard.store.registry import ALL_ALIASES
from shipyard.store.schema import (
    approval_policies,
    artifacts,
    model_aliases,
    model_version_approvals,
    model_version_tags,
    model_versions,
    registered_model_tags,
    registered_models,
    registry_events,
)

MAX_MODEL_NAME_LENGTH = 256
MAX_ALIAS_LENGTH = 255
MAX_DESCRIPTION_LENGTH = 65535
MAX_SOURCE_LENGTH = 65535
MAX_REASON_LENGTH = 5000
MAX_VERSION = 2**31 - 1
MAX_REGISTERED_MODEL_RESULTS = 1000
MAX_MODEL_VERSION_RESULTS = 200000

_ALIAS_RE = re.compile(r"^[\w\-]+$")
_RESERVED_ALIAS_RE = re.compile(r"^(latest|v\d+)$", re.IGNORECASE)
_STAGES = {s.value.lower(): s.value for s in ModelStage}
_STATUSES = tuple(s.value for s in ModelVersionStatus)

_m, _v = registered_models.c, model_versions.c
_p, _ap, _e = approval_policies.c, model_version_approvals.c, registry_events.c


# ---------------------------------------------------------------------------- input rules


def model_name(value: object) -> str:
    """A registered model name: 1-256 characters, no ``/`` or ``@`` (they split model URIs)."""
    name = validation.text(value, "model name", MAX_MODEL_NAME_LENGTH, allow_empty=False)
    if not name.strip() or name != name.strip():
        raise InvalidInput(
            f"model name {name!r} must not be blank or start or end with spaces; use a name "
            "such as 'churn-classifier'."
        )
    if "/" in name or "@" in name:
        raise InvalidInput(
            f"model name {name!r} contains '/' or '@', which separate the parts of a model URI "
            "(models:/name/3, models:/name@alias); choose a name without them."
        )
    return name


def version_number(value: object) -> int:
    """A version number: a positive integer (``"3"`` is accepted, as MLflow sends strings)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_VERSION:
        raise InvalidInput(
            f"model version {value!r} is not valid; versions are whole numbers from 1, as in "
            "models:/churn/3."
        )
    return value


def alias_name(value: object) -> str:
    """An alias: letters, digits, ``_`` and ``-``; ``latest`` and ``v<digits>`` are reserved."""
    alias = validation.text(value, "alias", MAX_ALIAS_LENGTH, allow_empty=False)
    if not _ALIAS_RE.match(alias):
        raise InvalidInput(
            f"alias {alias!r} is not valid; use letters, digits, '_' and '-' only, as in "
            "'champion'."
        )
    if _RESERVED_ALIAS_RE.match(alias):
        raise InvalidInput(
            f"alias {alias!r} is reserved ('latest' and 'v<number>' name versions in model "
            "URIs); choose another name, such as 'champion'."
        )
    return alias


def stage(value: object) -> str:
    """An MLflow stage in any case, returned in its canonical spelling (``Staging``)."""
    canonical = _STAGES.get(value.lower()) if isinstance(value, str) else None
    if canonical is None:
        raise InvalidInput(
            f"stage {value!r} is not valid; use one of {', '.join(_STAGES.values())}."
        )
    return canonical


def status(value: object) -> str:
    if value not in _STATUSES:
        raise InvalidInput(
            f"model version status {value!r} is not valid; use {', '.join(_STATUSES)}."
        )
    return str(value)


def user(value: object) -> str:
    return validation.text(value, "user id", validation.MAX_USER_ID_LENGTH)


def optional_text(value: object, what: str, limit: int) -> str | None:
    return None if value is None else validation.text(value, what, limit)


MAX_TAG_VALUE_LENGTH = 100_000
"""Registered model and model version tag values: MLflow's registry limit (run tags: 8,000)."""


def tag_value(value: object, key: str) -> str:
    """A registry tag value, checked against the registry's limit."""
    return validation.text(value, f"value of tag {key!r}", MAX_TAG_VALUE_LENGTH)


def tags(values: dict[str, str] | None, what: str) -> dict[str, str]:
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise InvalidInput(f"{what}s must be a mapping of keys to values, got {values!r}.")
    if len(values) > validation.MAX_TAGS_PER_BATCH:
        raise InvalidInput(
            f"{len(values)} {what}s at once; the limit is {validation.MAX_TAGS_PER_BATCH}."
        )
    return {validation.key(k, f"{what} key"): tag_value(v, k) for k, v in values.items()}


# ---------------------------------------------------------------------------- audit trail


def record_event(
    conn: Connection,
    model_id: int,
    name: str,
    action: RegistryAction,
    *,
    user_id: str,
    reason: str | None,
    version: int | None = None,
    alias: str | None = None,
    from_value: object = None,
    to_value: object = None,
) -> int:
    """Append one audit event and return its time.

    Times never go backwards within a model (a clock step back would otherwise reorder its
    history), so "which version held alias A at time T" has one answer.
    """
    dialect = conn.dialect.name
    found = driver_execute(conn, _last_event_time(dialect), (model_id,)).fetchone()
    last = found[0] if found is not None else None
    when = max(now_ms(), last or 0)
    values = (
        model_id,
        name,
        version,
        alias,
        action.value,
        None if from_value is None else str(from_value),
        None if to_value is None else str(to_value),
        user_id,
        reason,
        when,
    )
    driver_execute(conn, _event_insert(dialect), values)
    return when


_EVENT_COLUMNS = (
    "model_id", "model_name", "version", "alias", "action",
    "from_value", "to_value", "user_id", "reason", "event_time",
)  # fmt: skip


# Every registry write appends an event: compiled once per dialect, run through the driver.


@functools.cache
def _last_event_time(dialect: str) -> str:
    e = registry_events.c
    stmt = sa.select(sa.func.max(e.event_time)).where(e.model_id == sa.bindparam("model_id"))
    return driver_sql(stmt, dialect, ("model_id",))


@functools.cache
def _event_insert(dialect: str) -> str:
    stmt = sa.insert(registry_events).values({c: sa.bindparam(c) for c in _EVENT_COLUMNS})
    return driver_sql(stmt, dialect, _EVENT_COLUMNS)


# ---------------------------------------------------------------------------- rows -> entities

VERSION_COLUMNS = (_m.name, *(c for c in model_versions.c))


def versions_query() -> sa.Select[Any]:
    """``model_versions`` rows with their model's name."""
    return sa.select(*VERSION_COLUMNS).join_from(
        model_versions, registered_models, _m.model_id == _v.model_id
    )


def load_versions(conn: Connection, rows: Sequence[Row[Any]]) -> list[ModelVersion]:
    """Versions with tags and aliases for rows of :func:`versions_query`."""
    keys = [(r.model_id, r.version) for r in rows]
    version_tags: dict[tuple[int, int], dict[str, str]] = {k: {} for k in keys}
    version_aliases: dict[tuple[int, int], list[str]] = {k: [] for k in keys}
    t, a = model_version_tags.c, model_aliases.c
    for chunk in chunks(sorted(set(keys)), IN_CHUNK // 2):
        query = (
            sa.select(t.model_id, t.version, t.key, t.value)
            .where(sa.tuple_(t.model_id, t.version).in_(chunk))
            .order_by(t.model_id, t.version, t.key)
        )
        for row in conn.execute(query):
            version_tags[(row.model_id, row.version)][row.key] = row.value
        alias_query = (
            sa.select(a.model_id, a.version, a.alias)
            .where(sa.tuple_(a.model_id, a.version).in_(chunk))
            .order_by(a.model_id, a.alias)
        )
        for arow in conn.execute(alias_query):
            version_aliases[(arow.model_id, arow.version)].append(arow.alias)
    return [
        version_entity(
            r,
            version_tags[(r.model_id, r.version)],
            tuple(version_aliases[(r.model_id, r.version)]),
        )
        for r in rows
    ]


def version_entity(
    row: Row[Any], tag_values: dict[str, str], aliases: tuple[str, ...]
) -> ModelVersion:
    return ModelVersion(
        name=row.name,
        version=row.version,
        source=row.source,
        run_id=row.run_id,
        status=row.status,
        status_message=row.status_message,
        description=row.description,
        user_id=row.user_id,
        creation_timestamp=row.creation_time,
        last_updated_timestamp=row.last_updated_time,
        current_stage=row.current_stage,
        storage_owner=row.storage_owner,
        storage_path=row.storage_path,
        content_digest=row.content_digest,
        tags=tag_values,
        aliases=aliases,
    )


def latest_per_stage(
    conn: Connection, model_ids: Sequence[int], stages: Sequence[str] | None = None
) -> dict[int, list[ModelVersion]]:
    """The newest version in each stage (optionally only ``stages``) of each model."""
    found: dict[int, list[ModelVersion]] = {i: [] for i in model_ids}
    for chunk in chunks(list(model_ids)):
        newest = (
            sa.select(_v.model_id, _v.current_stage, sa.func.max(_v.version).label("version"))
            .where(_v.model_id.in_(chunk))
            .group_by(_v.model_id, _v.current_stage)
        )
        if stages:
            newest = newest.where(_v.current_stage.in_(stages))
        sub = newest.subquery("newest")
        query = (
            versions_query()
            .join(sub, sa.and_(sub.c.model_id == _v.model_id, sub.c.version == _v.version))
            .order_by(_v.model_id, _v.current_stage)
        )
        rows = list(conn.execute(query))
        for row, version in zip(rows, load_versions(conn, rows), strict=True):
            found[row.model_id].append(version)
    return found


def load_models(conn: Connection, rows: Sequence[Row[Any]]) -> list[RegisteredModel]:
    """Models with tags, aliases, newest version per stage and approval policy."""
    ids = [r.model_id for r in rows]
    model_tags: dict[int, dict[str, str]] = {i: {} for i in ids}
    aliases: dict[int, list[ModelAlias]] = {i: [] for i in ids}
    policies: dict[int, dict[str, int]] = {i: {} for i in ids}
    t, a, p = registered_model_tags.c, model_aliases.c, approval_policies.c
    for chunk in chunks(ids):
        for row in conn.execute(
            sa.select(t.model_id, t.key, t.value)
            .where(t.model_id.in_(chunk))
            .order_by(t.model_id, t.key)
        ):
            model_tags[row.model_id][row.key] = row.value
        for row in conn.execute(
            sa.select(a.model_id, a.alias, a.version)
            .where(a.model_id.in_(chunk))
            .order_by(a.model_id, a.alias)
        ):
            aliases[row.model_id].append(ModelAlias(row.alias, row.version))
        for row in conn.execute(
            sa.select(p.model_id, p.alias, p.required_approvals)
            .where(p.model_id.in_(chunk))
            .order_by(p.model_id, p.alias)
        ):
            policies[row.model_id][row.alias] = row.required_approvals
    latest = latest_per_stage(conn, ids)
    return [
        RegisteredModel(
            name=r.name,
            description=r.description,
            user_id=r.user_id,
            creation_timestamp=r.creation_time,
            last_updated_timestamp=r.last_updated_time,
            tags=model_tags[r.model_id],
            aliases=tuple(aliases[r.model_id]),
            latest_versions=tuple(latest[r.model_id]),
            approval_policy=policies[r.model_id],
        )
        for r in rows
    ]


# ---------------------------------------------------------------------------- store helpers


def reason(value: object) -> str | None:
    return optional_text(value, "reason", MAX_REASON_LENGTH)


def model_events(conn: Connection, name: str) -> sa.ColumnElement[bool]:
    """The events of the model now called ``name``, or of every model once called that."""
    model_id = conn.scalar(sa.select(_m.model_id).where(_m.name == name))
    return _e.model_id == model_id if model_id is not None else _e.model_name == name


def package_files(conn: Connection, dialect: str, owner: str, path: str) -> list[Row[Any]]:
    """The index entries of file ``path`` or everything below folder ``path`` of ``owner``."""
    if path:
        values: tuple[str, ...] = (owner, path, path + "/", path + "0")
    else:
        values = (owner,)
    return list(conn.exec_driver_sql(_package_files_select(dialect, bool(path)), values))


@functools.cache
def _package_files_select(dialect: str, below: bool) -> str:
    # The file itself, or the paths strictly inside the folder (as _sql_artifacts._below:
    # between "folder/" and "folder0", '0' following '/' in byte order).
    ac = artifacts.c
    key = _sql_artifacts._path(dialect)
    query = sa.select(ac.path, ac.digest, ac.size).where(ac.owner_id == sa.bindparam("owner"))
    names: tuple[str, ...] = ("owner",)
    if below:
        query = query.where(
            sa.or_(
                ac.path == sa.bindparam("path"),
                sa.and_(key >= sa.bindparam("lower"), key < sa.bindparam("upper")),
            )
        )
        names += ("path", "lower", "upper")
    return driver_sql(query.order_by(key), dialect, names)


def tree_digest(files: Sequence[Row[Any]], root: str) -> str:
    """sha256 of the package's ``relative-path digest`` lines, sorted: equal for equal trees
    wherever they were logged."""
    prefix = f"{root}/" if root else ""
    lines = sorted(
        f"{f.path[len(prefix) :] if f.path != root else f.path.rsplit('/', 1)[-1]} {f.digest}"
        for f in files
    )
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def refuse_if_aliased(name: str, version: int, aliases: Sequence[Row[Any]]) -> None:
    if not aliases:
        return
    names = ", ".join(repr(r.alias) for r in aliases)
    first = aliases[0].alias
    raise errors.InvalidState(
        f"Model {name!r} version {version} can't be deleted: alias {names} points at it. Move "
        f"the alias to another version (`shipyard models alias set {name} {first} VERSION`) or "
        f"delete it (`shipyard models alias delete {name} {first}`) first.",
        details={"references": [f"alias {r.alias!r}" for r in aliases]},
    )


def check_approvals(conn: Connection, model: Row[Any], alias: str, version: int) -> None:
    policy = dict(
        conn.execute(
            sa.select(_p.alias, _p.required_approvals).where(
                _p.model_id == model.model_id, _p.alias.in_([alias, ALL_ALIASES])
            )
        ).all()
    )
    required = policy.get(alias, policy.get(ALL_ALIASES, 0))
    if not required:
        return
    approvers = list(
        conn.scalars(
            sa.select(_ap.approver)
            .where(_ap.model_id == model.model_id, _ap.version == version)
            .order_by(_ap.approver)
        )
    )
    if len(approvers) >= required:
        return
    scope = f"alias {alias!r}" if alias in policy else "every alias"
    have = f"{len(approvers)} ({', '.join(approvers)})" if approvers else "none"
    raise errors.ApprovalRequired(
        f"Alias {alias!r} of model {model.name!r} can't move to version {version}: the model "
        f"requires {required} distinct approval(s) for {scope}, and version {version} has "
        f"{have}. Approve it with `shipyard models approve {model.name} {version}` (by "
        f"{required - len(approvers)} more approver(s)), then set the alias again.",
        details={"required": required, "approvals": len(approvers), "approvers": approvers},
    )


def approval_entity(name: str, row: Row[Any]) -> Approval:
    return Approval(
        name=name,
        version=row.version,
        approver=row.approver,
        comment=row.comment,
        timestamp=row.approval_time,
    )


def event_entity(row: Row[Any]) -> RegistryEvent:
    return RegistryEvent(
        event_id=row.event_id,
        name=row.model_name,
        action=row.action,
        timestamp=row.event_time,
        version=row.version,
        alias=row.alias,
        from_value=row.from_value,
        to_value=row.to_value,
        user_id=row.user_id,
        reason=row.reason,
    )
