"""Shipyard's error model: one base class, a small documented tree, one code table.

Every error a user can cause is a subclass of :class:`ShipyardError` with a stable ``code`` and an
HTTP status, kept in :data:`ERROR_CLASSES`. The server turns an error into one JSON shape
(:meth:`ShipyardError.to_dict`); the REST client rebuilds the same class from it
(:func:`error_from_dict`), so callers catch subclasses, never compare strings.

    ShipyardError                  INTERNAL_ERROR            500
    ├── InvalidInput               INVALID_PARAMETER_VALUE   400
    │   ├── InvalidFilter          INVALID_FILTER            400
    │   ├── InvalidArtifactPath    INVALID_ARTIFACT_PATH     400
    │   ├── InvalidData            INVALID_DATA              400
    │   ├── PayloadTooLarge        PAYLOAD_TOO_LARGE         413
    │   └── UnsupportedMediaType   UNSUPPORTED_MEDIA_TYPE    415
    ├── Unauthenticated            UNAUTHENTICATED           401
    ├── PermissionDenied           PERMISSION_DENIED         403
    ├── NotFound                   RESOURCE_DOES_NOT_EXIST   404
    │   └── EndpointNotFound       ENDPOINT_NOT_FOUND        404
    ├── MethodNotAllowed           METHOD_NOT_ALLOWED        405
    ├── RateLimited                REQUEST_LIMIT_EXCEEDED    429
    ├── AlreadyExists              RESOURCE_ALREADY_EXISTS   409
    ├── Conflict                   RESOURCE_CONFLICT         409
    │   └── InvalidState           INVALID_STATE             409
    │       ├── ApprovalRequired   APPROVAL_REQUIRED         409
    │       └── GateFailed         GATE_FAILED               409
    ├── DataValidationFailed       DATA_VALIDATION_FAILED    422
    ├── MigrationRequired          MIGRATION_REQUIRED        503
    ├── ModelNotReady              MODEL_NOT_READY           503
    ├── StoreUnavailable           TEMPORARILY_UNAVAILABLE   503
    ├── MissingDependency          MISSING_DEPENDENCY        500
    └── StepFailed                 STEP_FAILED               500
        └── StepTimeout            STEP_TIMEOUT              500

Each class also names the MLflow error code it corresponds to (``mlflow_code``), used only by the
MLflow-compatible REST surface.

Messages say what happened, why, and what to do next.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ShipyardError(Exception):
    """Base of every error Shipyard raises on purpose."""

    code: ClassVar[str] = "INTERNAL_ERROR"
    http_status: ClassVar[int] = 500
    mlflow_code: ClassVar[str] = "INTERNAL_ERROR"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        """The one JSON error shape served by every Shipyard endpoint."""
        body: dict[str, Any] = {"error_code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self).__name__, self.message, self.details))


class InvalidInput(ShipyardError):
    """A value the caller sent is malformed, out of range or not allowed."""

    code = "INVALID_PARAMETER_VALUE"
    http_status = 400
    mlflow_code = "INVALID_PARAMETER_VALUE"


class InvalidFilter(InvalidInput):
    """A search filter or order-by clause does not parse; ``details`` names the token."""

    code = "INVALID_FILTER"


class InvalidArtifactPath(InvalidInput):
    """An artifact path would escape its run (``..``, absolute, NUL, backslash)."""

    code = "INVALID_ARTIFACT_PATH"


class InvalidData(InvalidInput):
    """A data file can't be read as a table (truncated Parquet, ragged CSV rows, text that is
    not UTF-8, an empty file); the message names the file and the problem."""

    code = "INVALID_DATA"


class PayloadTooLarge(InvalidInput):
    """A request body or batch exceeds the documented limit."""

    code = "PAYLOAD_TOO_LARGE"
    http_status = 413


class UnsupportedMediaType(InvalidInput):
    """A request body's Content-Type is not one the endpoint reads; the message lists those
    it does."""

    code = "UNSUPPORTED_MEDIA_TYPE"
    http_status = 415
    mlflow_code = "BAD_REQUEST"


class Unauthenticated(ShipyardError):
    """The request carries no credentials, or credentials the server does not accept."""

    code = "UNAUTHENTICATED"
    http_status = 401
    mlflow_code = "UNAUTHENTICATED"


class PermissionDenied(ShipyardError):
    """The caller is known but may not perform this action on this resource."""

    code = "PERMISSION_DENIED"
    http_status = 403
    mlflow_code = "PERMISSION_DENIED"


class NotFound(ShipyardError):
    """The experiment, run, artifact or other resource does not exist."""

    code = "RESOURCE_DOES_NOT_EXIST"
    http_status = 404
    mlflow_code = "RESOURCE_DOES_NOT_EXIST"


class EndpointNotFound(NotFound):
    """No route answers this method and path."""

    code = "ENDPOINT_NOT_FOUND"
    mlflow_code = "ENDPOINT_NOT_FOUND"


class MethodNotAllowed(ShipyardError):
    """The path exists but does not answer this HTTP method; ``details["allow"]`` lists those
    it does."""

    code = "METHOD_NOT_ALLOWED"
    http_status = 405
    mlflow_code = "BAD_REQUEST"


class RateLimited(ShipyardError):
    """Too many requests from one client in a short time; retry after the given delay."""

    code = "REQUEST_LIMIT_EXCEEDED"
    http_status = 429
    mlflow_code = "REQUEST_LIMIT_EXCEEDED"


class AlreadyExists(ShipyardError):
    """A resource with this name or key already exists."""

    code = "RESOURCE_ALREADY_EXISTS"
    http_status = 409
    mlflow_code = "RESOURCE_ALREADY_EXISTS"


class Conflict(ShipyardError):
    """The request contradicts what is stored (for example, changing a logged param)."""

    code = "RESOURCE_CONFLICT"
    http_status = 409
    mlflow_code = "INVALID_PARAMETER_VALUE"


class InvalidState(Conflict):
    """The resource is in a state that forbids this operation (for example, a deleted run)."""

    code = "INVALID_STATE"


class ApprovalRequired(InvalidState):
    """A registry alias can't move to a model version that lacks the approvals its model's policy
    requires; ``details`` holds ``required``, ``approvals`` and ``approvers``."""

    code = "APPROVAL_REQUIRED"


class GateFailed(InvalidState):
    """A model version failed a deployment gate, so it can't enter the environment (or be
    promoted); the message names each failed gate with its measured value and threshold, and
    ``details`` holds the whole gate report."""

    code = "GATE_FAILED"


class DataValidationFailed(ShipyardError):
    """A table failed validation against its dataset's schema with error-severity anomalies
    (a data gate); ``details["anomalies"]`` lists them."""

    code = "DATA_VALIDATION_FAILED"
    http_status = 422
    mlflow_code = "INVALID_PARAMETER_VALUE"


class MigrationRequired(ShipyardError):
    """The database schema is older (or newer) than this version of Shipyard expects."""

    code = "MIGRATION_REQUIRED"
    http_status = 503
    mlflow_code = "TEMPORARILY_UNAVAILABLE"


class ModelNotReady(ShipyardError):
    """A model server has not finished loading (or warming up) the model it serves, or the
    model named in the request is not one it serves yet; retry once ``/health`` answers 200."""

    code = "MODEL_NOT_READY"
    http_status = 503
    mlflow_code = "TEMPORARILY_UNAVAILABLE"


class StoreUnavailable(ShipyardError):
    """The metadata or artifact backend cannot be reached or refused the operation."""

    code = "TEMPORARILY_UNAVAILABLE"
    http_status = 503
    mlflow_code = "TEMPORARILY_UNAVAILABLE"


class MissingDependency(ShipyardError):
    """An optional dependency is not installed; the message names the extra to install."""

    code = "MISSING_DEPENDENCY"
    http_status = 500
    mlflow_code = "INTERNAL_ERROR"


class StepFailed(ShipyardError):
    """A pipeline step's own code raised: the error boundary around user code. The original
    exception is chained (``__cause__``) where it is at hand; ``details`` holds ``step``,
    ``run_id``, ``error_type`` and ``attempts``."""

    code = "STEP_FAILED"
    http_status = 500
    mlflow_code = "INTERNAL_ERROR"


class StepTimeout(StepFailed):
    """A pipeline step ran past its ``timeout_s``; ``details`` holds ``step``, ``run_id`` and
    ``timeout_s``."""

    code = "STEP_TIMEOUT"


ERROR_CLASSES: dict[str, type[ShipyardError]] = {
    cls.code: cls
    for cls in (
        ShipyardError,
        InvalidInput,
        InvalidFilter,
        InvalidArtifactPath,
        InvalidData,
        PayloadTooLarge,
        UnsupportedMediaType,
        Unauthenticated,
        PermissionDenied,
        NotFound,
        EndpointNotFound,
        MethodNotAllowed,
        RateLimited,
        AlreadyExists,
        Conflict,
        InvalidState,
        ApprovalRequired,
        GateFailed,
        DataValidationFailed,
        MigrationRequired,
        ModelNotReady,
        StoreUnavailable,
        MissingDependency,
        StepFailed,
        StepTimeout,
    )
}


def error_from_dict(body: dict[str, Any], *, status: int | None = None) -> ShipyardError:
    """Rebuild the error class a server sent (the inverse of :meth:`ShipyardError.to_dict`)."""
    code = str(body.get("error_code", "INTERNAL_ERROR"))
    message = str(body.get("message", f"server answered HTTP {status} without a message"))
    cls = ERROR_CLASSES.get(code, ShipyardError)
    details = body.get("details") if isinstance(body.get("details"), dict) else None
    return cls(message, details=details)


def _rebuild(name: str, message: str, details: dict[str, Any]) -> ShipyardError:
    for cls in ERROR_CLASSES.values():
        if cls.__name__ == name:
            return cls(message, details=details)
    return ShipyardError(message, details=details)


def missing_extra(module: str, extra: str) -> MissingDependency:
    """The error to raise when an optional dependency is absent."""
    return MissingDependency(
        f"{module!r} is not installed, and this feature needs it. "
        f"Install it with: pip install 'shipyard[{extra}]'"
    )


class ShipyardWarning(UserWarning):
    """Something works but may not work as meant (for example, a model saved with other
    library versions than the ones installed); the message says what to check."""
