"""The metadata store interface for security: users, API tokens, role grants, the audit log.

One abstract class, implemented by :class:`~shipyard.store.sql_security.SqlSecurityStore`
(SQLite and PostgreSQL, in the tracking store's database). The store keeps what it is given:
password hashes and token digests are computed by :mod:`shipyard.security`, never here, and
no secret is ever stored in the clear.

Conventions:

* Users are addressed by ``username``; tokens by their ``token_id`` (32 hex digits, shown to
  users) or, to authenticate, by the SHA-256 hex digest of the secret.
* A grant gives one user one role on one scope: ``"*"`` (the whole workspace),
  ``"experiment:<id>"`` or ``"model:<name>"``. Setting a grant on a scope the user already
  holds replaces the role.
* The audit log is append-only; deleting a user leaves its events.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class User:
    username: str
    has_password: bool
    disabled: bool
    creation_time: int
    last_update_time: int


@dataclass(frozen=True, slots=True)
class UserSecret:
    """A user with its password hash (only for verifying a password)."""

    user: User
    password_hash: str | None


@dataclass(frozen=True, slots=True)
class Token:
    token_id: str
    username: str
    name: str
    creation_time: int
    expiry_time: int | None
    revoked_time: int | None
    last_used_time: int | None

    def is_active(self, now_ms: int) -> bool:
        """Neither revoked nor expired at ``now_ms``."""
        if self.revoked_time is not None:
            return False
        return self.expiry_time is None or now_ms < self.expiry_time


@dataclass(frozen=True, slots=True)
class Grant:
    username: str
    scope: str
    role: str
    granted_by: str
    creation_time: int


@dataclass(frozen=True, slots=True)
class AuditEvent:
    event_id: int
    event_time: int
    action: str
    """``user.created``, ``token.revoked``, ``grant.set``, ``login.failed``..."""
    actor: str
    subject: str | None
    scope: str | None
    role: str | None
    outcome: str
    """``ok`` or ``denied`` / ``failed``."""
    remote_addr: str | None
    detail: dict[str, Any]


class SecurityStore(ABC):
    """Users, tokens, grants and the audit log. Every method is one transaction."""

    # ---------------------------------------------------------------- users

    @abstractmethod
    def create_user(self, username: str, password_hash: str | None) -> User:
        """Add a user; ``AlreadyExists`` if the name is taken."""

    @abstractmethod
    def get_user(self, username: str) -> UserSecret | None:
        """The user and its password hash, or ``None``."""

    @abstractmethod
    def list_users(self) -> list[User]:
        """Every user, by name."""

    @abstractmethod
    def update_user(
        self,
        username: str,
        *,
        password_hash: str | None = None,
        clear_password: bool = False,
        disabled: bool | None = None,
    ) -> User:
        """Change a user's password hash and/or disabled flag; ``NotFound`` if absent."""

    @abstractmethod
    def delete_user(self, username: str) -> None:
        """Remove a user with its tokens and grants; ``NotFound`` if absent."""

    # ---------------------------------------------------------------- tokens

    @abstractmethod
    def create_token(
        self,
        username: str,
        token_id: str,
        name: str,
        secret_hash: str,
        expiry_time: int | None,
    ) -> Token:
        """Store a new token of ``username`` (by the digest of its secret)."""

    @abstractmethod
    def find_token(self, secret_hash: str) -> tuple[Token, User] | None:
        """The token with this digest and its user, or ``None``."""

    @abstractmethod
    def touch_token(self, token_id: str, when: int) -> None:
        """Record that the token was used at ``when`` (best effort)."""

    @abstractmethod
    def list_tokens(self, username: str | None = None) -> list[Token]:
        """Tokens (of one user, or of everyone), newest first; revoked ones included."""

    @abstractmethod
    def revoke_token(self, token_id: str, when: int) -> Token:
        """Mark a token revoked (idempotent); ``NotFound`` if absent."""

    # ---------------------------------------------------------------- grants

    @abstractmethod
    def set_grant(self, username: str, scope: str, role: str, granted_by: str) -> Grant:
        """Give ``username`` ``role`` on ``scope`` (replacing a role held there)."""

    @abstractmethod
    def delete_grant(self, username: str, scope: str) -> Grant | None:
        """Remove the user's grant on ``scope``; the removed grant, or ``None``."""

    @abstractmethod
    def list_grants(self, username: str | None = None, scope: str | None = None) -> list[Grant]:
        """Grants, optionally of one user and/or on one scope."""

    # ---------------------------------------------------------------- audit

    @abstractmethod
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
        """Append one event to the audit log."""

    @abstractmethod
    def list_audit(
        self, *, limit: int = 100, action: str | None = None, before_id: int | None = None
    ) -> list[AuditEvent]:
        """Audit events, newest first (``before_id`` pages backwards)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (the SQL store shares the tracking store's database)."""
