"""Users, passwords, API tokens, role grants and the audit log: :class:`Security`.

The service every edge uses: the server's authenticator and authorizer
(:mod:`shipyard.server.auth`), the model server's guard (:mod:`shipyard.serving.app`) and the
``shipyard auth`` commands. It is framework-free: it takes header values and names, never a
request object.

* Passwords are hashed with argon2id (``argon2-cffi``, the ``server`` extra); a successful
  verification is remembered for :data:`VERIFIED_CACHE_SECONDS` per (stored hash, password
  digest), so a client sending HTTP Basic on every call pays the hash once a minute, and a
  password change (a new stored hash) takes effect at once.
* API tokens are ``shp_`` followed by 43 random URL-safe characters (256 bits); only their
  SHA-256 digest is stored. They expire (optional) and can be revoked; a revoked or expired token
  is refused on its next use.
* Grants are read per user and cached for :data:`GRANT_CACHE_SECONDS` per process: a revoke
  takes effect at once in the process that made it and within that time in every other worker.
* Every user change, token creation or revocation, grant, revoke and failed login is appended
  to the audit log (``shipyard auth audit``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shipyard.errors import (
    InvalidInput,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    missing_extra,
)
from shipyard.security.roles import (
    ACTION_ROLE,
    WORKSPACE_SCOPE,
    check_role,
    check_scope,
    satisfies,
    strongest,
)
from shipyard.store.security import AuditEvent, Grant, SecurityStore, Token, User

if TYPE_CHECKING:
    from shipyard.workspace import Workspace

logger = logging.getLogger("shipyard.security")

TOKEN_PREFIX = "shp_"
VERIFIED_CACHE_SECONDS = 60.0
GRANT_CACHE_SECONDS = 2.0
MIN_PASSWORD_LENGTH = 8
USERNAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]{0,255}")
"""A valid user name (matched with ``fullmatch``: ``$`` would let a trailing newline through)."""
SYSTEM_ACTOR = "system"
"""The actor of changes made by the server itself (admin bootstrap)."""

SELF_RESOURCE = "self:*"
"""The caller's own account (whoami, own tokens): every signed-in user may read and write it."""
ScopeResolver = Callable[[str], str | None]
"""Maps a resource (``run:<id>``) to the grant scope that governs it (``experiment:<eid>``)."""


def now_ms() -> int:
    return int(time.time() * 1000)


def token_digest(secret: str) -> str:
    """The SHA-256 hex digest under which a token's secret is stored."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def looks_like_token(value: str) -> bool:
    """Whether ``value`` has the shape of a Shipyard API token."""
    return value.startswith(TOKEN_PREFIX) and len(value) > len(TOKEN_PREFIX) + 16


def _hasher() -> Any:
    try:
        from argon2 import PasswordHasher
    except ImportError:  # pragma: no cover - the server extra installs it
        raise missing_extra("argon2-cffi", "server") from None
    return PasswordHasher()


def basic_credentials(value: str) -> tuple[str, str]:
    """``(user, password)`` from the base64 part of an HTTP Basic header."""
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise Unauthenticated(
            "The Basic credentials are not valid base64 of 'user:password'; check the client's "
            "username and password settings."
        ) from None
    username, sep, password = decoded.partition(":")
    if not sep:
        raise Unauthenticated("Basic credentials need the form 'user:password'.")
    return username, password


@dataclass(frozen=True, slots=True)
class SignedIn:
    """Who an ``Authorization`` header names (:meth:`Security.authenticate`) and how: ``method``
    is ``token`` or ``password``; ``token_expiry`` (epoch ms) is the expiry of the token used,
    ``None`` for a password or a token that does not expire."""

    user: User
    method: str
    token_expiry: int | None = None


@dataclass(frozen=True, slots=True)
class NewToken:
    """A token just created: its record and its secret (shown once, never stored)."""

    token: Token
    secret: str


class Security:
    """Users, tokens, grants and the audit log over a :class:`SecurityStore`."""

    def __init__(self, store: SecurityStore, resolve_scope: ScopeResolver | None = None) -> None:
        self.store = store
        self._resolve_scope = resolve_scope or (lambda resource: None)
        self._lock = threading.Lock()
        self._verified: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._grants: dict[str, tuple[float, dict[str, str]]] = {}
        self._hasher_obj: Any = None
        self._dummy_hash: str | None = None

    @classmethod
    def for_workspace(cls, ws: Workspace) -> Security:
        """The service over the workspace's security store, resolving runs and logged models
        to their experiments through the workspace's stores."""
        return cls(ws.security, WorkspaceScopes(ws))

    # ---------------------------------------------------------------- hashing

    @property
    def _hasher(self) -> Any:
        if self._hasher_obj is None:
            self._hasher_obj = _hasher()
        return self._hasher_obj

    def hash_password(self, password: str) -> str:
        """An argon2id hash of ``password`` (refusing passwords shorter than 8 characters)."""
        if len(password) < MIN_PASSWORD_LENGTH:
            raise InvalidInput(
                f"The password is {len(password)} characters long; use at least "
                f"{MIN_PASSWORD_LENGTH} (a passphrase is best)."
            )
        return str(self._hasher.hash(password))

    def _verify_hash(self, stored: str | None, password: str) -> bool:
        from argon2.exceptions import InvalidHashError, VerificationError

        if stored is None:
            # Same work as a real check, so a missing user can't be told apart by timing.
            if self._dummy_hash is None:
                self._dummy_hash = self._hasher.hash(secrets.token_hex(16))
            stored, password_ok = self._dummy_hash, False
        else:
            password_ok = True
        key = (stored, hashlib.sha256(password.encode("utf-8")).hexdigest())
        with self._lock:
            expiry = self._verified.get(key)
            if expiry is not None and expiry > time.monotonic():
                return password_ok
        try:
            self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False
        if password_ok:
            with self._lock:
                self._verified[key] = time.monotonic() + VERIFIED_CACHE_SECONDS
                while len(self._verified) > 4096:
                    self._verified.popitem(last=False)
        return password_ok

    # ---------------------------------------------------------------- users

    def create_user(self, username: str, password: str | None = None, *, actor: str) -> User:
        """Add a user (without a password, it can sign in only with tokens or through a
        trusted proxy)."""
        if not USERNAME_PATTERN.fullmatch(username):
            raise InvalidInput(
                f"{username!r} is not a valid user name: use 1-256 letters, digits and "
                "'_.@+-', starting with a letter or digit."
            )
        hashed = self.hash_password(password) if password is not None else None
        user = self.store.create_user(username, hashed)
        self.store.append_audit("user.created", actor, subject=username)
        return user

    def get_user(self, username: str) -> User:
        found = self.store.get_user(username)
        if found is None:
            raise NotFound(
                f"No user is named {username!r}. List users with `shipyard auth users list`."
            )
        return found.user

    def list_users(self) -> list[User]:
        return self.store.list_users()

    def set_password(self, username: str, password: str, *, actor: str) -> User:
        user = self.store.update_user(username, password_hash=self.hash_password(password))
        self.store.append_audit("user.password_changed", actor, subject=username)
        return user

    def set_disabled(self, username: str, disabled: bool, *, actor: str) -> User:
        user = self.store.update_user(username, disabled=disabled)
        action = "user.disabled" if disabled else "user.enabled"
        self.store.append_audit(action, actor, subject=username)
        self._forget_grants(username)
        return user

    def delete_user(self, username: str, *, actor: str) -> None:
        self.store.delete_user(username)
        self.store.append_audit("user.deleted", actor, subject=username)
        self._forget_grants(username)

    # ---------------------------------------------------------------- tokens

    def create_token(
        self,
        username: str,
        name: str = "default",
        *,
        expires_in_days: float | None = None,
        actor: str,
        not_after: int | None = None,
    ) -> NewToken:
        """A new API token for ``username``; the secret is in the answer and nowhere else.
        ``not_after`` (epoch ms): the expiry of the token the caller signed in with, which a
        new token may not outlive (else a short-lived token could mint a lasting one)."""
        if not name or len(name) > 256:
            raise InvalidInput("Give the token a name of 1-256 characters (what it is for).")
        expiry = None
        if expires_in_days is not None:
            if not 0 < expires_in_days <= 3650:
                raise InvalidInput(
                    f"expires_in_days={expires_in_days}; give a number of days in (0, 3650], "
                    "or none for a token that does not expire."
                )
            expiry = now_ms() + int(expires_in_days * 86_400_000)
        if not_after is not None and (expiry is None or expiry > not_after):
            left = max(0.0, (not_after - now_ms()) / 86_400_000)
            raise InvalidInput(
                f"You signed in with a token that expires in {left:.2f} days; a token it creates "
                f"can't outlive it. Give expires_in_days of at most {left:.2f}, or sign in with "
                "your password to create a longer-lived token."
            )
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = self.store.create_token(
            username, uuid.uuid4().hex, name, token_digest(secret), expiry
        )
        self.store.append_audit(
            "token.created",
            actor,
            subject=username,
            detail={"token_id": token.token_id, "name": name, "expiry_time": expiry},
        )
        return NewToken(token, secret)

    def list_tokens(self, username: str | None = None) -> list[Token]:
        return self.store.list_tokens(username)

    def get_token(self, token_id: str) -> Token:
        for token in self.store.list_tokens():
            if token.token_id == token_id:
                return token
        raise NotFound(
            f"No token has the id {token_id!r}. List tokens with `shipyard auth tokens list`."
        )

    def revoke_token(self, token_id: str, *, actor: str) -> Token:
        token = self.store.revoke_token(token_id, now_ms())
        self.store.append_audit(
            "token.revoked", actor, subject=token.username, detail={"token_id": token_id}
        )
        return token

    # ---------------------------------------------------------------- authentication

    def verify_password(self, username: str, password: str, *, remote_addr: str | None) -> User:
        """The user whose password this is; ``Unauthenticated`` (audited) otherwise."""
        found = self.store.get_user(username) if USERNAME_PATTERN.fullmatch(username) else None
        ok = self._verify_hash(found.password_hash if found else None, password)
        if found is None or not ok or found.user.disabled:
            reason = (
                "disabled" if found is not None and ok else "bad_password" if found else "no_user"
            )
            self._login_failed(username, "password", reason, remote_addr)
            raise Unauthenticated(
                "The user name or password is wrong, or the user is disabled. Check "
                "MLFLOW_TRACKING_USERNAME/PASSWORD (or your Basic credentials), or ask an admin "
                "to reset the password."
            )
        return found.user

    def verify_token(self, secret: str, *, remote_addr: str | None) -> User:
        """The user a token belongs to; ``Unauthenticated`` (audited) when it is unknown,
        revoked, expired or its user is disabled."""
        return self._active_token(secret, remote_addr)[1]

    def _active_token(self, secret: str, remote_addr: str | None) -> tuple[Token, User]:
        """:meth:`verify_token`, with the token itself."""
        found = self.store.find_token(token_digest(secret)) if looks_like_token(secret) else None
        now = now_ms()
        if found is None or not found[0].is_active(now) or found[1].disabled:
            if found is None:
                reason = "unknown_token"
            elif found[0].revoked_time is not None:
                reason = "revoked"
            elif not found[0].is_active(now):
                reason = "expired"
            else:
                reason = "disabled"
            subject = found[1].username if found else "?"
            self._login_failed(subject, "token", reason, remote_addr)
            raise Unauthenticated(
                f"The API token was refused ({reason.replace('_', ' ')}). Create a new one with "
                "`shipyard auth tokens create` and send it as 'Authorization: Bearer <token>' "
                "(MLFLOW_TRACKING_TOKEN for the mlflow client)."
            )
        token, user = found
        if token.last_used_time is None or now - token.last_used_time > 60_000:
            try:
                self.store.touch_token(token.token_id, now)
            except Exception:  # pragma: no cover - best effort, never fails a request
                logger.debug("could not record the use of token %s", token.token_id)
        return token, user

    def authenticate(self, authorization: str, *, remote_addr: str | None) -> SignedIn:
        """The user an ``Authorization`` header value names, and how: ``Bearer <token>``,
        or ``Basic`` with a user name and its password or one of its tokens. Raises
        ``Unauthenticated`` (audited when credentials were given but wrong)."""
        scheme, _, value = authorization.partition(" ")
        scheme, value = scheme.lower(), value.strip()
        secret = value if scheme == "bearer" and value else None
        if scheme == "basic" and value:
            username, password = basic_credentials(value)
            # A Basic password is one of the user's tokens when a token has that digest; a
            # password that merely starts like a token (``shp_...``) is still a password.
            if not (
                looks_like_token(password)
                and self.store.find_token(token_digest(password)) is not None
            ):
                user = self.verify_password(username, password, remote_addr=remote_addr)
                return SignedIn(user, "password")
            secret = password
        if secret is not None:
            token, user = self._active_token(secret, remote_addr)
            return SignedIn(user, "token", token.expiry_time)
        raise Unauthenticated(
            "This server requires credentials: send 'Authorization: Bearer <token>' "
            "(MLFLOW_TRACKING_TOKEN / SHIPYARD_HTTP_TOKEN) or HTTP Basic "
            "(MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD). Ask an admin for a token "
            "(`shipyard auth tokens create`)."
        )

    def trusted_user(self, username: str, *, remote_addr: str | None) -> User:
        """The user a trusted proxy vouched for, created (without a password or grants) on
        first sight; refused if disabled."""
        if not USERNAME_PATTERN.fullmatch(username):
            self._login_failed(username, "trusted_header", "bad_name", remote_addr)
            raise Unauthenticated(
                "The proxy sent a user name Shipyard cannot use; check the proxy's header "
                "mapping (letters, digits and '_.@+-')."
            )
        found = self.store.get_user(username)
        if found is None:
            try:
                user = self.store.create_user(username, None)
                self.store.append_audit(
                    "user.provisioned", "trusted-proxy", subject=username, remote_addr=remote_addr
                )
                return user
            except Exception:
                found = self.store.get_user(username)  # another worker created it first
                if found is None:
                    raise
        if found.user.disabled:
            self._login_failed(username, "trusted_header", "disabled", remote_addr)
            raise Unauthenticated(f"User {username!r} is disabled; ask an admin to enable it.")
        return found.user

    def _login_failed(self, subject: str, method: str, reason: str, remote: str | None) -> None:
        if not subject.isprintable():
            # A name from the wire may hold NUL or control characters, which PostgreSQL refuses
            # in text columns: record it escaped, so the failure is audited and answered 401.
            subject = ascii(subject)
        logger.warning("login failed for %r (%s: %s) from %s", subject, method, reason, remote)
        self.store.append_audit(
            "login.failed",
            subject,
            subject=subject,
            outcome="failed",
            remote_addr=remote,
            detail={"method": method, "reason": reason},
        )

    # ---------------------------------------------------------------- grants

    def grant(self, username: str, role: str, scope: str = WORKSPACE_SCOPE, *, actor: str) -> Grant:
        """Give ``username`` ``role`` on ``scope`` (replacing the role it held there)."""
        check_role(role)
        check_scope(scope)
        grant = self.store.set_grant(username, scope, role, actor)
        self.store.append_audit("grant.set", actor, subject=username, scope=scope, role=role)
        self._forget_grants(username)
        return grant

    def revoke(self, username: str, scope: str = WORKSPACE_SCOPE, *, actor: str) -> Grant:
        """Remove ``username``'s grant on ``scope``; ``NotFound`` if it had none."""
        check_scope(scope)
        removed = self.store.delete_grant(username, scope)
        if removed is None:
            raise NotFound(
                f"{username} holds no role on {scope}; list its grants with "
                f"`shipyard auth grants list --user {username}`."
            )
        self.store.append_audit(
            "grant.revoked", actor, subject=username, scope=scope, role=removed.role
        )
        self._forget_grants(username)
        return removed

    def list_grants(self, username: str | None = None, scope: str | None = None) -> list[Grant]:
        return self.store.list_grants(username, scope)

    def list_audit(
        self, *, limit: int = 100, action: str | None = None, before_id: int | None = None
    ) -> list[AuditEvent]:
        if not 1 <= limit <= 10_000:
            raise InvalidInput(f"limit={limit}; ask for 1 to 10000 events.")
        return self.store.list_audit(limit=limit, action=action, before_id=before_id)

    def _grants_of(self, username: str) -> dict[str, str]:
        now = time.monotonic()
        with self._lock:
            cached = self._grants.get(username)
            if cached is not None and cached[0] > now:
                return cached[1]
        grants = {g.scope: g.role for g in self.store.list_grants(username)}
        with self._lock:
            self._grants[username] = (now + GRANT_CACHE_SECONDS, grants)
        return grants

    def _forget_grants(self, username: str) -> None:
        with self._lock:
            self._grants.pop(username, None)

    # ---------------------------------------------------------------- authorization

    def is_admin(self, username: str) -> bool:
        return self._grants_of(username).get(WORKSPACE_SCOPE) == "admin"

    def role_on(self, username: str, resource: str) -> str | None:
        """The strongest role ``username`` holds on ``resource`` (``kind:id`` or ``kind:*``)."""
        grants = self._grants_of(username)
        roles = [grants[WORKSPACE_SCOPE]] if WORKSPACE_SCOPE in grants else []
        if resource == SELF_RESOURCE:
            # Everyone manages their own tokens and reads who they are.
            roles.append("editor")
        elif resource == "ui:*":
            # The web UI's gate: the strongest role held anywhere (any grant opens the pages, a
            # POST needs editor somewhere); each UI route then checks its own resource.
            roles += list(grants.values())
        else:
            scope = self._scope_of(resource)
            if scope is not None and scope in grants:
                roles.append(grants[scope])
        return strongest(roles)

    def readable(self, username: str, kind: str) -> set[str] | None:
        """What ``username`` may read of ``kind`` (``experiment`` or ``model``): ``None`` when a
        workspace grant lets them read every one, else the ids (experiment ids, model names)
        of the scopes they hold a role on. The web UI's list pages show a project-scoped user
        their own experiments and models this way instead of refusing the page."""
        grants = self._grants_of(username)
        if satisfies(grants.get(WORKSPACE_SCOPE), "read"):
            return None
        prefix = f"{kind}:"
        return {
            scope[len(prefix) :]
            for scope, role in grants.items()
            if scope.startswith(prefix) and satisfies(role, "read")
        }

    def _scope_of(self, resource: str) -> str | None:
        kind, _, ident = resource.partition(":")
        if not ident or ident == "*":
            return None
        if kind in ("experiment", "model"):
            return resource
        return self._resolve_scope(resource)

    def check(self, username: str, action: str, resource: str) -> None:
        """Return if ``username`` may perform ``action`` on ``resource``; else
        ``PermissionDenied`` saying which role is missing and how to get it."""
        if action not in ACTION_ROLE:
            raise PermissionDenied(f"Unknown action {action!r}; nothing may perform it.")
        role = self.role_on(username, resource)
        if satisfies(role, action):
            return
        needed = ACTION_ROLE[action]
        scope = self._scope_of(resource)
        where = scope or "the whole workspace"
        how = (
            f"`shipyard auth grants set {username} {needed} --scope {scope}`"
            if scope
            else f"`shipyard auth grants set {username} {needed}`"
        )
        held = f"holds {role}" if role else "holds no role"
        raise PermissionDenied(
            f"{username} {held} on {where}, and {action} on {resource} needs {needed}. An "
            f"admin can grant it with {how}.",
            details={"action": action, "resource": resource, "required_role": needed},
        )

    # ---------------------------------------------------------------- bootstrap

    def bootstrap_admin(self, username: str = "admin", password: str | None = None) -> str | None:
        """Make sure an admin exists. With no admin yet: create ``username`` (with
        ``password`` when given) holding ``admin`` on the workspace, and return a one-time
        token when no password was given. Returns ``None`` when nothing was created."""
        if any(g.scope == WORKSPACE_SCOPE and g.role == "admin" for g in self.list_grants()):
            if password is not None:
                found = self.store.get_user(username)
                if found is not None and not self._verify_hash(found.password_hash, password):
                    # The environment's password wins: it is how operators recover access.
                    self.set_password(username, password, actor=SYSTEM_ACTOR)
            return None
        if self.store.get_user(username) is None:
            self.create_user(username, password, actor=SYSTEM_ACTOR)
        elif password is not None:
            self.set_password(username, password, actor=SYSTEM_ACTOR)
        self.grant(username, "admin", WORKSPACE_SCOPE, actor=SYSTEM_ACTOR)
        if password is not None:
            return None
        return self.create_token(username, "bootstrap", actor=SYSTEM_ACTOR).secret


class WorkspaceScopes:
    """Resolves ``run:<id>`` and ``logged-model:<id>`` to their experiment's scope (cached:
    neither moves between experiments), and ``deployment:<name>`` to its registered model's
    (``model:<name>``: a grant on a model covers its deployments). Deployments are looked up on
    every call, never cached: one can be deleted and its name reused for another model."""

    def __init__(self, ws: Workspace, size: int = 8192) -> None:
        self._ws = ws
        self._size = size
        self._cache: OrderedDict[str, str | None] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, resource: str) -> str | None:
        kind, _, ident = resource.partition(":")
        if kind == "deployment":
            return self._deployment_scope(ident)
        with self._lock:
            if resource in self._cache:
                return self._cache[resource]
        scope: str | None = None
        try:
            if kind == "run":
                scope = f"experiment:{self._ws.store.get_run(ident).info.experiment_id}"
            elif kind == "logged-model":
                model = self._ws.logged_models.get_logged_model(ident, allow_deleted=True)
                scope = f"experiment:{model.experiment_id}"
        except (NotFound, InvalidInput):
            return None  # unknown ids are not cached: the run may be created next
        with self._lock:
            self._cache[resource] = scope
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return scope

    def _deployment_scope(self, name: str) -> str | None:
        store = getattr(self._ws, "deployment_store", None)
        if store is None:
            return None
        try:
            record = store.find(name)
        except (NotFound, InvalidInput):
            return None
        return f"model:{record.model}" if record is not None else None
