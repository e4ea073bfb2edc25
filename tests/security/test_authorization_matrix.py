"""The authorization matrix: every endpoint x every role x (own, other's) resource.

Built from the route tables (:class:`~shipyard.server.routing.ApiRoute` specs mounted on the app,
and :data:`shipyard.server.mlflow.ENDPOINTS`), so a new endpoint is covered the day it is added.
For each one the expected answer is derived from its declared action and resource kind alone:

* a workspace grant of role ``R`` allows every action ``R`` satisfies, everywhere;
* a grant on ``experiment:E`` / ``model:M`` allows them on E (with its runs and logged models)
  or M, and nothing on other experiments and models, on listings (``kind:*``) or on
  ``server:*``;
* the caller's own account (``self:*``) is open to every signed-in user.

A request counts as *allowed* when the answer is anything but 401/403 (the handler may still
refuse the made-up body with a 4xx); *denied* must be 403 ``PERMISSION_DENIED``. The test fails
on any unexpected allow, and on any unexpected deny.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

import pytest

from shipyard.security.roles import ACTION_ROLE, ROLE_RANK, ROLES
from shipyard.server.mlflow import ENDPOINTS as MLFLOW_ENDPOINTS
from shipyard.server.routing import ApiRoute
from tests.security.conftest import SecureServer

SCOPED_KINDS = ("experiment", "run", "model", "logged-model")
"""Resource kinds a project (experiment / model) grant reaches."""


@dataclass(frozen=True)
class Fixture:
    own: dict[str, str]
    other: dict[str, str]
    owners: dict[str, str]
    """storage_owner of own/other model versions."""


@dataclass(frozen=True)
class Who:
    name: str
    role: str | None
    workspace: bool
    token: str


def _setup(secure: SecureServer) -> tuple[Fixture, list[Who]]:
    ws = secure.ws
    ids: dict[str, dict[str, str]] = {}
    owners: dict[str, str] = {}
    for side in ("own", "other"):
        exp = ws.store.create_experiment(f"exp-{side}")
        run = ws.store.create_run(exp).info.run_id
        ws.registry.create_registered_model(f"model-{side}")
        ws.artifacts.upload(run, "m/MLmodel", io.BytesIO(b"flavors: {}\n"))
        version = ws.registry.create_model_version(
            f"model-{side}", f"runs:/{run}/m", artifact_owner=run, artifact_path="m", run_id=run
        )
        logged = ws.logged_models.create_logged_model(exp, name="lm")
        ids[side] = {
            "experiment": exp,
            "run": run,
            "model": f"model-{side}",
            "logged-model": logged.model_id,
        }
        owners[side] = version.storage_owner
    fixture = Fixture(ids["own"], ids["other"], owners)
    people = [Who("nobody", None, False, secure.user("nobody"))]
    for role in ROLES:
        scoped = secure.user(
            f"{role}-own",
            (role, f"experiment:{fixture.own['experiment']}"),
            (role, f"model:{fixture.own['model']}"),
        )
        people.append(Who(f"{role}-own", role, False, scoped))
        people.append(Who(f"{role}-ws", role, True, secure.user(f"{role}-ws", (role, "*"))))
    return fixture, people


def _expected(who: Who, action: str, kind: str, side: str | None) -> bool:
    """Whether ``who`` may do ``action`` on a resource of ``kind`` (own/other/None = ``*``)."""
    roles = []
    if who.role is not None and who.workspace:
        roles.append(who.role)
    if kind == "self":
        roles.append("editor")
    if who.role is not None and not who.workspace and side == "own" and kind in SCOPED_KINDS:
        roles.append(who.role)
    return any(ROLE_RANK[r] >= ROLE_RANK[ACTION_ROLE[action]] for r in roles)


@dataclass(frozen=True)
class Call:
    label: str
    method: str
    path: str
    action: str
    kind: str
    side: str | None
    params: dict[str, Any] | None = None
    body: dict[str, Any] | None = None


def _fill(path: str, ids: dict[str, str], owner: str) -> str:
    values = {
        "experiment_id": ids["experiment"],
        "run_id": ids["run"],
        "name": ids["model"],
        "version": "1",
        "alias": "staging",
        "storage_owner": owner,
        "owner": ids["run"],
        "username": "someone",
        "token_id": "0" * 32,
        "model_id": ids["logged-model"],
    }

    def sub(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[0]
        return values.get(name, "k.txt")

    return re.sub(r"{([^}]+)}", sub, path)


def _body(ids: dict[str, str]) -> dict[str, Any]:
    return {
        "experiment_id": ids["experiment"],
        "run_id": ids["run"],
        "name": ids["model"],
        "new_name": ids["model"],  # renaming away would leave the grants behind
        "model_id": ids["logged-model"],
        "key": "k",
        "value": "v",
        "version": "1",
        "alias": "staging",
        "stage": "Staging",
    }


def _shipyard_calls(secure: SecureServer, fx: Fixture) -> list[Call]:
    calls = []
    for route in secure.app.routes:
        if not isinstance(route, ApiRoute):
            continue
        spec = route.spec
        label = f"{spec.method} {spec.path}"
        names_one = spec.resource_param is not None or (
            spec.authorized_by_handler and spec.resource in SCOPED_KINDS
        )
        if "{storage_owner}" in spec.path:
            names_one = True
        sides: tuple[str | None, ...] = ("own", "other") if names_one else (None,)
        for side in sides:
            ids = fx.own if side != "other" else fx.other
            owner = fx.owners["own" if side != "other" else "other"]
            kind = spec.resource
            if spec.authorized_by_handler and spec.resource_param is None and not names_one:
                kind = spec.resource
            calls.append(
                Call(
                    f"{label} [{side or '*'}]",
                    spec.method,
                    _fill(spec.path, ids, owner),
                    spec.action,
                    kind,
                    side,
                    body=_body(ids) if spec.method in ("POST", "PUT", "PATCH") else None,
                )
            )
    return calls


def _mlflow_calls(fx: Fixture) -> list[Call]:
    calls = []
    for spec in MLFLOW_ENDPOINTS:
        method = spec.methods[0]
        kind, _, fixed = spec.resource.partition(":")
        sides: tuple[str | None, ...] = (None,) if fixed == "*" else ("own", "other")
        for side in sides:
            ids = fx.own if side != "other" else fx.other
            fields = _body(ids)
            calls.append(
                Call(
                    f"{method} /api/2.0/mlflow{spec.path} [{side or '*'}]",
                    method,
                    "/api/2.0/mlflow" + _fill(spec.path, ids, ""),
                    spec.action,
                    kind,
                    side,
                    params=fields if method == "GET" else None,
                    body=fields if method != "GET" else None,
                )
            )
    return calls


@pytest.mark.slow
def test_every_endpoint_every_role_own_and_others(secure: SecureServer) -> None:
    fx, people = _setup(secure)
    # Deletes last, so every other call still finds the resources it names.
    calls = sorted(
        _shipyard_calls(secure, fx) + _mlflow_calls(fx), key=lambda c: c.method == "DELETE"
    )
    assert len(calls) > 150  # the route tables were found
    clients = {who.name: secure.client(token=who.token) for who in people}
    unexpected_allow: list[str] = []
    unexpected_deny: list[str] = []
    checked = 0
    # Readers first, admins last: whatever a destructive call does, later ones still find
    # their resources' grants (grants are by id and name).
    for call in calls:
        for who in people:
            expected = _expected(who, call.action, call.kind, call.side)
            resp = clients[who.name].request(
                call.method, call.path, params=call.params, json=call.body
            )
            checked += 1
            assert resp.status_code != 401, (who.name, call.label, resp.text)
            assert resp.status_code < 500, (who.name, call.label, resp.text)
            denied = resp.status_code == 403
            if denied:
                assert resp.json()["error_code"] == "PERMISSION_DENIED", resp.text
            if denied and expected:
                unexpected_deny.append(f"{who.name}: {call.label}: {resp.json()['message']}")
            if not denied and not expected:
                unexpected_allow.append(f"{who.name}: {call.label} -> {resp.status_code}")
    print(
        f"authorization matrix: {len(calls)} endpoint cases x {len(people)} principals = "
        f"{checked} requests"
    )
    assert unexpected_allow == [], "\n".join(unexpected_allow)
    assert unexpected_deny == [], "\n".join(unexpected_deny)
