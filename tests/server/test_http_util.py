"""Body parsing and field getters shared by every route module."""

from __future__ import annotations

import math
from typing import Any

import anyio
import orjson
import pytest
from starlette.requests import Request

from shipyard.errors import InvalidInput, PayloadTooLarge
from shipyard.server._http_util import (
    JSONResponse,
    finite_or_str,
    optional_bool,
    optional_int,
    optional_str_dict,
    optional_str_list,
    parse_json_object,
    read_json_object,
    require_float,
    require_int,
    require_str,
)


def _request(chunks: list[bytes], headers: dict[str, str] | None = None) -> Request:
    messages = [
        {"type": "http.request", "body": c, "more_body": i + 1 < len(chunks)}
        for i, c in enumerate(chunks)
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }
    return Request(scope, receive)


def _read(chunks: list[bytes], max_bytes: int = 1000, **headers: str) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        return await read_json_object(_request(chunks, headers), max_bytes)

    return anyio.run(go)


def test_reads_a_chunked_object() -> None:
    assert _read([b'{"a": ', b'1, "b": "x"}']) == {"a": 1, "b": "x"}


def test_empty_body_is_an_empty_object() -> None:
    assert _read([b""]) == {}


def test_malformed_json_says_why_and_what_to_send() -> None:
    with pytest.raises(InvalidInput, match=r"request body is not valid JSON: .*send a JSON object"):
        _read([b'{"a": 1,}'])


def test_non_object_is_refused() -> None:
    with pytest.raises(InvalidInput, match="must be a JSON object, got a JSON array"):
        parse_json_object(b"[1, 2]")


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_bare_non_finite_tokens_are_refused_with_the_fix(token: str) -> None:
    with pytest.raises(InvalidInput, match=f'bare {token} .*strings "NaN", "Infinity"'):
        parse_json_object(f'{{"value": {token}}}'.encode())


def test_non_finite_strings_are_accepted() -> None:
    body = parse_json_object(b'{"a": "NaN", "b": "Infinity", "c": "-Infinity", "d": 1.5}')
    assert math.isnan(require_float(body, "a"))
    assert require_float(body, "b") == math.inf
    assert require_float(body, "c") == -math.inf
    assert require_float(body, "d") == 1.5


def test_too_large_by_content_length_and_by_stream() -> None:
    with pytest.raises(PayloadTooLarge):
        _read([b"{}"], 10, **{"Content-Length": "11"})
    with pytest.raises(PayloadTooLarge, match="at most 10 bytes"):
        _read([b'{"a": "', b'0123456789"}'], 10)


def test_required_string_messages() -> None:
    with pytest.raises(InvalidInput, match=r"Missing value for required parameter 'name'"):
        require_str({}, "name")
    with pytest.raises(
        InvalidInput, match=r"Invalid value 5 for parameter 'name': expected a string"
    ):
        require_str({"name": 5}, "name")
    assert require_str({"v": ""}, "v", allow_empty=True) == ""


def test_integers_accept_proto3_strings_and_refuse_booleans() -> None:
    assert require_int({"n": "12"}, "n") == 12
    assert require_int({"n": 12.0}, "n") == 12
    assert optional_int({}, "n", 3) == 3
    with pytest.raises(InvalidInput, match="expected an integer"):
        require_int({"n": True}, "n")
    with pytest.raises(InvalidInput, match="expected an integer"):
        require_int({"n": "1.5"}, "n")


def test_collections_and_booleans() -> None:
    assert optional_str_list({"ids": "1"}, "ids") == ["1"]
    assert optional_str_list({}, "ids") == []
    with pytest.raises(InvalidInput, match="an array of strings"):
        optional_str_list({"ids": [1]}, "ids")
    with pytest.raises(InvalidInput, match="values are strings"):
        optional_str_dict({"tags": {"a": 1}}, "tags")
    assert optional_bool({"p": "true"}, "p") is True
    assert optional_bool({}, "p") is False
    with pytest.raises(InvalidInput, match="true or false"):
        optional_bool({"p": "maybe"}, "p")


def test_json_response_renders_with_orjson() -> None:
    resp = JSONResponse({"v": finite_or_str(math.nan), "w": finite_or_str(-math.inf), "x": 1.0})
    assert orjson.loads(resp.body) == {"v": "NaN", "w": "-Infinity", "x": 1.0}
    assert resp.media_type == "application/json"
