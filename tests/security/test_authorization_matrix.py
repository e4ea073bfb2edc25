"""The authorization matrix: every endpoint x every role x (own, other's) resource.

Built from the route tables (:class:`~shipyard.server.routing.ApiRoute` specs mounted on the app,
:data:`shipyard.server.mlflow.ENDPOINTS` under both MLflow prefixes, MLflow's proxied artifact
service, and the web UI's :class:`~shipyard.server.ui._routing.UiRouter` endpoints), so a new
endpoint is covered the day it is added; a last check fails on any mounted route the matrix did
not call. For each one the expected answer is derived from its declared action and resource
kind alone:

* a workspace grant of role ``R`` allows every action ``R`` satisfies, everywhere;
* a grant on ``experiment:E`` / ``model:M`` allows them on E (with its runs and logged models)
  or M (with its versions' files, its deployments and its monitors' pages and alerts), and
  nothing on other experiments and models, on listings (``kind:*``) or on ``server:*``;
* the caller's own account (``self:*``) is open to every signed-in user, and so are the
  documents that say nothing about the workspace (the OpenAPI document, MLflow's server-info);
* the web UI needs some grant before any of its routes answers.

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
from starlette.requests import Request
from starlette.routing import BaseRoute, Mount, Route

from shipyard.security.roles import ACTION_ROLE, ROLE_RANK, ROLES
from shipyard.server.mlflow import ENDPOINTS as MLFLOW_ENDPOINTS
from shipyard.server.mlflow import PREFIXES as MLFLOW_PREFIXES
from shipyard.server.mlflow.artifacts import ARTIFACT_PREFIXES, MODEL_VERSION_ROOT
from shipyard.server.mlflow.info import SERVER_INFO_PATHS
from shipyard.server.routing import ApiRoute
from shipyard.server.ui._routing import STATIC, UiEndpoint
from tests.security.conftest import SecureServer, deployment_of, monitor_with_alert

SCOPED_KINDS = ("experiment", "run", "model", "logged-model", "deployment")
"""Resource kinds a project (experiment / model) grant reaches."""

PUBLIC = ("/health", "/version")
"""Answered without credentials (test_authentication checks them)."""
SIGNED_IN = ("/api/openapi.json", *SERVER_INFO_PATHS)
"""Open to every signed-in user: they describe the server, not the workspace's data."""


@dataclass(frozen=True)
class Fixture:
    own: dict[str, str]
    other: dict[str, str]
    owners: dict[str, str]
    """storage_owner of own/other model versions."""

    def ids(self, side: str | None) -> dict[str, str]:
        return self.other if side == "other" else self.own

    def owner(self, side: str | None) -> str:
        return self.owners["other" if side == "other" else "own"]


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
        # The model's deployment and monitor share its name, so one {name} fills every path.
        deployment_of(secure, f"model-{side}")
        alert = monitor_with_alert(secure, f"model-{side}")
        ids[side] = {
            "experiment": exp,
            "run": run,
            "model": f"model-{side}",
            "logged-model": logged.model_id,
            "alert": str(alert),
            "second-run": ws.store.create_run(exp).info.run_id,  # the compare view takes two
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
    """Whether ``who`` may do ``action`` on a resource of ``kind`` (own/other/None = ``*``);
    kind ``ui:<kind>`` is a UI route (some grant opens the UI, then the route's own check)."""
    if kind.startswith("ui:"):
        if who.role is None:
            return False
        kind = kind[3:]
    roles = []
    if who.role is not None and who.workspace:
        roles.append(who.role)
    if kind in ("self", "signed-in"):
        roles.append("editor")
    if kind == "ui":
        roles.append("reader")
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
    template: str = ""
    """The mounted route's path, for the check that every route was called."""
    form: dict[str, str] | None = None
    content: bytes | None = None


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
        "alert_id": ids["alert"],
    }

    def sub(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[0]
        return values.get(name, "k.txt")

    return re.sub(r"{([^}]+)}", sub, path)


def _body(ids: dict[str, str]) -> dict[str, Any]:
    return {
        "experiment_id": ids["experiment"],
        "experiment_ids": [ids["experiment"]],
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
                    template=spec.path,
                )
            )
    return calls


def _mlflow_calls(fx: Fixture) -> list[Call]:
    calls = []
    for prefix in MLFLOW_PREFIXES:
        for spec in MLFLOW_ENDPOINTS:
            kind, _, fixed = spec.resource.partition(":")
            if kind == "experiments":  # a search naming experiments: each is checked
                kind = "experiment"
            sides: tuple[str | None, ...] = (None,) if fixed == "*" else ("own", "other")
            for method in spec.methods:
                for side in sides:
                    ids = fx.ids(side)
                    fields = _body(ids)
                    calls.append(
                        Call(
                            f"{method} {prefix}{spec.path} [{side or '*'}]",
                            method,
                            prefix + _fill(spec.path, ids, ""),
                            spec.action,
                            kind,
                            side,
                            params=fields if method == "GET" else None,
                            body=fields if method != "GET" else None,
                            template=prefix + spec.path,
                        )
                    )
    return calls


def _artifact_service_calls(fx: Fixture) -> list[Call]:
    """MLflow's proxied artifact service: files of runs, logged models and registered versions,
    addressed by path (the owner is in the path, not in a field)."""
    calls = []
    for prefix in ARTIFACT_PREFIXES:
        root, one = f"{prefix}/artifacts", f"{prefix}/artifacts/{{path:path}}"
        # The service's root lists nothing (no owner): any signed-in user gets {}.
        calls.append(Call(f"GET {root} [*]", "GET", root, "read", "signed-in", None, template=root))
        for side in ("own", "other"):
            ids = fx.ids(side)
            for kind, owner_dir in (
                ("run", f"{ids['experiment']}/{ids['run']}/artifacts"),
                ("logged-model", f"{ids['experiment']}/models/{ids['logged-model']}/artifacts"),
                ("model", f"{MODEL_VERSION_ROOT}/{fx.owner(side)}/artifacts"),
            ):
                label = f"{prefix}/artifacts/<{kind}> [{side}]"
                listing = {"path": owner_dir}
                calls += [
                    Call(
                        f"GET {label} ls", "GET", root, "read", kind, side, listing, template=root
                    ),
                    Call(
                        f"GET {label}", "GET", f"{root}/{owner_dir}/m/MLmodel", "read", kind, side
                    ),
                ]
                if kind != "model":  # a registered version's files are read-only
                    new = f"{root}/{owner_dir}/matrix.txt"
                    calls += [
                        Call(f"PUT {label}", "PUT", new, "write", kind, side, content=b"x"),
                        Call(f"DELETE {label}", "DELETE", new, "write", kind, side),
                    ]
        calls = [c if c.template else Call(**{**c.__dict__, "template": one}) for c in calls]
    return calls


def _ui_endpoints() -> list[UiEndpoint]:
    from shipyard.server.ui import (
        compare,
        datasets,
        deployments,
        experiments,
        monitoring,
        pipelines,
        registry,
        runs,
    )

    modules = (experiments, runs, compare, registry, pipelines, datasets, deployments, monitoring)
    return [e for m in modules for e in m.router.endpoints]


def _ui_calls(secure: SecureServer, fx: Fixture) -> list[Call]:
    static = next(p for p in sorted(STATIC.iterdir()) if p.is_file())
    calls = [
        Call("GET / [*]", "GET", "/", "read", "ui:ui", None, template="/"),
        Call(
            "GET /static/... [*]",
            "GET",
            f"/static/{static.name}",
            "read",
            "ui:ui",
            None,
            template="/static",
        ),
    ]
    for endpoint in _ui_endpoints():
        method = "POST" if endpoint.kind == "action" else "GET"
        names_one = endpoint.resource_param is not None or endpoint.scope is not None
        for side in ("own", "other") if names_one else (None,):
            path = _fill(endpoint.path, fx.ids(side), fx.owner(side))
            # The compare view names its runs in the query: two runs of the side's experiment.
            query = (
                f"runs={fx.ids(side)['run']}&runs={fx.ids(side)['second-run']}"
                if endpoint.path in ("/compare", "/ui/data/compare/metric")
                else ""
            )
            kind = endpoint.resource
            if endpoint.scope is not None:
                # Whatever the route computes its resource as (a monitor's model...).
                request = Request(
                    {
                        "type": "http",
                        "path_params": _path_params(endpoint.path, path),
                        "query_string": query.encode(),
                        "headers": [],
                    }
                )
                resource = endpoint.scope(request, secure.ws)
                kind = resource.partition(":")[0]
                assert resource == f"{kind}:{fx.ids(side)[kind]}", resource
            calls.append(
                Call(
                    f"{method} {endpoint.path} [{side or '*'}]",
                    method,
                    f"{path}?{query}" if query else path,
                    endpoint.action,
                    f"ui:{kind}",
                    side,
                    form={"reason": "matrix"} if method == "POST" else None,
                    template=endpoint.path,
                )
            )
    return calls


def _path_params(template: str, path: str) -> dict[str, str]:
    pattern = re.sub(r"{([^}:]+)[^}]*}", r"(?P<\1>[^/]+)", template)
    found = re.fullmatch(pattern, path)
    assert found is not None, (template, path)
    return found.groupdict()


def _mounted(routes: list[BaseRoute]) -> set[str]:
    """``METHOD path`` of every mounted route (``HEAD`` goes with ``GET``)."""
    out = set()
    for route in routes:
        if isinstance(route, Mount):
            out.add(f"GET {route.path}")
        elif isinstance(route, Route):
            for method in route.methods or ():
                if method != "HEAD":
                    out.add(f"{method} {route.path}")
        else:
            out |= _mounted(list(getattr(route, "routes", [])))
    return out


@pytest.mark.slow
def test_every_endpoint_every_role_own_and_others(secure: SecureServer) -> None:
    fx, people = _setup(secure)
    signed_in = [
        Call(f"GET {p} [*]", "GET", p, "read", "signed-in", None, template=p) for p in SIGNED_IN
    ]
    # Deletes last, so every other call still finds the resources it names.
    calls = sorted(
        _shipyard_calls(secure, fx)
        + _mlflow_calls(fx)
        + _artifact_service_calls(fx)
        + _ui_calls(secure, fx)
        + signed_in,
        key=lambda c: c.method == "DELETE",
    )
    called = {f"{c.method} {c.template}" for c in calls}
    never_called = _mounted(secure.app.routes) - called - {f"GET {p}" for p in PUBLIC}
    assert never_called == set(), "routes the matrix does not call: " + ", ".join(never_called)
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
                call.method,
                call.path,
                params=call.params,
                json=call.body,
                data=call.form,
                content=call.content,
            )
            checked += 1
            assert resp.status_code != 401, (who.name, call.label, resp.text)
            assert resp.status_code < 500, (who.name, call.label, resp.text)
            denied = resp.status_code == 403
            if denied and resp.headers["content-type"].startswith("text/html"):
                # A UI page answers with the error page, which shows the same stable code.
                assert "403 · PERMISSION_DENIED" in resp.text, resp.text
                message = resp.text
            elif denied:
                assert resp.json()["error_code"] == "PERMISSION_DENIED", resp.text
                message = resp.json()["message"]
            if denied and expected:
                unexpected_deny.append(f"{who.name}: {call.label}: {message}")
            if not denied and not expected:
                unexpected_allow.append(f"{who.name}: {call.label} -> {resp.status_code}")
    print(
        f"authorization matrix: {len(calls)} endpoint cases x {len(people)} principals = "
        f"{checked} requests"
    )
    assert unexpected_allow == [], "\n".join(unexpected_allow)
    assert unexpected_deny == [], "\n".join(unexpected_deny)
