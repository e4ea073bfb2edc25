"""Roles, actions and scopes: the vocabulary of Shipyard's authorization.

Four roles, each including the ones before it::

    reader < editor < deployer < admin

Each route declares one action; the action needs a minimum role (:data:`ACTION_ROLE`):

=========  ========  ==============================================================
action     role      what
=========  ========  ==============================================================
read       reader    get, list, search, download
write      editor    create, update, delete, log, upload, move a non-protected alias
deploy     deployer  promotions, rollbacks, moves of protected aliases (production),
                     stage transitions to or out of Production, traffic changes
admin      admin     users, tokens of others, grants, the audit log, GC, the artifact index
=========  ========  ==============================================================

A grant gives a role on a *scope*: ``*`` (the whole workspace), ``experiment:<id>`` (the
experiment, its runs, their artifacts and logged models) or ``model:<name>`` (a registered
model, its versions, aliases and deployments).
"""

from __future__ import annotations

from typing import Literal

from shipyard.errors import InvalidInput

Action = Literal["read", "write", "deploy", "admin"]
ACTIONS: tuple[Action, ...] = ("read", "write", "deploy", "admin")

ROLES: tuple[str, ...] = ("reader", "editor", "deployer", "admin")
"""Every role, weakest first."""

ROLE_RANK = {role: rank for rank, role in enumerate(ROLES, start=1)}

ACTION_ROLE: dict[str, str] = {
    "read": "reader",
    "write": "editor",
    "deploy": "deployer",
    "admin": "admin",
}
"""The weakest role allowed to perform each action."""

WORKSPACE_SCOPE = "*"
SCOPE_KINDS = ("experiment", "model")
"""Kinds of resource a grant can be scoped to (besides the whole workspace)."""


def check_role(role: str) -> str:
    """``role`` if it is one of :data:`ROLES`, else ``InvalidInput``."""
    if role not in ROLE_RANK:
        raise InvalidInput(f"Unknown role {role!r}; use one of: {', '.join(ROLES)}.")
    return role


def check_scope(scope: str) -> str:
    """``scope`` if it is ``*``, ``experiment:<id>`` or ``model:<name>``, else ``InvalidInput``."""
    if scope == WORKSPACE_SCOPE:
        return scope
    kind, _, name = scope.partition(":")
    if kind not in SCOPE_KINDS or not name or name == "*":
        raise InvalidInput(
            f"Unknown scope {scope!r}; use '*' (the whole workspace), 'experiment:<id>' or "
            "'model:<registered model name>'."
        )
    if kind == "experiment" and not name.isdigit():
        raise InvalidInput(f"Experiment ids are whole numbers; {name!r} is not one.")
    return scope


def satisfies(role: str | None, action: str) -> bool:
    """Whether ``role`` may perform ``action``."""
    if role is None:
        return False
    return ROLE_RANK.get(role, 0) >= ROLE_RANK[ACTION_ROLE[action]]


def strongest(roles: list[str]) -> str | None:
    """The strongest of ``roles`` (``None`` for none)."""
    known = [r for r in roles if r in ROLE_RANK]
    return max(known, key=ROLE_RANK.__getitem__) if known else None
