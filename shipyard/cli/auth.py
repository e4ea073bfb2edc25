"""``shipyard auth``: users, API tokens, role grants and the audit log of a workspace.

Run on the server's host, against its database (``--home`` / ``--tracking-uri``); the same
operations are on the server at ``/api/v1/auth``. Every change is recorded in the audit log with
the actor ``cli:<login>``.
"""

from __future__ import annotations

import getpass
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING

import click

from shipyard.cli._context import CliState, FiniteRange, pass_state
from shipyard.cli._output import (
    emit_json,
    esc,
    format_time,
    json_option,
    note,
    print_table,
    table,
)
from shipyard.security.roles import ROLES, WORKSPACE_SCOPE

if TYPE_CHECKING:
    from shipyard.security import Security


def _security(state: CliState) -> Security:
    from shipyard.security import Security

    return Security.for_workspace(state.workspace)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # pragma: no cover - no login name (containers)
        return "cli"


def _scope(scope: str | None, experiment: str | None, model: str | None) -> str:
    given = [s for s in (scope, experiment, model) if s is not None]
    if len(given) > 1:
        raise click.UsageError("Give one of --scope, --experiment and --model.")
    if experiment is not None:
        return f"experiment:{experiment}"
    if model is not None:
        return f"model:{model}"
    return scope or WORKSPACE_SCOPE


def _read_password(from_stdin: bool, confirm: bool = True) -> str | None:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if sys.stdin.isatty():
        return str(click.prompt("Password", hide_input=True, confirmation_prompt=confirm))
    return None


scope_options = [
    click.option(
        "--scope", help="'*' (the workspace, default), 'experiment:<id>' or 'model:<name>'."
    ),
    click.option("--experiment", metavar="ID", help="Shorthand for --scope experiment:ID."),
    click.option("--model", metavar="NAME", help="Shorthand for --scope model:NAME."),
]


def with_scope(f: click.decorators.FC) -> click.decorators.FC:
    for option in reversed(scope_options):
        f = option(f)
    return f


@click.group()
def auth() -> None:
    """Users, API tokens, role grants and the security audit log.

    Roles: reader < editor < deployer < admin, granted on the workspace ('*'), an experiment
    or a registered model. See docs/security.md.
    """


# ------------------------------------------------------------------------------ users


@auth.group()
def users() -> None:
    """Create, list, change and delete users."""


@users.command("create")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.option("--no-password", is_flag=True, help="Token or trusted-proxy sign-in only.")
@json_option
@pass_state
def users_create(
    state: CliState, username: str, password_stdin: bool, no_password: bool, as_json: bool
) -> None:
    """Create USERNAME (it holds no role until granted one)."""
    password = None if no_password else _read_password(password_stdin)
    user = _security(state).create_user(username, password, actor=_actor())
    if as_json:
        emit_json(asdict(user))
        return
    click.echo(f"Created user {user.username}" + ("" if user.has_password else " (no password)"))
    note(f"Grant it a role: shipyard auth grants set {username} reader")


@users.command("list")
@json_option
@pass_state
def users_list(state: CliState, as_json: bool) -> None:
    """List users."""
    found = _security(state).list_users()
    if as_json:
        emit_json([asdict(u) for u in found])
        return
    t = table("user", "password", "disabled", "created")
    for u in found:
        t.add_row(
            esc(u.username),
            "yes" if u.has_password else "no",
            "yes" if u.disabled else "",
            format_time(u.creation_time),
        )
    print_table(t, empty="No users.")


@users.command("set-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@pass_state
def users_set_password(state: CliState, username: str, password_stdin: bool) -> None:
    """Set USERNAME's password (prompted on a terminal)."""
    password = _read_password(password_stdin)
    if password is None:
        raise click.UsageError("Give the password on stdin with --password-stdin.")
    _security(state).set_password(username, password, actor=_actor())
    click.echo(f"Changed the password of {username}")


@users.command("disable")
@click.argument("username")
@pass_state
def users_disable(state: CliState, username: str) -> None:
    """Refuse USERNAME's password and tokens from now on."""
    _security(state).set_disabled(username, True, actor=_actor())
    click.echo(f"Disabled {username}")


@users.command("enable")
@click.argument("username")
@pass_state
def users_enable(state: CliState, username: str) -> None:
    """Accept USERNAME's credentials again."""
    _security(state).set_disabled(username, False, actor=_actor())
    click.echo(f"Enabled {username}")


@users.command("delete")
@click.argument("username")
@pass_state
def users_delete(state: CliState, username: str) -> None:
    """Delete USERNAME with its tokens and grants (the audit log keeps its events)."""
    _security(state).delete_user(username, actor=_actor())
    click.echo(f"Deleted {username}")


# ------------------------------------------------------------------------------ tokens


@auth.group()
def tokens() -> None:
    """Create, list and revoke API tokens."""


@tokens.command("create")
@click.argument("username")
@click.option("--name", default="default", show_default=True, help="What the token is for.")
@click.option(
    "--expires-in-days",
    type=FiniteRange(min=0, min_open=True),
    help="Expire after this many days (default: never).",
)
@json_option
@pass_state
def tokens_create(
    state: CliState, username: str, name: str, expires_in_days: float | None, as_json: bool
) -> None:
    """Create a token for USERNAME and print its secret (shown only now)."""
    new = _security(state).create_token(
        username, name, expires_in_days=expires_in_days, actor=_actor()
    )
    if as_json:
        emit_json({"token": asdict(new.token), "secret": new.secret})
        return
    click.echo(new.secret)
    note(
        f"Token {new.token.token_id} for {username}; the secret above is shown only once. Use "
        "it as MLFLOW_TRACKING_TOKEN or SHIPYARD_HTTP_TOKEN."
    )


@tokens.command("list")
@click.option("--user", "username", help="Only this user's tokens.")
@json_option
@pass_state
def tokens_list(state: CliState, username: str | None, as_json: bool) -> None:
    """List tokens (revoked and expired ones included)."""
    import time

    found = _security(state).list_tokens(username)
    if as_json:
        emit_json([asdict(t) for t in found])
        return
    now = int(time.time() * 1000)
    t = table("token id", "user", "name", "created", "expires", "state", no_wrap=("token id",))
    for tok in found:
        status = "revoked" if tok.revoked_time else "active" if tok.is_active(now) else "expired"
        t.add_row(
            tok.token_id,
            esc(tok.username),
            esc(tok.name),
            format_time(tok.creation_time),
            format_time(tok.expiry_time) if tok.expiry_time else "never",
            status,
        )
    print_table(t, empty="No tokens.")


@tokens.command("revoke")
@click.argument("token_id")
@pass_state
def tokens_revoke(state: CliState, token_id: str) -> None:
    """Revoke TOKEN_ID: its next use is refused."""
    token = _security(state).revoke_token(token_id, actor=_actor())
    click.echo(f"Revoked token {token.token_id} of {token.username}")


# ------------------------------------------------------------------------------ grants


@auth.group()
def grants() -> None:
    """Grant, revoke and list roles."""


@grants.command("set")
@click.argument("username")
@click.argument("role", type=click.Choice(ROLES))
@with_scope
@pass_state
def grants_set(
    state: CliState,
    username: str,
    role: str,
    scope: str | None,
    experiment: str | None,
    model: str | None,
) -> None:
    """Give USERNAME ROLE on a scope (default: the whole workspace)."""
    where = _scope(scope, experiment, model)
    _security(state).grant(username, role, where, actor=_actor())
    click.echo(f"Granted {role} on {where} to {username}")


@grants.command("revoke")
@click.argument("username")
@with_scope
@pass_state
def grants_revoke(
    state: CliState, username: str, scope: str | None, experiment: str | None, model: str | None
) -> None:
    """Remove USERNAME's role on a scope (default: the whole workspace)."""
    where = _scope(scope, experiment, model)
    removed = _security(state).revoke(username, where, actor=_actor())
    click.echo(f"Revoked {removed.role} on {where} from {username}")


@grants.command("list")
@click.option("--user", "username", help="Only this user's grants.")
@click.option("--scope", help="Only grants on this scope.")
@json_option
@pass_state
def grants_list(state: CliState, username: str | None, scope: str | None, as_json: bool) -> None:
    """List role grants."""
    found = _security(state).list_grants(username, scope)
    if as_json:
        emit_json([asdict(g) for g in found])
        return
    t = table("user", "role", "scope", "granted by", "when")
    for g in found:
        t.add_row(
            esc(g.username), g.role, esc(g.scope), esc(g.granted_by), format_time(g.creation_time)
        )
    print_table(t, empty="No grants.")


# ------------------------------------------------------------------------------ audit


@auth.command("audit")
@click.option(
    "--limit",
    type=click.IntRange(1, 10_000),
    default=50,
    show_default=True,
    help="Show at most this many entries, newest first.",
)
@click.option("--action", help="Only this kind: grant.set, grant.revoked, login.failed, ...")
@json_option
@pass_state
def audit(state: CliState, limit: int, action: str | None, as_json: bool) -> None:
    """Show the security audit log, newest first."""
    events = _security(state).list_audit(limit=limit, action=action)
    if as_json:
        emit_json([asdict(e) for e in events])
        return
    t = table("when", "action", "actor", "subject", "scope", "role", "outcome", "from")
    for e in events:
        t.add_row(
            format_time(e.event_time),
            e.action,
            esc(e.actor),
            esc(e.subject or ""),
            esc(e.scope or ""),
            e.role or "",
            e.outcome,
            e.remote_addr or "",
        )
    print_table(t, empty="No audit events.")
