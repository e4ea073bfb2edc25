"""Reading MLflow-protocol requests and writing their answers.

MLflow's REST protocol is proto-JSON: ``GET`` requests carry their fields in the query string
(repeated fields as repeated keys, booleans as ``true``/``false``), every other method sends a JSON
object. :class:`Args` hides that difference behind typed getters that accept what MLflow clients
send (numbers as strings, ``"NaN"``/``"Infinity"`` for doubles, enum names or numbers) and raise
:class:`~shipyard.errors.InvalidInput` with a message saying what is wrong and how to send it.

:func:`json_endpoint` turns a plain ``handler(workspace, args) -> dict`` into a Starlette endpoint:
the body is parsed, the handler (which calls the blocking store) runs and the answer is encoded
with orjson, all in one worker-thread hop so the event loop never waits on the database.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from shipyard import validation
from shipyard.errors import InvalidInput
from shipyard.server._http_util import (
    DEFAULT_MAX_JSON_BYTES,
    can_write_inline,
    parse_json_object,
    read_body,
    run_short_write,
)
from shipyard.server.auth import Action, authorize, experiment_scopes, principal_of
from shipyard.validation import INT64_MAX, INT64_MIN
from shipyard.workspace import Workspace

JSON_MEDIA_TYPE = "application/json"
PARSE_INLINE_BYTES = 64 * 1024
"""Bodies up to this size are parsed on the event loop (microseconds); larger ones in a thread."""

Handler = Callable[[Workspace, "Args"], dict[str, Any]]
"""An MLflow endpoint's logic: read ``args``, call the store, return the JSON-ready answer."""

_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_BOOLS = {"true": True, "false": False, "True": True, "False": False, "1": True, "0": False}


def _show(value: Any) -> str:
    """A value as it looked on the wire (JSON spelling), shortened for messages."""
    try:
        shown = orjson.dumps(value).decode()
    except TypeError:  # pragma: no cover - only JSON values reach here
        shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


class Args:
    """The fields of one request (or of one nested object), with typed, validating getters.

    ``where`` prefixes field names in messages (``metrics[3].value``) for nested objects.
    """

    __slots__ = ("_data", "_query", "_where", "size", "user")

    def __init__(
        self, data: Mapping[str, Any], *, query: bool = False, where: str = "", size: int = 0
    ) -> None:
        self._data = data
        self._query = query
        self._where = where
        self.size = size
        """Length in bytes of the JSON body the fields came from (0 for a query string)."""
        self.user = ""
        """Who sent the request: the name of the principal the server's authenticator found
        (``anonymous`` without one). The registry records it in its audit trail."""

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_query(cls, params: QueryParams) -> Args:
        """Fields of a query string; every value is kept as the list of its occurrences."""
        data: dict[str, list[str]] = {}
        for k, v in params.multi_items():
            data.setdefault(k, []).append(v)
        return cls(data, query=True)

    def with_fields(self, fields: Mapping[str, str]) -> Args:
        """These fields with ``fields`` (a route's path parameters, which win) put over them."""
        if not fields:
            return self
        data: dict[str, Any] = dict(self._data)
        for k, v in fields.items():
            data[k] = [v] if self._query else v
        out = Args(data, query=self._query, where=self._where, size=self.size)
        out.user = self.user
        return out

    @classmethod
    def from_body(cls, body: bytes) -> Args:
        """Fields of a JSON request body (an empty body is an empty object); a body that is not
        a JSON object is refused with the server's shared explanation."""
        return cls(parse_json_object(body), size=len(body))

    # ------------------------------------------------------------------ helpers

    def _name(self, name: str) -> str:
        return f"{self._where}.{name}" if self._where else name

    def missing(self, name: str) -> InvalidInput:
        """The error for a required field that was not sent."""
        if self._query:
            hint = f"Add it to the query string, e.g. ?{name}=..."
        elif self._where:
            hint = f'Add "{name}" to each element of {self._where.split("[", 1)[0]}.'
        else:
            hint = f'Add "{name}" to the JSON body.'
        return InvalidInput(f"Missing value for required parameter '{self._name(name)}'. {hint}")

    def invalid(self, name: str, value: Any, expected: str) -> InvalidInput:
        """The error for a field of the wrong type or form."""
        return InvalidInput(
            f"Invalid value {_show(value)} for parameter '{self._name(name)}' supplied: "
            f"expected {expected}."
        )

    def raw(self, name: str) -> Any:
        """The field's value as sent (first occurrence for a query string), or ``None``."""
        value = self._data.get(name)
        if self._query and value is not None:
            return value[0]
        return value

    def has(self, name: str) -> bool:
        """Whether the field was sent with a non-null value."""
        return self._data.get(name) is not None

    # ------------------------------------------------------------------ scalars

    @overload
    def string(self, name: str, default: str) -> str: ...
    @overload
    def string(self, name: str, default: None = None) -> str | None: ...

    def string(self, name: str, default: str | None = None) -> str | None:
        """An optional string field."""
        value = self.raw(name)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self.invalid(name, value, "a string")
        return value

    def require_string(self, name: str, *, allow_empty: bool = False) -> str:
        """A required string field; an empty string counts as missing unless ``allow_empty``."""
        value = self.string(name)
        if value is None or (not value and not allow_empty):
            raise self.missing(name)
        return value

    @overload
    def integer(
        self, name: str, default: int, *, minimum: int = ..., maximum: int = ...
    ) -> int: ...
    @overload
    def integer(
        self, name: str, default: None = None, *, minimum: int = ..., maximum: int = ...
    ) -> int | None: ...

    def integer(
        self,
        name: str,
        default: int | None = None,
        *,
        minimum: int = INT64_MIN,
        maximum: int = INT64_MAX,
    ) -> int | None:
        """An optional integer field: a JSON number or a string of digits (int64 in proto-JSON)."""
        value = self.raw(name)
        if value is None or value == "":
            return default
        number: int
        if isinstance(value, bool):
            raise self.invalid(name, value, "an integer")
        if isinstance(value, int):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        elif isinstance(value, str):
            try:
                number = int(value.strip())
            except ValueError:
                raise self.invalid(name, value, "an integer") from None
        else:
            raise self.invalid(name, value, "an integer")
        if not minimum <= number <= maximum:
            raise InvalidInput(
                f"Invalid value {number} for parameter '{self._name(name)}' supplied: it must be "
                f"between {minimum} and {maximum}."
            )
        return number

    def require_integer(self, name: str, *, minimum: int = INT64_MIN) -> int:
        """A required integer field."""
        value = self.integer(name, minimum=minimum)
        if value is None:
            raise self.missing(name)
        return value

    def double(self, name: str) -> float | None:
        """An optional double: a JSON number, a numeric string, or "NaN"/"Infinity"/"-Infinity"."""
        value = self.raw(name)
        if value is None:
            return None
        if isinstance(value, float):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            special = _NON_FINITE.get(value)
            if special is not None:
                return special
            try:
                number = float(value)
            except ValueError:
                pass
            else:
                if math.isfinite(number):
                    return number
        raise self.invalid(name, value, 'a number (or the string "NaN", "Infinity" or "-Infinity")')

    def require_double(self, name: str) -> float:
        """A required double."""
        value = self.double(name)
        if value is None:
            raise self.missing(name)
        return value

    def boolean(self, name: str, default: bool = False) -> bool:
        """A boolean: JSON ``true``/``false`` or the query-string words ``true``/``false``."""
        value = self.raw(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value in _BOOLS:
            return _BOOLS[value]
        raise self.invalid(name, value, "true or false")

    def enum(self, name: str, names: tuple[str, ...], default: str) -> str:
        """An enum field sent by name (``"ACTIVE_ONLY"``) or by its proto number (1-based)."""
        value = self.raw(name)
        if value is None or value == "":
            return default
        if isinstance(value, str):
            upper = value.upper()
            if upper in names:
                return upper
            if value.isdigit():
                value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= len(names):
            return names[value - 1]
        raise self.invalid(name, value, "one of " + ", ".join(names))

    # ------------------------------------------------------------------ repeated fields

    def strings(self, name: str, *, allow_numbers: bool = False) -> list[str]:
        """A repeated string field (``[]`` when absent). ``allow_numbers`` accepts ids sent as
        JSON numbers."""
        value = self._data.get(name)
        if value is None:
            return []
        if not self._query and not isinstance(value, list):
            value = [value]  # a lone value where a list was expected: accept it as a list of one
        out: list[str] = []
        for i, item in enumerate(value):
            if isinstance(item, str):
                out.append(item)
            elif allow_numbers and isinstance(item, int) and not isinstance(item, bool):
                out.append(str(item))
            else:
                raise self.invalid(f"{name}[{i}]", item, "a string")
        return out

    def objects(self, name: str) -> list[Args]:
        """A repeated message field, each element wrapped as :class:`Args` for typed access."""
        value = self._data.get(name)
        if value is None:
            return []
        if self._query:
            raise InvalidInput(
                f"Parameter '{name}' holds objects, which a query string cannot carry; send the "
                "request as POST with a JSON body."
            )
        if not isinstance(value, list):
            raise self.invalid(name, value, "a list of objects")
        out: list[Args] = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise self.invalid(f"{name}[{i}]", item, "an object")
            out.append(Args(item, where=self._name(f"{name}[{i}]")))
        return out

    def message(self, name: str) -> Args | None:
        """A nested message field (``None`` when absent)."""
        value = self._data.get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.invalid(name, value, "an object")
        return Args(value, where=self._name(name))

    def raw_list(self, name: str) -> list[Any] | None:
        """A repeated field's raw JSON list (for fast paths), or ``None`` when absent."""
        value = self._data.get(name)
        if value is None:
            return None
        if self._query or not isinstance(value, list):
            raise self.invalid(name, value, "a list")
        return value

    # ------------------------------------------------------------------ MLflow conventions

    def run_id(self) -> str:
        """The run a request is about: ``run_id``, or its legacy alias ``run_uuid``."""
        value = self.string("run_id") or self.string("run_uuid")
        if not value:
            raise self.missing("run_id")
        return value


def encode(obj: Any) -> bytes:
    """JSON-encode an answer (orjson; non-finite floats must already be strings)."""
    return orjson.dumps(obj)


def json_response(obj: Any, status_code: int = 200) -> Response:
    """A JSON response with orjson's encoding."""
    return Response(encode(obj), status_code=status_code, media_type=JSON_MEDIA_TYPE)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One JSON endpoint of the MLflow surface: where it is, what it does, who may call it."""

    path: str
    """Path below the MLflow prefixes, e.g. ``/runs/log-metric``."""
    methods: tuple[str, ...]
    handler: Handler
    action: Action
    """What the authorizer is asked for: ``read`` or ``write``."""
    resource: str
    """``run``, ``experiment``, ``model`` (a registered model, by ``name``) or ``logged-model``
    (by ``model_id``): the id is read from the request's fields; ``experiments``: every
    experiment of the request's ``experiment_ids`` (``experiment:*`` when it names none); or a
    fixed resource string such as ``experiment:*`` for listings."""
    also: Callable[[Args], Sequence[tuple[Action, str]]] | None = None
    """More ``(action, resource)`` pairs to authorize, found in the request (for instance the run
    or logged model a new model version copies its files from)."""
    inline: bool = False
    """A short write through one atomic store call (logging, registering a version): on a SQLite
    file it runs on the event loop without waiting for locks, and in a worker thread only when
    another writer holds the lock (see :func:`json_endpoint`)."""
    guard: Callable[[Request, Args], Awaitable[None]] | None = None
    """A further check with the request (e.g. moves of protected aliases need ``deploy``)."""

    def resource_of(self, args: Args) -> str:
        """The resource string of one request, for every kind but ``experiments`` (see
        :meth:`resources_of`, which the endpoint authorizes)."""
        if self.resource == "run":
            rid = args.raw("run_id") or args.raw("run_uuid")
            return f"run:{rid}" if isinstance(rid, str) and rid else "run:*"
        if self.resource == "experiment":
            exp = args.raw("experiment_id")
            return f"experiment:{exp}" if exp not in (None, "") else "experiment:*"
        if self.resource in _NAMED_RESOURCES:
            value = args.raw(_NAMED_RESOURCES[self.resource])
            return f"{self.resource}:{value if isinstance(value, str) and value else '*'}"
        return self.resource

    def resources_of(self, args: Args) -> list[str]:
        """Every resource string handed to the authorizer for one request: one, or for
        ``experiments`` one per listed experiment (so a user granted on an experiment may search
        its runs without a workspace grant)."""
        if self.resource != "experiments":
            return [self.resource_of(args)]
        try:
            ids = [
                validation.experiment_id(e)
                for e in args.strings("experiment_ids", allow_numbers=True)
            ]
        except InvalidInput:
            ids = []  # a malformed list is the handler's 400, for whoever may search at all
        return experiment_scopes(ids)


_NAMED_RESOURCES = {"model": "name", "logged-model": "model_id"}


def _handle(handler: Handler, workspace: Workspace, args: Args | bytes) -> bytes:
    if isinstance(args, bytes):
        args = Args.from_body(args)
    return encode(handler(workspace, args))


async def read_args(request: Request) -> Args | bytes:
    """The request's fields: the query string for ``GET``, else the JSON body (falling back to
    the query string when the body is empty, so ``curl -X POST '...?experiment_id=1'`` works).

    Bodies larger than :data:`PARSE_INLINE_BYTES` come back unparsed, to be parsed in a worker
    thread rather than on the event loop."""
    if request.method in ("GET", "HEAD"):
        return Args.from_query(request.query_params)
    body = await read_body(request, DEFAULT_MAX_JSON_BYTES)
    if not body.strip() and request.query_params:
        return Args.from_query(request.query_params)
    if len(body) > PARSE_INLINE_BYTES:
        return body
    return Args.from_body(body)


def json_endpoint(spec: Endpoint, workspace: Workspace) -> Callable[[Request], Awaitable[Response]]:
    """Wrap ``spec.handler`` as a Starlette endpoint speaking MLflow's proto-JSON conventions.

    Per request: read the fields, ask the app's authorizer, then run the handler (blocking store
    calls) and encode its answer in one worker-thread hop.

    An ``inline`` endpoint with a small body on a SQLite file skips the hop: its one store call
    runs on the event loop unless another writer holds the lock (:func:`run_short_write`)."""
    handler = spec.handler
    action = spec.action
    inline = spec.inline and can_write_inline(workspace.store)

    async def endpoint(request: Request) -> Response:
        source = await read_args(request)
        large = isinstance(source, bytes)  # a body over PARSE_INLINE_BYTES
        if isinstance(source, bytes):
            source = await run_in_threadpool(Args.from_body, source)
        if request.path_params:
            source = source.with_fields(request.path_params)
        source.user = principal_of(request).name
        for resource in spec.resources_of(source):
            await authorize(request, action, resource)
        if spec.also is not None:
            for also_action, resource in spec.also(source):
                await authorize(request, also_action, resource)
        if spec.guard is not None:
            await spec.guard(request, source)
        args = source
        content = await run_short_write(
            inline and not large, lambda: _handle(handler, workspace, args)
        )
        return Response(content, media_type=JSON_MEDIA_TYPE)

    endpoint.__name__ = handler.__name__
    endpoint.__qualname__ = handler.__qualname__
    endpoint.__doc__ = handler.__doc__
    return endpoint
