"""MLflow's search grammar: filter strings and order-by clauses, parsed into small values.

The parser knows nothing of SQL; :mod:`shipyard.store.sql` compiles the result. Errors are
:class:`~shipyard.errors.InvalidFilter` whose message quotes the filter, points at the offending
token (``details = {"filter": ..., "position": int, "token": str}``) and says what would be valid.

Grammar (a conjunction; no OR, no parentheses, no NOT, as in MLflow)::

    filter      := comparison ( AND comparison )*
    comparison  := identifier op value
                 | identifier IS [NOT] NULL
                 | identifier [NOT] IN '(' string ( ',' string )* ')'
    identifier  := [prefix '.'] key      key: bare word, `backticked` or "double quoted"
    op          := = | != | <> | > | >= | < | <= | LIKE | ILIKE
    value       := number | 'single quoted' | "double quoted"

Prefixes for runs: ``metrics|metric``, ``params|param|parameter|parameters``, ``tags|tag``,
``attributes|attribute|attr|run`` (or none), ``datasets|dataset``.

Details of the grammar as Shipyard reads it:

* Keywords (``AND``, ``LIKE``, ``ILIKE``, ``IN``, ``NOT``, ``IS``, ``NULL``, ``ASC``, ``DESC``) and
  prefixes are case-insensitive; attribute names are not (``run_name``, not ``Run_Name``).
* A bare key after a prefix may contain dots (``tags.mlflow.runName``); any other key is quoted
  with backticks or double quotes, where a doubled quote stands for one (```a``b``` is ``a`b``).
  String values take single or double quotes, with the same doubling (``'it''s'``).
* Numbers may carry a sign, a fraction and an exponent (``-1``, ``.5``, ``2.5e-3``) and must be
  finite.
* Experiments accept the prefixes ``attributes|attribute|attr`` (or none) and ``tags|tag``.
* ``status = 'finished'`` is read as ``'FINISHED'``: ``=`` and ``!=`` on a run's status take one of
  the run states, in any case.

Order-by clauses are ``identifier [ASC|DESC]``, one key per clause; runs order by metrics,
params, tags and attributes, experiments by their four attributes. Order-by errors carry
``details = {"order_by": clause, "index": int, "position": int, "token": str}``.

Parsed results are cached per filter string, so a repeated search costs a dictionary lookup.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar, Literal, NoReturn

from shipyard.errors import InvalidFilter

__all__ = [
    "Comparison",
    "Kind",
    "Op",
    "OrderKey",
    "parse_experiment_filter",
    "parse_experiment_order_by",
    "parse_logged_model_filter",
    "parse_logged_model_order_by",
    "parse_model_version_filter",
    "parse_model_version_order_by",
    "parse_registered_model_filter",
    "parse_registered_model_order_by",
    "parse_run_filter",
    "parse_run_order_by",
]

Kind = Literal["metric", "param", "tag", "attribute", "dataset"]
Op = Literal[
    "=", "!=", ">", ">=", "<", "<=", "LIKE", "ILIKE", "IN", "NOT IN", "IS NULL", "IS NOT NULL"
]


@dataclass(frozen=True, slots=True)
class Comparison:
    """One clause, e.g. ``metrics.acc > 0.9`` -> ``Comparison("metric", "acc", ">", 0.9)``.

    ``value`` is a ``float`` for metrics and numeric attributes, a ``str`` for string
    comparisons, a ``tuple[str, ...]`` for ``IN``/``NOT IN`` and ``None`` for ``IS [NOT] NULL``.
    Attribute keys are canonical (``run_name``, ``start_time``, ``end_time``, ``status``,
    ``user_id``, ``run_id``, ``artifact_uri``, ``lifecycle_stage`` for runs; ``name``,
    ``experiment_id``, ``creation_time``, ``last_update_time`` for experiments).
    ``!=`` is normalised from ``<>``; ``LIKE``/``ILIKE`` are upper case.
    """

    kind: Kind
    key: str
    op: Op
    value: float | str | tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class OrderKey:
    """One order-by term, e.g. ``metrics.acc DESC`` -> ``OrderKey("metric", "acc", False)``."""

    kind: Kind
    key: str
    ascending: bool = True


def parse_run_filter(filter_string: str) -> list[Comparison]:
    """Parse a ``search_runs`` filter; an empty or blank filter gives ``[]``.

    >>> parse_run_filter("metrics.acc > 0.9 and params.model = 'rf'")[1]
    Comparison(kind='param', key='model', op='=', value='rf')
    """
    return _parse_filter(_text(filter_string), "run")


def parse_experiment_filter(filter_string: str) -> list[Comparison]:
    """Parse a ``search_experiments`` filter; an empty or blank filter gives ``[]``.

    >>> parse_experiment_filter("name LIKE 'fraud-%'")
    [Comparison(kind='attribute', key='name', op='LIKE', value='fraud-%')]
    """
    return _parse_filter(_text(filter_string), "experiment")


def parse_run_order_by(order_by: Sequence[str] | None) -> list[OrderKey]:
    """Parse ``search_runs`` order-by clauses (``None`` or ``[]`` gives ``[]``).

    A single string is read as one clause. A key may appear only once.

    >>> parse_run_order_by(["metrics.acc DESC", "created"])[1]
    OrderKey(kind='attribute', key='start_time', ascending=True)
    """
    return _parse_order_by(order_by, "run")


def parse_experiment_order_by(order_by: Sequence[str] | None) -> list[OrderKey]:
    """Parse ``search_experiments`` order-by clauses (``None`` or ``[]`` gives ``[]``).

    >>> parse_experiment_order_by(["name asc"])
    [OrderKey(kind='attribute', key='name', ascending=True)]
    """
    return _parse_order_by(order_by, "experiment")


def parse_registered_model_filter(filter_string: str) -> list[Comparison]:
    """Parse a ``search_registered_models`` filter (``name LIKE 'churn%'``, ``tags.team = 'x'``).

    >>> parse_registered_model_filter("name = 'churn'")
    [Comparison(kind='attribute', key='name', op='=', value='churn')]
    """
    return _parse_filter(_text(filter_string), "registered model")


def parse_registered_model_order_by(order_by: Sequence[str] | None) -> list[OrderKey]:
    """Parse ``search_registered_models`` order-by clauses (``timestamp`` is
    ``last_updated_timestamp``)."""
    return _parse_order_by(order_by, "registered model")


def parse_model_version_filter(filter_string: str) -> list[Comparison]:
    """Parse a ``search_model_versions`` filter (``name = 'churn' AND version_number > 2``).

    >>> parse_model_version_filter("run_id IN ('a', 'b')")
    [Comparison(kind='attribute', key='run_id', op='IN', value=('a', 'b'))]
    """
    return _parse_filter(_text(filter_string), "model version")


def parse_model_version_order_by(order_by: Sequence[str] | None) -> list[OrderKey]:
    """Parse ``search_model_versions`` order-by clauses (``version_number DESC``...)."""
    return _parse_order_by(order_by, "model version")


def parse_logged_model_filter(filter_string: str) -> list[Comparison]:
    """Parse a ``search_logged_models`` filter (``name = 'model' AND metrics.acc > 0.9``).

    >>> parse_logged_model_filter("status = 'logged_model_ready'")
    [Comparison(kind='attribute', key='status', op='=', value='LOGGED_MODEL_READY')]
    """
    return _parse_filter(_text(filter_string), "logged model")


def parse_logged_model_order_by(order_by: Sequence[str] | None) -> list[OrderKey]:
    """Parse ``search_logged_models`` order-by clauses (``creation_timestamp DESC``...)."""
    return _parse_order_by(order_by, "logged model")


# ------------------------------------------------------------------------------ what is valid

_Entity = Literal["run", "experiment", "registered model", "model version", "logged model"]

_NUMERIC_OPS: tuple[Op, ...] = ("=", "!=", ">", ">=", "<", "<=")
_STRING_OPS: tuple[Op, ...] = ("=", "!=", "LIKE", "ILIKE")
_LIST_OPS: tuple[Op, ...] = ("IN", "NOT IN")
_NULL_OPS: tuple[Op, ...] = ("IS NULL", "IS NOT NULL")
_RUN_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")


@dataclass(frozen=True, slots=True)
class _Field:
    """What one key accepts: its canonical name, value type, operators and allowed values."""

    key: str
    numeric: bool
    ops: tuple[Op, ...]
    note: str = ""
    choices: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _KindSpec:
    """One kind of key: ``free`` accepts any key (metrics, params, tags); else ``keys`` lists them."""

    kind: Kind
    prefix: str
    free: _Field | None
    keys: Mapping[str, _Field]
    orderable: bool


@dataclass(frozen=True, slots=True)
class _Schema:
    """The searchable keys of one entity (runs or experiments)."""

    entity: _Entity
    prefixes: Mapping[str, Kind]
    kinds: Mapping[Kind, _KindSpec]
    order_help: str

    @property
    def prefix_help(self) -> str:
        """``valid prefixes are metrics (metric), ...``, for unknown-prefix errors."""
        groups: dict[Kind, list[str]] = {}
        for alias, kind in self.prefixes.items():
            groups.setdefault(kind, []).append(alias)
        listed = [
            main + (f" ({', '.join(others)})" if others else "")
            for main, *others in groups.values()
        ]
        return (
            f"valid prefixes for {self.entity}s are {', '.join(listed[:-1])} and {listed[-1]}; "
            "a key without a prefix is an attribute"
        )


def _prefixes(*groups: tuple[Kind, str]) -> dict[str, Kind]:
    """``("metric", "metrics metric")`` -> ``{"metrics": "metric", "metric": "metric"}``."""
    return {alias: kind for kind, aliases in groups for alias in aliases.split()}


def _fields(*fields: _Field, aliases: Mapping[str, str] | None = None) -> dict[str, _Field]:
    by_key = {f.key: f for f in fields}
    return by_key | {alias: by_key[key] for alias, key in (aliases or {}).items()}


_RUN_ATTRIBUTE_NOTE = "IN and NOT IN work only for run_id"

_RUN_SCHEMA = _Schema(
    entity="run",
    prefixes=_prefixes(
        ("metric", "metrics metric"),
        ("param", "params param parameter parameters"),
        ("tag", "tags tag"),
        ("attribute", "attributes attribute attr run"),
        ("dataset", "datasets dataset"),
    ),
    kinds={
        "metric": _KindSpec("metric", "metrics", _Field("", True, _NUMERIC_OPS), {}, True),
        "param": _KindSpec("param", "params", _Field("", False, _STRING_OPS + _NULL_OPS), {}, True),
        "tag": _KindSpec("tag", "tags", _Field("", False, _STRING_OPS + _NULL_OPS), {}, True),
        "attribute": _KindSpec(
            "attribute",
            "attributes",
            None,
            _fields(
                _Field("run_id", False, _STRING_OPS + _LIST_OPS),
                _Field("run_name", False, _STRING_OPS, _RUN_ATTRIBUTE_NOTE),
                _Field("status", False, _STRING_OPS, _RUN_ATTRIBUTE_NOTE, _RUN_STATUSES),
                _Field("user_id", False, _STRING_OPS, _RUN_ATTRIBUTE_NOTE),
                _Field("artifact_uri", False, _STRING_OPS, _RUN_ATTRIBUTE_NOTE),
                _Field("lifecycle_stage", False, _STRING_OPS, _RUN_ATTRIBUTE_NOTE),
                _Field("start_time", True, _NUMERIC_OPS),
                _Field("end_time", True, _NUMERIC_OPS),
                aliases={
                    "run name": "run_name",
                    "Run name": "run_name",
                    "Run Name": "run_name",
                    "created": "start_time",
                    "Created": "start_time",
                },
            ),
            True,
        ),
        "dataset": _KindSpec(
            "dataset",
            "datasets",
            None,
            _fields(
                *(_Field(k, False, _STRING_OPS + _LIST_OPS) for k in ("name", "digest", "context"))
            ),
            False,
        ),
    },
    order_help="runs order by metrics, params, tags and attributes",
)

_EXPERIMENT_SCHEMA = _Schema(
    entity="experiment",
    prefixes=_prefixes(("attribute", "attributes attribute attr"), ("tag", "tags tag")),
    kinds={
        "tag": _KindSpec("tag", "tags", _Field("", False, _STRING_OPS + _NULL_OPS), {}, False),
        "attribute": _KindSpec(
            "attribute",
            "attributes",
            None,
            _fields(
                _Field("name", False, _STRING_OPS),
                _Field("experiment_id", False, ("=", "!=", *_LIST_OPS)),
                _Field("creation_time", True, _NUMERIC_OPS),
                _Field("last_update_time", True, _NUMERIC_OPS),
            ),
            True,
        ),
    },
    order_help="experiments order by name, experiment_id, creation_time and last_update_time",
)

_REGISTRY_TAGS = _KindSpec("tag", "tags", _Field("", False, _STRING_OPS + _NULL_OPS), {}, False)
_REGISTRY_TIMES = (
    _Field("creation_timestamp", True, _NUMERIC_OPS),
    _Field("last_updated_timestamp", True, _NUMERIC_OPS),
)

_REGISTERED_MODEL_SCHEMA = _Schema(
    entity="registered model",
    prefixes=_prefixes(("attribute", "attributes attribute attr"), ("tag", "tags tag")),
    kinds={
        "tag": _REGISTRY_TAGS,
        "attribute": _KindSpec(
            "attribute",
            "attributes",
            None,
            _fields(
                _Field("name", False, _STRING_OPS + _LIST_OPS),
                *_REGISTRY_TIMES,
                aliases={"timestamp": "last_updated_timestamp"},
            ),
            True,
        ),
    },
    order_help="registered models order by name, creation_timestamp and last_updated_timestamp",
)

_MODEL_VERSION_SCHEMA = _Schema(
    entity="model version",
    prefixes=_prefixes(("attribute", "attributes attribute attr"), ("tag", "tags tag")),
    kinds={
        "tag": _REGISTRY_TAGS,
        "attribute": _KindSpec(
            "attribute",
            "attributes",
            None,
            _fields(
                _Field("name", False, _STRING_OPS + _LIST_OPS),
                _Field("version_number", True, _NUMERIC_OPS),
                _Field("run_id", False, _STRING_OPS + _LIST_OPS),
                _Field("source_path", False, _STRING_OPS),
                _Field("current_stage", False, _STRING_OPS + _LIST_OPS),
                _Field("status", False, _STRING_OPS),
                _Field("user_id", False, _STRING_OPS),
                _Field("storage_owner", False, _STRING_OPS + _LIST_OPS),
                *_REGISTRY_TIMES,
                aliases={"version": "version_number", "source": "source_path"},
            ),
            True,
        ),
    },
    order_help="model versions order by name, version_number, creation_timestamp and "
    "last_updated_timestamp",
)

_LOGGED_MODEL_STATUSES = (
    "LOGGED_MODEL_PENDING",
    "LOGGED_MODEL_READY",
    "LOGGED_MODEL_UPLOAD_FAILED",
)
_LOGGED_MODEL_STRINGS = _STRING_OPS + _LIST_OPS

_LOGGED_MODEL_SCHEMA = _Schema(
    entity="logged model",
    prefixes=_prefixes(
        ("metric", "metrics metric"),
        ("param", "params param parameter parameters"),
        ("tag", "tags tag"),
        ("attribute", "attributes attribute attr"),
    ),
    kinds={
        "metric": _KindSpec("metric", "metrics", _Field("", True, _NUMERIC_OPS), {}, True),
        "param": _KindSpec(
            "param", "params", _Field("", False, _STRING_OPS + _NULL_OPS), {}, False
        ),
        "tag": _KindSpec("tag", "tags", _Field("", False, _STRING_OPS + _NULL_OPS), {}, False),
        "attribute": _KindSpec(
            "attribute",
            "attributes",
            None,
            _fields(
                _Field("name", False, _LOGGED_MODEL_STRINGS),
                _Field("model_id", False, _LOGGED_MODEL_STRINGS),
                _Field("model_type", False, _LOGGED_MODEL_STRINGS),
                _Field("status", False, _STRING_OPS, "", _LOGGED_MODEL_STATUSES),
                _Field("source_run_id", False, _LOGGED_MODEL_STRINGS),
                _Field("creation_timestamp", True, _NUMERIC_OPS),
                _Field("last_updated_timestamp", True, _NUMERIC_OPS),
                aliases={
                    "creation_time": "creation_timestamp",
                    "last_updated_time": "last_updated_timestamp",
                },
            ),
            True,
        ),
    },
    order_help="logged models order by metrics and by the attributes name, model_id, model_type, "
    "status, source_run_id, creation_timestamp and last_updated_timestamp",
)

_SCHEMAS: dict[_Entity, _Schema] = {
    "run": _RUN_SCHEMA,
    "experiment": _EXPERIMENT_SCHEMA,
    "registered model": _REGISTERED_MODEL_SCHEMA,
    "model version": _MODEL_VERSION_SCHEMA,
    "logged model": _LOGGED_MODEL_SCHEMA,
}

_CONJUNCTION = "Shipyard filters are a conjunction of clauses joined by AND"
_CLAUSE_HELP = "a clause is <key> <operator> <value>, e.g. metrics.acc > 0.9 or params.lr = '0.01'"

# ------------------------------------------------------------------------------ the scanner

_SPACE = re.compile(r"\s*")
_WORD = re.compile(r"[^\W\d]\w*")
_BARE_KEY = re.compile(r"[\w.]+")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_NUMBER_TAIL = re.compile(r"[\w.]*")
_OPERATOR = re.compile(r"!=|<>|>=|<=|==|=|>|<")
_QUOTES = "'\"`"
_SYMBOL_OPS: dict[str, Op] = {"=": "=", "!=": "!=", "<>": "!=", ">": ">", ">=": ">=", "<": "<", "<=": "<="}  # fmt: skip
_WORD_OPS: dict[str, Op] = {"LIKE": "LIKE", "ILIKE": "ILIKE", "IN": "IN"}


def _text(value: object) -> str:
    """The filter as a string: ``None`` reads as empty, anything else not a string is refused."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidFilter(
            f"Invalid filter {value!r}: a filter is a string, got {type(value).__name__}; "
            f'pass e.g. "metrics.acc > 0.9".',
            details={"filter": repr(value), "position": 0, "token": ""},
        )
    return value


def _closing_quote(text: str, start: int) -> int:
    """Index just past the quoted token opening at ``start``, or ``-1`` if it never closes."""
    quote = text[start]
    i = start + 1
    while True:
        j = text.find(quote, i)
        if j < 0:
            return -1
        if text.startswith(quote, j + 1):
            i = j + 2
            continue
        return j + 1


def _token_at(text: str, pos: int) -> str:
    """The token starting at ``pos``, as written (``""`` at the end of the text)."""
    if pos >= len(text):
        return ""
    if text[pos] in _QUOTES:
        end = _closing_quote(text, pos)
        return text[pos:] if end < 0 else text[pos:end]
    m = _NUMBER.match(text, pos)
    if m:
        return text[pos : _end(_NUMBER_TAIL, text, m.end())]
    m = _BARE_KEY.match(text, pos) or _OPERATOR.match(text, pos)
    return m.group() if m else text[pos]


def _end(pattern: re.Pattern[str], text: str, pos: int) -> int:
    """Where a pattern that matches the empty string (``\\s*``, ``[\\w.]*``) stops."""
    m = pattern.match(text, pos)
    return m.end() if m else pos


def _ident(kind: Kind, key: str, schema: _Schema) -> str:
    """How a user would write this key, for examples in messages (``tags.`my tag```)."""
    written = key if _BARE_KEY.fullmatch(key) and not key[0].isdigit() else _quote_key(key)
    return written if kind == "attribute" else f"{schema.kinds[kind].prefix}.{written}"


def _quote_key(key: str) -> str:
    return "`" + key.replace("`", "``") + "`"


def _ops(ops: Sequence[str]) -> str:
    return " ".join(ops)


class _Parser:
    """A cursor over one filter or order-by clause; every method advances ``pos``."""

    __slots__ = ("details", "label", "pos", "schema", "text")
    ordering: ClassVar[bool] = False

    def __init__(self, text: str, schema: _Schema, label: str, details: dict[str, object]) -> None:
        self.text = text
        self.schema = schema
        self.label = label
        self.details = details
        self.pos = 0

    # -------------------------------------------------------------- basics

    def fail(
        self, pos: int, hint: str, problem: str | None = None, token: str | None = None
    ) -> NoReturn:
        """Raise :class:`InvalidFilter` about the token at ``pos``, ending with ``hint``."""
        tok = _token_at(self.text, pos) if token is None else token
        if problem is None:
            problem = f"unexpected {tok!r}" if tok else f"unexpected end of {self.label}"
        raise InvalidFilter(
            f'Invalid {self.label} "{self.text}": {problem} at position {pos}; {hint}.',
            details={**self.details, "position": pos, "token": tok},
        )

    def skip_space(self) -> None:
        self.pos = _end(_SPACE, self.text, self.pos)

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek_word(self) -> str:
        """The keyword-like word at the cursor, upper-cased (``""`` if none); doesn't advance."""
        m = _WORD.match(self.text, self.pos)
        return m.group().upper() if m else ""

    def take_word(self, word: str) -> bool:
        """Consume ``word`` (case-insensitive, whole word) if it is next."""
        m = _WORD.match(self.text, self.pos)
        if m and m.group().upper() == word:
            self.pos = m.end()
            return True
        return False

    def quoted(self, what: str) -> str:
        """Read a quoted token at the cursor (any quote character) and return its content."""
        start, text = self.pos, self.text
        end = _closing_quote(text, start)
        if end < 0:
            q = text[start]
            self.fail(
                start,
                f"close it with {q} (double it to put one inside, as in {q}a{q}{q}b{q})",
                problem=f"unterminated {what}",
                token=text[start:],
            )
        self.pos = end
        quote = text[start]
        return text[start + 1 : end - 1].replace(quote + quote, quote)

    # -------------------------------------------------------------- identifiers

    def identifier(self, where: str) -> tuple[Kind, _Field, str, int]:
        """Read ``[prefix.]key``; returns the kind, its field, the key and where it started."""
        schema, text, start = self.schema, self.text, self.pos
        if start < len(text) and text[start] in '"`':
            key = self.quoted("quoted key")
            return (*self.resolve("attribute", key, start), start)
        m = _WORD.match(text, start)
        if m is None:
            if start < len(text) and text[start] == "'":
                self.fail(
                    start,
                    "single quotes are for values; quote a key with backticks or double quotes, "
                    "as in tags.`my tag`",
                )
            self.fail(start, where)
        word = m.group()
        self.pos = m.end()
        if not text.startswith(".", self.pos):
            if word.lower() in schema.prefixes:
                self.fail(
                    self.pos,
                    f"expected '.' and a key after the prefix {word!r}, as in {word}.my_key",
                )
            return (*self.resolve("attribute", word, start), start)
        kind = schema.prefixes.get(word.lower())
        if kind is None:
            hint = schema.prefix_help
            if word.lower() in _RUN_SCHEMA.prefixes:
                hint += f" ({word}.<key> applies to runs, not {schema.entity}s)"
            self.fail(start, hint, problem=f"unknown prefix {word!r}", token=word)
        self.pos += 1
        key_start = self.pos
        if key_start < len(text) and text[key_start] in '"`':
            key = self.quoted("quoted key")
        else:
            km = _BARE_KEY.match(text, key_start)
            if km is None:
                self.fail(
                    key_start,
                    f"expected a key after '{word}.'; quote keys with spaces or symbols in "
                    f"backticks, as in {word}.`my key`",
                )
            key = km.group()
            self.pos = km.end()
        if not key:
            self.fail(key_start, "a key cannot be empty", problem="empty key")
        return (*self.resolve(kind, key, key_start), start)

    def resolve(self, kind: Kind, key: str, pos: int) -> tuple[Kind, _Field, str]:
        """Check ``key`` (written at ``pos``) exists for ``kind``; return its field and canonical key."""
        spec = self.schema.kinds[kind]
        if spec.free is not None:
            return kind, spec.free, key
        field = spec.keys.get(key)
        if field is None:
            self.fail(pos, self.valid_keys(spec, key), problem=self.unknown_key(spec, key))
        return kind, field, field.key

    def unknown_key(self, spec: _KindSpec, key: str) -> str:
        if spec.kind == "attribute":
            return f"unknown {self.schema.entity} attribute {key!r}"
        return f"unknown {spec.prefix} key {key!r}"

    def valid_keys(self, spec: _KindSpec, key: str) -> str:
        """What to write instead of an unknown ``key``: a close match and the full list."""
        canonical = list(dict.fromkeys(f.key for f in spec.keys.values()))
        aliases = [_quote_key(a) if " " in a else a for a, f in spec.keys.items() if a != f.key]
        guess = difflib.get_close_matches(key, list(spec.keys), n=1)
        hint = f"did you mean {guess[0]!r}? " if guess else ""
        if spec.kind == "attribute":
            hint += f"valid {self.schema.entity} attributes are "
        else:
            hint += f"valid {spec.prefix} keys are "
        hint += ", ".join(canonical)
        if aliases:
            hint += " (aliases: " + ", ".join(aliases) + ")"
        if spec.kind == "attribute":
            others = [
                f"{s.prefix}.<key>"
                for s in self.schema.kinds.values()
                if s.kind != "attribute" and (s.orderable or not self.ordering)
            ]
            if others:
                hint += "; other keys take a prefix: " + ", ".join(others)
        return hint


# ------------------------------------------------------------------------------ filters


class _FilterParser(_Parser):
    """Reads ``comparison (AND comparison)*``."""

    __slots__ = ()

    def parse(self) -> tuple[Comparison, ...]:
        """The whole filter's clauses, in order (empty for a blank filter)."""
        self.skip_space()
        if self.at_end():
            return ()
        clauses: list[Comparison] = []
        while True:
            clauses.append(self.comparison())
            self.skip_space()
            if self.at_end():
                return tuple(clauses)
            and_pos = self.pos
            if not self.take_word("AND"):
                self.reject_disjunction(
                    "expected AND or the end of the filter after a complete clause"
                )
            self.skip_space()
            if self.at_end():
                self.fail(
                    and_pos,
                    f"expected a clause after AND; {_CLAUSE_HELP}",
                    problem="dangling 'AND'",
                    token=self.text[and_pos : and_pos + 3],
                )

    def reject_disjunction(self, otherwise: str) -> NoReturn:
        """Fail at the cursor, explaining OR, NOT and parentheses if that is what is there."""
        word = self.peek_word()
        char = self.text[self.pos] if not self.at_end() else ""
        if word == "OR":
            self.fail(self.pos, f"{_CONJUNCTION}; OR is not supported: run two searches")
        if word == "NOT":
            self.fail(
                self.pos,
                f"{_CONJUNCTION}; NOT is supported only in NOT IN and IS NOT NULL: "
                "negate the operator instead (!=, NOT IN, IS NOT NULL)",
            )
        if char in ("(", ")"):
            self.fail(
                self.pos,
                f"{_CONJUNCTION}; parentheses are supported only around IN lists: remove them",
            )
        self.fail(self.pos, otherwise)

    def comparison(self) -> Comparison:
        """Read one ``key op value`` clause and check the operator and value suit the key."""
        if self.peek_word() in ("AND", "OR", "NOT") or self.text[self.pos] in "()":
            self.reject_disjunction(f"expected a clause; {_CLAUSE_HELP}")
        kind, field, key, _ = self.identifier(f"expected a key; {_CLAUSE_HELP}")
        self.skip_space()
        shown = _ident(kind, key, self.schema)
        op_pos = self.pos
        op = self.operator(field, shown)
        what = shown if kind in ("attribute", "dataset") else self.schema.kinds[kind].prefix
        if op not in field.ops:
            allowed = f"allowed: {_ops(field.ops)}"
            if field.note:
                allowed += f" ({field.note})"
            self.fail(
                op_pos,
                allowed,
                problem=f"operator {op!r} is not allowed for {what}",
                token=self.text[op_pos : self.pos],
            )
        if op in _NULL_OPS:
            return Comparison(kind, key, op, None)
        subject = f"{what} are strings" if kind in ("param", "tag") else f"{what} is a string"
        self.skip_space()
        if op in _LIST_OPS:
            return Comparison(kind, key, op, self.string_list(subject, shown, op))
        if field.numeric:
            return Comparison(kind, key, op, self.number(kind, shown, op))
        value_pos = self.pos
        value = self.string(subject, (f"{shown} {op} ", ""))
        if field.choices and op in ("=", "!="):
            value = self.choice(field, value, value_pos)
        return Comparison(kind, key, op, value)

    def operator(self, field: _Field, shown: str) -> Op:
        """Read one operator; ``<>`` becomes ``!=``, keywords are upper-cased."""
        text, start = self.text, self.pos
        m = _OPERATOR.match(text, start)
        if m:
            if m.group() == "==":
                self.fail(start, "use a single '=' to test equality")
            self.pos = m.end()
            return _SYMBOL_OPS[m.group()]
        word = self.peek_word()
        if word in _WORD_OPS:
            self.take_word(word)
            return _WORD_OPS[word]
        if word == "NOT":
            self.take_word(word)
            self.skip_space()
            if not self.take_word("IN"):
                self.fail(
                    self.pos,
                    f"expected IN after NOT; {_CONJUNCTION}, and NOT is supported only in "
                    "NOT IN and IS NOT NULL",
                )
            return "NOT IN"
        if word == "IS":
            self.take_word(word)
            self.skip_space()
            negated = self.take_word("NOT")
            self.skip_space()
            if not self.take_word("NULL"):
                self.fail(self.pos, "expected NULL or NOT NULL after IS")
            return "IS NOT NULL" if negated else "IS NULL"
        self.fail(start, f"expected an operator after {shown} (allowed: {_ops(field.ops)})")

    def number(self, kind: Kind, shown: str, op: str) -> float:
        """Read a numeric literal for a metric or a numeric attribute."""
        text, start = self.text, self.pos
        m = _NUMBER.match(text, start)
        if m is None:
            if start < len(text) and text[start] in "'\"":
                end = _closing_quote(text, start)
                literal = text[start:] if end < 0 else text[start:end]
                inner = literal[1:-1].strip()
                example = inner if _NUMBER.fullmatch(inner) else "0.9"
                if kind == "metric":
                    what = "metrics compare with numbers"
                else:
                    what = f"{shown} is a number (milliseconds since the epoch)"
                    example = inner if _NUMBER.fullmatch(inner) else "1700000000000"
                self.fail(
                    start,
                    f"{what}: write a number without quotes, as in {shown} {op} {example}",
                    problem=f"{shown} compared to a string",
                    token=literal,
                )
            self.fail(
                start,
                f"expected a number after {op!r} (comparison operators: {_ops(_NUMERIC_OPS)})",
            )
        tail = _end(_NUMBER_TAIL, text, m.end())
        if tail > m.end():
            self.fail(
                start,
                "a number is digits with an optional sign, fraction and exponent, as in -1.5e3",
                problem=f"malformed number {text[start:tail]!r}",
            )
        value = float(m.group())
        if not math.isfinite(value):
            self.fail(
                start,
                "use a number within the range of a 64-bit float",
                problem=f"number {m.group()!r} out of range",
            )
        self.pos = m.end()
        return value

    def string(self, subject: str, example: tuple[str, str]) -> str:
        """Read a quoted string value; ``example`` is the clause around the value, for hints."""
        before, after = example
        text, start = self.text, self.pos
        if start < len(text) and text[start] in "'\"":
            return self.quoted("string")
        m = _NUMBER.match(text, start)
        if m:
            literal = text[start : _end(_NUMBER_TAIL, text, m.end())]
            self.fail(
                start,
                f"{subject}: quote the number, as in {before}'{literal}'{after}",
                problem=f"unquoted number {literal!r}",
                token=literal,
            )
        self.fail(
            start,
            f"expected a quoted string (single or double quotes), as in {before}'value'{after}",
        )

    def string_list(self, subject: str, shown: str, op: str) -> tuple[str, ...]:
        """Read ``( string [, string]* )``."""
        example = f"{shown} {op} ('a', 'b')"
        if self.at_end() or self.text[self.pos] != "(":
            self.fail(self.pos, f"expected '(' after {op}, as in {example}")
        self.pos += 1
        self.skip_space()
        if not self.at_end() and self.text[self.pos] == ")":
            self.fail(
                self.pos,
                f"list at least one quoted value, as in {example}",
                problem=f"empty {op} list",
            )
        values: list[str] = []
        while True:
            values.append(self.string(subject, (f"{shown} {op} (", ", ...)")))
            self.skip_space()
            if self.at_end() or self.text[self.pos] not in ",)":
                self.fail(self.pos, f"expected ',' or ')' in the {op} list, as in {example}")
            self.pos += 1
            if self.text[self.pos - 1] == ")":
                return tuple(values)
            self.skip_space()

    def choice(self, field: _Field, value: str, pos: int) -> str:
        """Upper-case ``value`` and check it is one of the field's ``choices``."""
        upper = value.upper()
        if upper not in field.choices:
            self.fail(
                pos,
                f"valid values for {field.key} are {', '.join(field.choices)}",
                problem=f"unknown {field.key} {value!r}",
                token=self.text[pos : self.pos],
            )
        return upper


_CACHED_LENGTH = 4096  # longer filters are parsed afresh rather than held in the cache


def _parse_filter(text: str, entity: _Entity) -> list[Comparison]:
    if len(text) > _CACHED_LENGTH:
        return list(_parse_filter_uncached(text, entity))
    return list(_parse_filter_cached(text, entity))


def _parse_filter_uncached(text: str, entity: _Entity) -> tuple[Comparison, ...]:
    return _FilterParser(text, _SCHEMAS[entity], "filter", {"filter": text}).parse()


_parse_filter_cached = lru_cache(maxsize=512)(_parse_filter_uncached)


# ------------------------------------------------------------------------------ order by


class _OrderParser(_Parser):
    """Reads ``identifier [ASC|DESC]``."""

    __slots__ = ()
    ordering = True

    def parse(self) -> OrderKey:
        """The clause's key and direction (ascending unless DESC)."""
        self.skip_space()
        if self.at_end():
            self.fail(
                self.pos,
                "an order_by clause is <key> [ASC|DESC], as in metrics.acc DESC",
                problem="empty order_by clause",
            )
        kind, _, key, start = self.identifier(
            "expected a key, as in metrics.acc DESC or start_time"
        )
        spec = self.schema.kinds[kind]
        if not spec.orderable:
            self.fail(
                start,
                self.schema.order_help,
                problem=f"{spec.prefix} cannot be used in order_by",
                token=self.text[start : self.pos],
            )
        self.skip_space()
        ascending = True
        if self.take_word("DESC"):
            ascending = False
        elif not self.take_word("ASC") and not self.at_end() and self.text[self.pos] != ",":
            self.fail(self.pos, f"expected ASC or DESC after {_ident(kind, key, self.schema)}")
        self.skip_space()
        if not self.at_end():
            if self.text[self.pos] == ",":
                self.fail(self.pos, "give each key as its own order_by entry")
            self.fail(
                self.pos, "expected the end of the clause; an order_by clause is <key> [ASC|DESC]"
            )
        return OrderKey(kind, key, ascending)


def _parse_order_uncached(text: str, entity: _Entity) -> OrderKey:
    return _OrderParser(text, _SCHEMAS[entity], "order_by clause", {"order_by": text}).parse()


_parse_order_cached = lru_cache(maxsize=512)(_parse_order_uncached)


def _parse_order_by(order_by: Sequence[str] | None, entity: _Entity) -> list[OrderKey]:
    if order_by is None:
        return []
    clauses = [order_by] if isinstance(order_by, str) else list(order_by)
    keys: list[OrderKey] = []
    seen: set[tuple[Kind, str]] = set()
    for index, clause in enumerate(clauses):
        if not isinstance(clause, str):
            raise InvalidFilter(
                f"Invalid order_by clause {clause!r}: each order_by clause is a string such as "
                f'"metrics.acc DESC", got {type(clause).__name__}.',
                details={"order_by": repr(clause), "index": index, "position": 0, "token": ""},
            )
        try:
            parse = _parse_order_cached if len(clause) <= _CACHED_LENGTH else _parse_order_uncached
            key = parse(clause, entity)
        except InvalidFilter as error:
            raise InvalidFilter(error.message, details={**error.details, "index": index}) from None
        if (key.kind, key.key) in seen:
            schema = _SCHEMAS[entity]
            raise InvalidFilter(
                f'Invalid order_by clause "{clause}": duplicate key '
                f"{_ident(key.kind, key.key, schema)} at position 0; each key may appear once "
                "in order_by.",
                details={"order_by": clause, "index": index, "position": 0, "token": clause},
            )
        seen.add((key.kind, key.key))
        keys.append(key)
    return keys
