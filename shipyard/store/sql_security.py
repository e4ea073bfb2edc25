"""Users, tokens, grants and the security audit log on SQLite or PostgreSQL.

:class:`SqlSecurityStore` shares the tracking store's :class:`~shipyard.store.db.Database`, so
grants live next to the experiments and models they name and a backup holds both.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from shipyard import errors
from shipyard.store._sql_common import now_ms
from shipyard.store.db import Database
from shipyard.store.schema import auth_audit, auth_grants, auth_tokens, auth_users
from shipyard.store.security import (
    AuditEvent,
    Grant,
    SecurityStore,
    Token,
    User,
    UserSecret,
)

_u, _t, _g, _a = auth_users.c, auth_tokens.c, auth_grants.c, auth_audit.c


def _user(row: Row[Any]) -> User:
    return User(
        username=row.username,
        has_password=row.password_hash is not None,
        disabled=bool(row.disabled),
        creation_time=row.creation_time,
        last_update_time=row.last_update_time,
    )


def _token(row: Any) -> Token:
    return Token(
        token_id=row.token_id,
        username=row.username,
        name=row.name,
        creation_time=row.creation_time,
        expiry_time=row.expiry_time,
        revoked_time=row.revoked_time,
        last_used_time=row.last_used_time,
    )


def _grant(row: Any) -> Grant:
    return Grant(
        username=row.username,
        scope=row.scope,
        role=row.role,
        granted_by=row.granted_by,
        creation_time=row.creation_time,
    )


def _no_user(username: str) -> errors.NotFound:
    return errors.NotFound(
        f"No user is named {username!r}. List users with `shipyard auth users list`."
    )


_TOKEN_COLUMNS = (
    _t.token_id,
    _u.username,
    _t.name,
    _t.creation_time,
    _t.expiry_time,
    _t.revoked_time,
    _t.last_used_time,
)


class SqlSecurityStore(SecurityStore):
    """The security tables in SQL. ``database`` is the tracking store's, which owns it."""

    def __init__(self, database: Database) -> None:
        self._db = database

    # ---------------------------------------------------------------- users

    @staticmethod
    def _user_id(conn: Connection, username: str) -> int:
        user_id = conn.scalar(sa.select(_u.user_id).where(_u.username == username))
        if user_id is None:
            raise _no_user(username)
        return int(user_id)

    def create_user(self, username: str, password_hash: str | None) -> User:
        def write(conn: Connection) -> User:
            if conn.scalar(sa.select(_u.user_id).where(_u.username == username)) is not None:
                raise errors.AlreadyExists(
                    f"A user named {username!r} already exists; pick another name or change "
                    f"its password with `shipyard auth users set-password {username}`."
                )
            now = now_ms()
            conn.execute(
                auth_users.insert().values(
                    username=username,
                    password_hash=password_hash,
                    disabled=False,
                    creation_time=now,
                    last_update_time=now,
                )
            )
            return User(username, password_hash is not None, False, now, now)

        return self._db.write(write)

    def get_user(self, username: str) -> UserSecret | None:
        def read(conn: Connection) -> UserSecret | None:
            row = conn.execute(sa.select(auth_users).where(_u.username == username)).first()
            return None if row is None else UserSecret(_user(row), row.password_hash)

        return self._db.read(read)

    def list_users(self) -> list[User]:
        def read(conn: Connection) -> list[User]:
            rows = conn.execute(sa.select(auth_users).order_by(_u.username)).all()
            return [_user(r) for r in rows]

        return self._db.read(read)

    def update_user(
        self,
        username: str,
        *,
        password_hash: str | None = None,
        clear_password: bool = False,
        disabled: bool | None = None,
    ) -> User:
        def write(conn: Connection) -> User:
            self._user_id(conn, username)
            values: dict[str, Any] = {"last_update_time": now_ms()}
            if password_hash is not None or clear_password:
                values["password_hash"] = password_hash
            if disabled is not None:
                values["disabled"] = disabled
            conn.execute(sa.update(auth_users).where(_u.username == username).values(**values))
            row = conn.execute(sa.select(auth_users).where(_u.username == username)).one()
            return _user(row)

        return self._db.write(write)

    def delete_user(self, username: str) -> None:
        def write(conn: Connection) -> None:
            user_id = self._user_id(conn, username)
            # Explicit deletes: SQLite enforces ON DELETE CASCADE only with foreign keys on.
            conn.execute(sa.delete(auth_tokens).where(_t.user_id == user_id))
            conn.execute(sa.delete(auth_grants).where(_g.user_id == user_id))
            conn.execute(sa.delete(auth_users).where(_u.user_id == user_id))

        self._db.write(write)

    # ---------------------------------------------------------------- tokens

    def create_token(
        self,
        username: str,
        token_id: str,
        name: str,
        secret_hash: str,
        expiry_time: int | None,
    ) -> Token:
        def write(conn: Connection) -> Token:
            user_id = self._user_id(conn, username)
            now = now_ms()
            conn.execute(
                auth_tokens.insert().values(
                    token_id=token_id,
                    user_id=user_id,
                    name=name,
                    secret_hash=secret_hash,
                    creation_time=now,
                    expiry_time=expiry_time,
                )
            )
            return Token(token_id, username, name, now, expiry_time, None, None)

        return self._db.write(write)

    def find_token(self, secret_hash: str) -> tuple[Token, User] | None:
        def read(conn: Connection) -> tuple[Token, User] | None:
            row = conn.execute(
                sa.select(
                    *_TOKEN_COLUMNS,
                    _u.password_hash,
                    _u.disabled,
                    _u.creation_time.label("user_creation_time"),
                    _u.last_update_time,
                )
                .select_from(auth_tokens.join(auth_users, _t.user_id == _u.user_id))
                .where(_t.secret_hash == secret_hash)
            ).first()
            if row is None:
                return None
            user = User(
                row.username,
                row.password_hash is not None,
                bool(row.disabled),
                row.user_creation_time,
                row.last_update_time,
            )
            return _token(row), user

        return self._db.read(read)

    def touch_token(self, token_id: str, when: int) -> None:
        self._db.write(
            lambda conn: conn.execute(
                sa.update(auth_tokens).where(_t.token_id == token_id).values(last_used_time=when)
            )
        )

    def list_tokens(self, username: str | None = None) -> list[Token]:
        def read(conn: Connection) -> list[Token]:
            query = sa.select(*_TOKEN_COLUMNS).select_from(
                auth_tokens.join(auth_users, _t.user_id == _u.user_id)
            )
            if username is not None:
                self._user_id(conn, username)
                query = query.where(_u.username == username)
            rows = conn.execute(query.order_by(_t.creation_time.desc(), _t.token_id)).all()
            return [_token(r) for r in rows]

        return self._db.read(read)

    def revoke_token(self, token_id: str, when: int) -> Token:
        def write(conn: Connection) -> Token:
            conn.execute(
                sa.update(auth_tokens)
                .where(_t.token_id == token_id, _t.revoked_time.is_(None))
                .values(revoked_time=when)
            )
            row = conn.execute(
                sa.select(*_TOKEN_COLUMNS)
                .select_from(auth_tokens.join(auth_users, _t.user_id == _u.user_id))
                .where(_t.token_id == token_id)
            ).first()
            if row is None:
                raise errors.NotFound(
                    f"No token has the id {token_id!r}. List tokens with "
                    "`shipyard auth tokens list`."
                )
            return _token(row)

        return self._db.write(write)

    # ---------------------------------------------------------------- grants

    def set_grant(self, username: str, scope: str, role: str, granted_by: str) -> Grant:
        def write(conn: Connection) -> Grant:
            user_id = self._user_id(conn, username)
            now = now_ms()
            conn.execute(sa.delete(auth_grants).where(_g.user_id == user_id, _g.scope == scope))
            conn.execute(
                auth_grants.insert().values(
                    user_id=user_id,
                    scope=scope,
                    role=role,
                    granted_by=granted_by,
                    creation_time=now,
                )
            )
            return Grant(username, scope, role, granted_by, now)

        return self._db.write(write)

    def delete_grant(self, username: str, scope: str) -> Grant | None:
        def write(conn: Connection) -> Grant | None:
            user_id = self._user_id(conn, username)
            row = conn.execute(
                self._grants_query().where(_g.user_id == user_id, _g.scope == scope)
            ).first()
            if row is None:
                return None
            conn.execute(sa.delete(auth_grants).where(_g.user_id == user_id, _g.scope == scope))
            return _grant(row)

        return self._db.write(write)

    @staticmethod
    def _grants_query() -> sa.Select[Any]:
        return sa.select(
            _u.username, _g.scope, _g.role, _g.granted_by, _g.creation_time
        ).select_from(auth_grants.join(auth_users, _g.user_id == _u.user_id))

    def list_grants(self, username: str | None = None, scope: str | None = None) -> list[Grant]:
        def read(conn: Connection) -> list[Grant]:
            query = self._grants_query()
            if username is not None:
                query = query.where(_u.username == username)
            if scope is not None:
                query = query.where(_g.scope == scope)
            rows = conn.execute(query.order_by(_u.username, _g.scope)).all()
            return [_grant(r) for r in rows]

        return self._db.read(read)

    # ---------------------------------------------------------------- audit

    def append_audit(
        self,
        action: str,
        actor: str,
        *,
        subject: str | None = None,
        scope: str | None = None,
        role: str | None = None,
        outcome: str = "ok",
        remote_addr: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        values = {
            "event_time": now_ms(),
            "action": action,
            "actor": actor[:256],
            "subject": subject[:256] if subject else subject,
            "scope": scope[:600] if scope else scope,
            "role": role,
            "outcome": outcome,
            "remote_addr": remote_addr[:64] if remote_addr else remote_addr,
            "detail": json.dumps(detail, sort_keys=True) if detail else None,
        }
        self._db.write(lambda conn: conn.execute(auth_audit.insert().values(**values)))

    def list_audit(
        self, *, limit: int = 100, action: str | None = None, before_id: int | None = None
    ) -> list[AuditEvent]:
        def read(conn: Connection) -> list[AuditEvent]:
            query = sa.select(auth_audit)
            if action is not None:
                query = query.where(_a.action == action)
            if before_id is not None:
                query = query.where(_a.event_id < before_id)
            rows = conn.execute(query.order_by(_a.event_id.desc()).limit(limit)).all()
            return [
                AuditEvent(
                    event_id=r.event_id,
                    event_time=r.event_time,
                    action=r.action,
                    actor=r.actor,
                    subject=r.subject,
                    scope=r.scope,
                    role=r.role,
                    outcome=r.outcome,
                    remote_addr=r.remote_addr,
                    detail=json.loads(r.detail) if r.detail else {},
                )
                for r in rows
            ]

        return self._db.read(read)
