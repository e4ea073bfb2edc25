"""Request parsing and response helpers shared by every route module (Shipyard's and MLflow's).

* :func:`read_json_object` reads a JSON body with a size limit and explains what is wrong with it.
* The ``require_*`` / ``optional_*`` getters pull one typed field out of a parsed body (or a query
  string) and raise :class:`~shipyard.errors.InvalidInput` with MLflow's wording:
  ``Missing value for required parameter 'name'...`` and ``Invalid value 5 for parameter 'name':
  expected a string``.
* :class:`JSONResponse` serializes with orjson. Values must already be JSON-safe: pass entities
  through :func:`shipyard.entities.to_json`, which writes non-finite floats as ``"NaN"``,
  ``"Infinity"`` and ``"-Infinity"``.

Numbers follow proto3 JSON, which MLflow clients speak: integers may arrive as decimal strings
and floats as ``"NaN"``/``"Infinity"``/``"-Infinity"`` strings. Bare ``NaN`` tokens are not JSON
and are refused with a message that says how to send them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from shipyard.errors import InvalidInput, PayloadTooLarge
from shipyard.store.db import Database, WouldBlock

T = TypeVar("T")

DEFAULT_MAX_JSON_BYTES = 32 * 1024 * 1024
"""Largest JSON body accepted by default (dataset profiles may be up to 16 MB each)."""

_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_BARE_NON_FINITE = (b"-Infinity", b"+Infinity", b"Infinity", b"NaN", b"-inf", b"inf", b"nan")


class JSONResponse(Response):
    """A JSON response rendered with orjson (several times faster than the standard library)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def json_response(content: Any, status_code: int = 200) -> JSONResponse:
    """A JSON response of already JSON-safe ``content``."""
    return JSONResponse(content, status_code=status_code)


def finite_or_str(value: float) -> float | str:
    """A float for JSON output: non-finite values become ``"NaN"``/``"Infinity"``/``"-Infinity"``."""
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


# ------------------------------------------------------------------------------------ store calls


def can_write_inline(store: object) -> bool:
    """Whether ``store`` (a workspace's tracking store) sits on a SQLite file, where
    :func:`run_short_write` may run a call on the event loop."""
    database = getattr(store, "database", None)
    return isinstance(database, Database) and database.supports_no_wait


async def run_short_write(inline: bool, fn: Callable[[], T]) -> T:
    """Run ``fn`` (one atomic store write of about a millisecond) with ``inline`` (see
    :func:`can_write_inline`) on the event loop, else in a worker thread.

    Inline, the write runs inside :meth:`Database.no_wait`: a lock held by another writer
    raises :class:`WouldBlock` before anything is written, instead of stalling the loop, and
    ``fn`` then runs again in a worker thread, where it waits as usual. The thread hop (two
    thread switches) costs more than such a write, and far more on a busy machine. ``fn`` must
    make at most one store write (reads before it may run twice), so that running it again
    repeats nothing."""
    if inline:
        try:
            with Database.no_wait():
                return fn()
        except WouldBlock:
            pass
    return await run_in_threadpool(fn)


# ------------------------------------------------------------------------------------ bodies


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The whole request body, refusing (without reading on) one larger than ``max_bytes``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(int(declared), max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(size, max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json_object(
    request: Request, max_bytes: int = DEFAULT_MAX_JSON_BYTES
) -> dict[str, Any]:
    """Parse the request body as a JSON object; an empty body is ``{}``."""
    return parse_json_object(await read_body(request, max_bytes))


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """Parse ``raw`` as a JSON object, with a message saying what is wrong and how to fix it."""
    if not raw.strip():
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        token = _bare_non_finite_at(raw, exc.pos)
        if token:
            raise InvalidInput(
                f"request body is not valid JSON: bare {token} at character {exc.pos} is not a "
                'JSON value; send non-finite numbers as the strings "NaN", "Infinity" or '
                '"-Infinity".'
            ) from None
        if "infinity" in exc.msg:
            raise InvalidInput(
                f"request body holds a number too large for a 64-bit float at character "
                f'{exc.pos}; send a smaller number, or the string "Infinity" or '
                '"-Infinity" where a non-finite value is meant.'
            ) from None
        raise InvalidInput(
            f"request body is not valid JSON: {exc.msg} at character {exc.pos}; send a JSON "
            'object such as {"name": "my-experiment"} with Content-Type: application/json.'
        ) from None
    if not isinstance(value, dict):
        raise InvalidInput(
            f"request body must be a JSON object, got a JSON {_json_type(value)}; wrap the "
            'fields in an object such as {"name": "my-experiment"}.'
        )
    return value


def _bare_non_finite_at(raw: bytes, pos: int) -> str | None:
    """The non-JSON number token (``NaN``, ``-Infinity``...) where parsing stopped, if any."""
    for start in (pos - 1, pos):
        if start < 0:
            continue
        for token in _BARE_NON_FINITE:
            if raw.startswith(token, start):
                return token.decode()
    return None


def _too_large(size: int, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"request body is {size} bytes; this endpoint accepts at most {limit} bytes of JSON. "
        "Send fewer values per request, or store large content as an artifact."
    )


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "null" if value is None else type(value).__name__


# ------------------------------------------------------------------------------------ fields


def _missing(name: str) -> InvalidInput:
    return InvalidInput(
        f"Missing value for required parameter '{name}'. Add '{name}' to the request "
        "(see GET /api/openapi.json for each endpoint's fields)."
    )


def _invalid(value: object, name: str, expected: str) -> InvalidInput:
    shown = repr(value) if isinstance(value, str) else orjson.dumps(value).decode()[:200]
    return InvalidInput(f"Invalid value {shown} for parameter '{name}': expected {expected}.")


def require_str(body: Mapping[str, Any], name: str, *, allow_empty: bool = False) -> str:
    """A required string field (an empty string counts as missing unless ``allow_empty``)."""
    value = body.get(name)
    if value is None or (value == "" and not allow_empty):
        raise _missing(name)
    if not isinstance(value, str):
        raise _invalid(value, name, "a string")
    return value


def optional_str(body: Mapping[str, Any], name: str, default: str | None = None) -> str | None:
    """An optional string field; ``None`` and absence give ``default``."""
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise _invalid(value, name, "a string")
    return value


def _as_int(value: object, name: str) -> int:
    if isinstance(value, bool):
        raise _invalid(value, name, "an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
    raise _invalid(value, name, "an integer")


def require_int(body: Mapping[str, Any], name: str) -> int:
    """A required integer field (decimal strings are accepted, as proto3 JSON sends int64)."""
    value = body.get(name)
    if value is None:
        raise _missing(name)
    return _as_int(value, name)


def optional_int(body: Mapping[str, Any], name: str, default: int | None = None) -> int | None:
    """An optional integer field; ``None`` and absence give ``default``."""
    value = body.get(name)
    if value is None or value == "":
        return default
    return _as_int(value, name)


def _as_float(value: object, name: str) -> float:
    if isinstance(value, bool):
        raise _invalid(value, name, 'a number (or "NaN", "Infinity", "-Infinity")')
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        if value in _NON_FINITE:
            return _NON_FINITE[value]
        try:
            parsed = float(value)
        except ValueError:
            pass
        else:
            if math.isfinite(parsed):
                return parsed
    raise _invalid(value, name, 'a number (or "NaN", "Infinity", "-Infinity")')


def require_float(body: Mapping[str, Any], name: str) -> float:
    """A required number; ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` strings are accepted."""
    value = body.get(name)
    if value is None:
        raise _missing(name)
    return _as_float(value, name)


def optional_bool(body: Mapping[str, Any], name: str, default: bool = False) -> bool:
    """An optional boolean field; ``"true"``/``"false"`` strings (query strings) are accepted."""
    value = body.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise _invalid(value, name, "true or false")


def optional_str_list(body: Mapping[str, Any], name: str) -> list[str]:
    """An optional array of strings (absent gives ``[]``); a single string is a one-item list."""
    value = body.get(name)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _invalid(value, name, "an array of strings")
    return value


def optional_str_dict(body: Mapping[str, Any], name: str) -> dict[str, str]:
    """An optional object of string values (absent gives ``{}``)."""
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise _invalid(value, name, "an object whose values are strings")
    return value


def optional_object_list(body: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    """An optional array of JSON objects (absent gives ``[]``)."""
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise _invalid(value, name, "an array of objects")
    return value


def optional_object(body: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    """An optional JSON object field."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _invalid(value, name, "an object")
    return value


def query(request: Request) -> dict[str, Any]:
    """The query string as a mapping for the field getters (repeated keys become lists)."""
    params = request.query_params
    out: dict[str, Any] = {}
    for key in params:
        values = params.getlist(key)
        out[key] = values if len(values) > 1 else values[0]
    return out
