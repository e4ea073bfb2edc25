"""Cache keys: what a step's result depends on, each part hashed on its own.

A step's key is the sha256 of these components (kept with the step run, so ``shipyard pipelines
cache why`` can say which one changed):

* ``code``: the step function's source, plus the source of every local function or class it
  refers to (recursively) and of every local module it uses, plus the constants it reads
  (local = not the standard library, not an installed package);
* ``params``: each literal argument (a pipeline parameter, a constant);
* ``inputs``: the content digest of each upstream output it takes;
* ``external``: the fingerprint of each declared external input (``reads=``): a file's sha256,
  a glob's matching files with theirs, a URL's ETag / Last-Modified / length, a database
  query's result rows, a callable's return value;
* ``env``: the Python version and the versions of the installed distributions the step's code
  refers to.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.metadata
import inspect
import json
import os
import pickle
import platform
import sys
import sysconfig
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard._version import __version__

_lock = threading.Lock()
_code_cache: dict[Any, tuple[str, dict[str, str], dict[str, str]]] = {}
_file_cache: dict[tuple[str, int, int], str] = {}
_dists: dict[str, list[str]] | None = None
_SIMPLE = (int, float, str, bool, bytes, type(None))


def sha256(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def key_of(components: dict[str, Any]) -> str:
    """The cache key of a step's components."""
    return sha256(json.dumps(components, sort_keys=True, separators=(",", ":"), default=str))


def value_hash(value: Any) -> str:
    """A stable hash of a literal argument (JSON when it can be, else its pickle)."""
    try:
        return sha256(json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=True))
    except (TypeError, ValueError):
        try:
            return sha256(pickle.dumps(value, protocol=4))
        except Exception:
            return sha256(repr(value))


# ---------------------------------------------------------------------------- code and env

_STDLIB = {
    str(Path(p).resolve())
    for p in {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]}
}
_INSTALLED = {
    str(Path(p).resolve())
    for p in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
}


def _is_local_file(path: str | None) -> bool:
    if not path:
        return False
    resolved = str(Path(path).resolve())
    if "site-packages" in resolved or "dist-packages" in resolved:
        return False
    return not any(resolved.startswith(p) for p in _STDLIB | _INSTALLED)


def _is_local(obj: Any) -> bool:
    module = sys.modules.get(getattr(obj, "__module__", "") or "")
    if module is None or module.__name__.startswith("shipyard."):
        return False
    if _is_interactive(module):
        return True
    return _is_local_file(getattr(module, "__file__", None))


def _is_interactive(module: types.ModuleType | None) -> bool:
    """A notebook's or REPL's ``__main__``: user code without a file, redefined cell by cell."""
    return (
        module is not None
        and module.__name__ == "__main__"
        and not getattr(module, "__file__", None)
    )


def _file_hash(path: str) -> str:
    try:
        stat = os.stat(path)
    except OSError:
        return "missing"
    stamp = (path, stat.st_mtime_ns, stat.st_size)
    with _lock:
        cached = _file_cache.get(stamp)
    if cached is None:
        cached = sha256(Path(path).read_bytes())
        with _lock:
            _file_cache[stamp] = cached
    return cached


def _names(code: types.CodeType) -> set[str]:
    found = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found |= _names(const)
    return found


def _source(obj: Any) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        code = getattr(obj, "__code__", None)
        return _code_text(code) if code is not None else repr(obj)


def _code_text(code: types.CodeType) -> str:
    """A function's compiled code as stable text (no source to read): its bytecode, names and
    constants, nested functions included (their reprs hold memory addresses)."""
    consts = [_code_text(c) if isinstance(c, types.CodeType) else repr(c) for c in code.co_consts]
    return repr((code.co_code.hex(), code.co_names, consts))


def _distributions() -> dict[str, list[str]]:
    global _dists
    if _dists is None:
        _dists = dict(importlib.metadata.packages_distributions())
    return _dists


def code_fingerprint(fn: Callable[..., Any]) -> tuple[str, dict[str, str], dict[str, str]]:
    """``(code hash, {object or module: hash}, {distribution: version})`` of a step function.

    Computed once per function and process, except for a notebook's functions, whose helpers
    and constants can be redefined while the function object stays the same."""
    interactive = _is_interactive(sys.modules.get(getattr(fn, "__module__", "") or ""))
    with _lock:
        cached = None if interactive else _code_cache.get(fn)
    if cached is not None:
        return cached
    parts: dict[str, str] = {}
    packages: set[str] = set()
    seen: set[int] = set()

    def visit(obj: Any, label: str) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        parts[label] = sha256(_source(obj))
        code = getattr(obj, "__code__", None)
        scope = getattr(obj, "__globals__", {})
        if code is None and inspect.isclass(obj):
            for member in vars(obj).values():
                if inspect.isfunction(member):
                    visit(member, f"{label}.{member.__name__}")
            return
        if code is None:
            return
        for name in sorted(_names(code)):
            packages.add(name.split(".")[0])
            target = scope.get(name.split(".")[0])
            if target is None:
                continue
            inner = getattr(target, "fn", None)  # a @step used as a helper
            if callable(inner) and hasattr(inner, "__code__"):
                target = inner
            if isinstance(target, types.ModuleType):
                if _is_local_file(getattr(target, "__file__", None)):
                    parts[f"module {target.__name__}"] = _file_hash(str(target.__file__))
                else:
                    packages.add(target.__name__.split(".")[0])
            elif inspect.isfunction(target) or inspect.isclass(target):
                if _is_local(target):
                    visit(target, f"{target.__module__}.{target.__qualname__}")
                else:
                    packages.add((getattr(target, "__module__", "") or "").split(".")[0])
            elif isinstance(target, _SIMPLE) or (
                isinstance(target, tuple | frozenset)
                and all(isinstance(v, _SIMPLE) for v in target)
            ):
                parts[f"constant {name}"] = sha256(repr(target))
            elif isinstance(target, dict | list | tuple | set | frozenset):  # a config table
                items = sorted(target, key=repr) if isinstance(target, set | frozenset) else target
                parts[f"constant {name}"] = value_hash(items)

    visit(fn, f"{fn.__module__}.{fn.__qualname__}")
    closure = getattr(fn, "__closure__", None) or ()
    for i, cell in enumerate(closure):
        try:
            parts[f"closure {i}"] = value_hash(cell.cell_contents)
        except ValueError:
            continue
    dists = _distributions()
    env = {"python": platform.python_version(), "shipyard": __version__}
    for package in sorted(packages):
        for dist in dists.get(package, ()):
            try:
                env[dist] = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                continue
    code_hash = sha256(json.dumps(parts, sort_keys=True))
    result = (code_hash, parts, env)
    if not interactive:
        with _lock:
            _code_cache[fn] = result
    return result


# ---------------------------------------------------------------------------- external inputs


@dataclass(frozen=True)
class Query:
    """An external input that is a database query: its result rows enter the cache key.

    ``Query("sqlite:///warehouse.db", "SELECT max(updated_at) FROM orders")``: choose a cheap
    query that changes when the data does (a max timestamp, a row count)."""

    url: str
    sql: str

    def __str__(self) -> str:
        return f"query {self.sql!r} on {self.url}"


def external_fingerprint(read: Any, *, base: Path | None = None) -> tuple[str, str]:
    """``(label, fingerprint)`` of one declared external input."""
    if isinstance(read, Query):
        return str(read), _query_fingerprint(read)
    if callable(read):
        name = getattr(read, "__qualname__", repr(read))
        return f"callable {name}", value_hash(read())
    text = os.fspath(read)
    if text.startswith(("http://", "https://")):
        return text, _url_fingerprint(text)
    root = base or Path.cwd()
    path = Path(text) if os.path.isabs(text) else root / text
    if glob.has_magic(text):
        matches = sorted(glob.glob(str(path), recursive=True))
        listing = {os.path.relpath(m, root): _file_hash(m) for m in matches if os.path.isfile(m)}
        return text, sha256(json.dumps(listing, sort_keys=True))
    if path.is_dir():
        listing = {
            p.relative_to(path).as_posix(): _file_hash(str(p))
            for p in sorted(path.rglob("*"))
            if p.is_file()
        }
        return text, sha256(json.dumps(listing, sort_keys=True))
    if path.is_file():
        return text, _file_hash(str(path))
    return text, "missing"


def _url_fingerprint(url: str) -> str:
    import httpx

    try:
        response = httpx.head(url, follow_redirects=True, timeout=10)
    except httpx.HTTPError as exc:
        return f"unreachable {type(exc).__name__} {os.urandom(8).hex()}"  # never a hit
    marks = {
        k: response.headers[k]
        for k in ("etag", "last-modified", "content-length")
        if k in response.headers
    }
    if not marks:  # nothing that says whether it changed: re-read it every time
        return f"unversioned {os.urandom(8).hex()}"
    return sha256(json.dumps({"status": response.status_code, **marks}, sort_keys=True))


def _query_fingerprint(query: Query) -> str:
    import sqlalchemy as sa

    engine = sa.create_engine(query.url)
    try:
        with engine.connect() as conn:
            rows = [list(map(str, r)) for r in conn.execute(sa.text(query.sql))]
    finally:
        engine.dispose()
    return sha256(json.dumps(rows))
