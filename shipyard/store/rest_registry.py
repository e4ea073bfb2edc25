"""The model registry of a Shipyard server, over its REST API (``/api/v1/registered-models``,
``/api/v1/model-versions``).

The SDK uses it when the tracking URI is ``http(s)://...``. Every method is one request; errors
arrive as the same :mod:`shipyard.errors` classes the server raised (``ApprovalRequired`` with its
``details``, ``InvalidState`` for a version an alias holds...), rebuilt by
:class:`~shipyard._http.HttpClient`.

The server records the user of an authenticated request itself; ``user_id`` arguments are what
an anonymous server records. Deleting a model or a version frees its bytes on the server; the
digests are returned as every store returns them (freeing them again is a no-op:
:meth:`shipyard.artifacts.rest.RestArtifactRepository.free` does nothing). A version's files are
read through :class:`~shipyard.artifacts.rest.RestArtifactRepository`, by its ``storage_owner``.

Model names, versions and aliases travel in URL paths, so the few values a path can't carry
(empty ones, and ``/``, which the server would read as a separator) are answered here, with the
error class the database-backed store raises for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shipyard._http import HttpClient
from shipyard.entities import Approval, ModelVersion, Page, RegisteredModel, RegistryEvent
from shipyard.errors import InvalidInput, NotFound
from shipyard.store.registry import ALL_ALIASES, RegistryStore
from shipyard.store.rest import _seg, _tail

_MODELS = "/api/v1/registered-models"


def _model(name: str) -> str:
    """The URL of model ``name``."""
    if not isinstance(name, str):
        raise InvalidInput(f"model name must be a string, got {type(name).__name__} {name!r}.")
    if not name:
        raise InvalidInput("model name must not be empty.")
    if "/" in name:
        raise InvalidInput(
            f"model name {name!r} contains '/' or '@', which separate the parts of a model URI "
            "(models:/name/3, models:/name@alias); choose a name without them."
        )
    return f"{_MODELS}/{_seg(name)}"


def _number(version: object) -> int:
    """A version number as the database-backed store accepts it (``"3"`` included)."""
    if isinstance(version, str) and version.strip().isascii() and version.strip().isdigit():
        return int(version)
    if isinstance(version, bool) or not isinstance(version, int):
        raise InvalidInput(
            f"model version {version!r} is not valid; versions are whole numbers from 1, as in "
            "models:/churn/3."
        )
    return version


def _version(name: str, version: object) -> str:
    """The URL of a version (the server checks the number's range)."""
    return f"{_model(name)}/versions/{_number(version)}"


def _alias_segment(alias: object) -> str | None:
    """``alias`` as a path segment, or ``None`` when it contains ``/`` (no alias can: setting
    one refuses it). Empty and non-string aliases are refused."""
    if not isinstance(alias, str):
        raise InvalidInput(f"alias must be a string, got {type(alias).__name__} {alias!r}.")
    if not alias:
        raise InvalidInput("alias must not be empty.")
    return None if "/" in alias else _seg(alias)


def _no_such_alias(name: str, alias: str) -> NotFound:
    return NotFound(
        f"Model {name!r} has no alias {alias!r}: aliases hold only letters, digits, '_' and "
        f"'-'. List the model's aliases with `shipyard models get {name}`."
    )


class RestRegistryStore(RegistryStore):
    """:class:`RegistryStore` over a Shipyard server's REST API."""

    def __init__(self, http: HttpClient) -> None:
        self.http = http

    def __repr__(self) -> str:
        return f"RestRegistryStore({self.http.base_url!r})"

    def _call(self, method: str, url: str, json: Any = None, /, **params: Any) -> Any:
        query = {k: v for k, v in params.items() if v is not None} or None
        return self.http.call(method, url, json=json, params=query) or {}

    @staticmethod
    def _audit(body: dict[str, Any], user_id: str, reason: str | None) -> dict[str, Any]:
        body["user_id"] = user_id
        if reason is not None:
            body["reason"] = reason
        return body

    # ---------------------------------------------------------------- registered models

    def create_registered_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        user_id: str = "",
    ) -> RegisteredModel:
        body: dict[str, Any] = {"name": name, "user_id": user_id}
        if description is not None:
            body["description"] = description
        if tags is not None:
            body["tags"] = tags
        answer = self._call("POST", _MODELS, body)
        return RegisteredModel.from_json(answer["registered_model"])

    def get_registered_model(self, name: str) -> RegisteredModel:
        return RegisteredModel.from_json(self._call("GET", _model(name))["registered_model"])

    def update_registered_model(self, name: str, *, description: str | None) -> RegisteredModel:
        answer = self._call("PATCH", _model(name), {"description": description})
        return RegisteredModel.from_json(answer["registered_model"])

    def rename_registered_model(
        self, name: str, new_name: str, *, user_id: str = "", reason: str | None = None
    ) -> RegisteredModel:
        body = self._audit({"new_name": new_name}, user_id, reason)
        answer = self._call("POST", f"{_model(name)}/rename", body)
        return RegisteredModel.from_json(answer["registered_model"])

    def delete_registered_model(
        self, name: str, *, user_id: str = "", reason: str | None = None
    ) -> set[str]:
        answer = self._call("DELETE", _model(name), user_id=user_id, reason=reason)
        return set(answer["digests"])

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        self._call("PUT", f"{_model(name)}/tags/{_tail(key)}", {"value": value})

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self._call("DELETE", f"{_model(name)}/tags/{_tail(key)}")

    def search_registered_models(
        self,
        filter_string: str = "",
        max_results: int = 100,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[RegisteredModel]:
        body = {
            "filter": filter_string,
            "max_results": max_results,
            "order_by": list(order_by or []),
            "page_token": page_token,
        }
        answer = self._call("POST", f"{_MODELS}/search", body)
        return Page(
            [RegisteredModel.from_json(m) for m in answer["registered_models"]],
            answer.get("next_page_token"),
        )

    # ---------------------------------------------------------------- versions

    def create_model_version(
        self,
        name: str,
        source: str,
        *,
        artifact_owner: str,
        artifact_path: str,
        run_id: str | None = None,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        user_id: str = "",
    ) -> ModelVersion:
        body: dict[str, Any] = {
            "source": source,
            "artifact_owner": artifact_owner,
            "artifact_path": artifact_path,
            "run_id": run_id,  # null, not absent, when None: the server defaults an absent one
            "user_id": user_id,
        }
        for key, value in (("description", description), ("tags", tags)):
            if value is not None:
                body[key] = value
        answer = self._call("POST", f"{_model(name)}/versions", body)
        return ModelVersion.from_json(answer["model_version"])

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        return ModelVersion.from_json(self._call("GET", _version(name, version))["model_version"])

    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        answer = self._call("GET", f"{_model(name)}/latest-versions", stages=list(stages or []))
        return [ModelVersion.from_json(v) for v in answer["model_versions"]]

    def update_model_version(
        self, name: str, version: int, *, description: str | None
    ) -> ModelVersion:
        answer = self._call("PATCH", _version(name, version), {"description": description})
        return ModelVersion.from_json(answer["model_version"])

    def set_model_version_status(
        self,
        name: str,
        version: int,
        status: str,
        *,
        status_message: str | None = None,
        user_id: str = "",
        reason: str | None = None,
    ) -> ModelVersion:
        body: dict[str, Any] = {"status": status}
        if status_message is not None:
            body["status_message"] = status_message
        path = f"{_version(name, version)}/status"
        answer = self._call("PUT", path, self._audit(body, user_id, reason))
        return ModelVersion.from_json(answer["model_version"])

    def transition_model_version_stage(
        self,
        name: str,
        version: int,
        stage: str,
        *,
        archive_existing_versions: bool = False,
        user_id: str = "",
        reason: str | None = None,
    ) -> ModelVersion:
        body = {"stage": stage, "archive_existing_versions": archive_existing_versions}
        path = f"{_version(name, version)}/stage"
        answer = self._call("PUT", path, self._audit(body, user_id, reason))
        return ModelVersion.from_json(answer["model_version"])

    def delete_model_version(
        self, name: str, version: int, *, user_id: str = "", reason: str | None = None
    ) -> set[str]:
        answer = self._call("DELETE", _version(name, version), user_id=user_id, reason=reason)
        return set(answer["digests"])

    def set_model_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        self._call("PUT", f"{_version(name, version)}/tags/{_tail(key)}", {"value": value})

    def delete_model_version_tag(self, name: str, version: int, key: str) -> None:
        self._call("DELETE", f"{_version(name, version)}/tags/{_tail(key)}")

    def search_model_versions(
        self,
        filter_string: str = "",
        max_results: int = 10000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[ModelVersion]:
        body = {
            "filter": filter_string,
            "max_results": max_results,
            "order_by": list(order_by or []),
            "page_token": page_token,
        }
        answer = self._call("POST", "/api/v1/model-versions/search", body)
        return Page(
            [ModelVersion.from_json(v) for v in answer["model_versions"]],
            answer.get("next_page_token"),
        )

    def versions_trained_on(
        self, dataset_name: str, dataset_digest: str | None = None
    ) -> list[ModelVersion]:
        answer = self._call(
            "GET",
            "/api/v1/model-versions/trained-on",
            dataset_name=dataset_name,
            dataset_digest=dataset_digest,
        )
        return [ModelVersion.from_json(v) for v in answer["model_versions"]]

    # ---------------------------------------------------------------- aliases

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        user_id: str = "",
        reason: str | None = None,
    ) -> None:
        segment = _alias_segment(alias)
        if segment is None:
            raise InvalidInput(
                f"alias {alias!r} is not valid; use letters, digits, '_' and '-' only, as in "
                "'champion'."
            )
        body = self._audit({"version": _number(version)}, user_id, reason)
        self._call("PUT", f"{_model(name)}/aliases/{segment}", body)

    def delete_alias(
        self, name: str, alias: str, *, user_id: str = "", reason: str | None = None
    ) -> None:
        segment = _alias_segment(alias)
        if segment is None:
            self.get_registered_model(name)  # NotFound for an unknown model first
            raise _no_such_alias(name, alias)
        url = f"{_model(name)}/aliases/{segment}"
        self._call("DELETE", url, user_id=user_id, reason=reason)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        segment = _alias_segment(alias)
        if segment is None:
            self.get_registered_model(name)
            raise _no_such_alias(name, alias)
        answer = self._call("GET", f"{_model(name)}/aliases/{segment}")
        return ModelVersion.from_json(answer["model_version"])

    def alias_at(self, name: str, alias: str, timestamp: int) -> int | None:
        segment = _alias_segment(alias)
        if segment is None:  # never set, so it pointed nowhere (if the model exists)
            self.history(name, max_results=1)
            return None
        answer = self._call("GET", f"{_model(name)}/aliases/{segment}/at", timestamp=timestamp)
        version = answer["version"]
        return None if version is None else int(version)

    def version_references(self, name: str, version: int) -> list[str]:
        answer = self._call("GET", f"{_version(name, version)}/references")
        return [str(r) for r in answer["references"]]

    # ---------------------------------------------------------------- approvals and audit

    def approve_model_version(
        self, name: str, version: int, approver: str, *, comment: str | None = None
    ) -> Approval:
        body: dict[str, Any] = {"approver": approver}
        if comment is not None:
            body["comment"] = comment
        answer = self._call("POST", f"{_version(name, version)}/approvals", body)
        return Approval.from_json(answer["approval"])

    def list_approvals(self, name: str, version: int) -> list[Approval]:
        answer = self._call("GET", f"{_version(name, version)}/approvals")
        return [Approval.from_json(a) for a in answer["approvals"]]

    def set_approval_policy(
        self,
        name: str,
        required_approvals: int,
        *,
        alias: str = ALL_ALIASES,
        user_id: str = "",
        reason: str | None = None,
    ) -> RegisteredModel:
        body = {"required_approvals": required_approvals, "alias": alias}
        path = f"{_model(name)}/approval-policy"
        answer = self._call("PUT", path, self._audit(body, user_id, reason))
        return RegisteredModel.from_json(answer["registered_model"])

    def history(
        self,
        name: str,
        *,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> Page[RegistryEvent]:
        answer = self._call(
            "GET", f"{_model(name)}/history", max_results=max_results, page_token=page_token
        )
        return Page(
            [RegistryEvent.from_json(e) for e in answer["events"]], answer.get("next_page_token")
        )

    # ---------------------------------------------------------------- lifecycle

    def close(self) -> None:
        self.http.close()
