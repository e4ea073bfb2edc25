"""The search grammar: every valid form parses to the expected values, every mistake is an
InvalidFilter whose message quotes the filter, points at the token and says what would be valid."""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Sequence

import pytest

from shipyard.errors import InvalidFilter, InvalidInput
from shipyard.store.filters import (
    Comparison,
    OrderKey,
    parse_experiment_filter,
    parse_experiment_order_by,
    parse_run_filter,
    parse_run_order_by,
)

C = Comparison

# ------------------------------------------------------------------------------ valid run filters

RUN_FILTERS: list[tuple[str, list[Comparison]]] = [
    # empty and blank
    ("", []),
    ("   \t\n ", []),
    # prefixes and their aliases
    ("metrics.acc > 0.9", [C("metric", "acc", ">", 0.9)]),
    ("metric.acc > 0.9", [C("metric", "acc", ">", 0.9)]),
    ("params.lr = '0.01'", [C("param", "lr", "=", "0.01")]),
    ("param.lr = '0.01'", [C("param", "lr", "=", "0.01")]),
    ("parameter.lr = '0.01'", [C("param", "lr", "=", "0.01")]),
    ("parameters.lr = '0.01'", [C("param", "lr", "=", "0.01")]),
    ("tags.team = 'fraud'", [C("tag", "team", "=", "fraud")]),
    ("tag.team = 'fraud'", [C("tag", "team", "=", "fraud")]),
    ("attributes.status = 'RUNNING'", [C("attribute", "status", "=", "RUNNING")]),
    ("attribute.status = 'RUNNING'", [C("attribute", "status", "=", "RUNNING")]),
    ("attr.status = 'RUNNING'", [C("attribute", "status", "=", "RUNNING")]),
    ("run.status = 'RUNNING'", [C("attribute", "status", "=", "RUNNING")]),
    ("status = 'RUNNING'", [C("attribute", "status", "=", "RUNNING")]),
    ("datasets.name = 'train'", [C("dataset", "name", "=", "train")]),
    ("dataset.digest = 'ab12'", [C("dataset", "digest", "=", "ab12")]),
    ("datasets.context IN ('train', 'eval')", [C("dataset", "context", "IN", ("train", "eval"))]),
    ("datasets.name NOT IN ('a')", [C("dataset", "name", "NOT IN", ("a",))]),
    ("datasets.digest ILIKE 'AB%'", [C("dataset", "digest", "ILIKE", "AB%")]),
    # prefixes are case-insensitive
    ("METRICS.acc < 1", [C("metric", "acc", "<", 1.0)]),
    ("Tags.x != 'y'", [C("tag", "x", "!=", "y")]),
    # every metric operator, <> normalised
    ("metrics.m = 1", [C("metric", "m", "=", 1.0)]),
    ("metrics.m != 1", [C("metric", "m", "!=", 1.0)]),
    ("metrics.m <> 1", [C("metric", "m", "!=", 1.0)]),
    ("metrics.m >= 1", [C("metric", "m", ">=", 1.0)]),
    ("metrics.m <= 1", [C("metric", "m", "<=", 1.0)]),
    ("metrics.m<1", [C("metric", "m", "<", 1.0)]),
    # numbers
    ("metrics.m > -1", [C("metric", "m", ">", -1.0)]),
    ("metrics.m > +2", [C("metric", "m", ">", 2.0)]),
    ("metrics.m > .5", [C("metric", "m", ">", 0.5)]),
    ("metrics.m > 5.", [C("metric", "m", ">", 5.0)]),
    ("metrics.m > -0.25", [C("metric", "m", ">", -0.25)]),
    ("metrics.m > 1e3", [C("metric", "m", ">", 1000.0)]),
    ("metrics.m > 2.5E-3", [C("metric", "m", ">", 0.0025)]),
    ("metrics.m > -1.5e+2", [C("metric", "m", ">", -150.0)]),
    ("metrics.m > 007", [C("metric", "m", ">", 7.0)]),
    # quoted keys: backticks and double quotes, with spaces, dots, dashes, doubled quotes
    ("metrics.`val loss` < 0.3", [C("metric", "val loss", "<", 0.3)]),
    ('metrics."val-loss" < 0.3', [C("metric", "val-loss", "<", 0.3)]),
    ("tags.\"mlflow.user\" = 'ana'", [C("tag", "mlflow.user", "=", "ana")]),
    ("tags.`a``b` = 'x'", [C("tag", "a`b", "=", "x")]),
    ('tags."say ""hi""" = \'x\'', [C("tag", 'say "hi"', "=", "x")]),
    ("params.`learning rate (initial)` = '1'", [C("param", "learning rate (initial)", "=", "1")]),
    # a bare key after a prefix may hold dots and digits
    ("tags.mlflow.runName = 'r'", [C("tag", "mlflow.runName", "=", "r")]),
    ("params.1st_layer = '64'", [C("param", "1st_layer", "=", "64")]),
    ("metrics.αβ > 1", [C("metric", "αβ", ">", 1.0)]),
    # string literals
    ('params.model = "rf"', [C("param", "model", "=", "rf")]),
    ("params.note = 'it''s'", [C("param", "note", "=", "it's")]),
    ('params.note = "a ""b"""', [C("param", "note", "=", 'a "b"')]),
    ("params.note = ''", [C("param", "note", "=", "")]),
    ("params.note = 'AND OR NOT ( ) ,'", [C("param", "note", "=", "AND OR NOT ( ) ,")]),
    ("params.note = 'x\\'", [C("param", "note", "=", "x\\")]),
    ("params.p LIKE 'a%'", [C("param", "p", "LIKE", "a%")]),
    ("params.p like 'a%'", [C("param", "p", "LIKE", "a%")]),
    ("params.p ILIKE '%A_'", [C("param", "p", "ILIKE", "%A_")]),
    ("params.p iLike '%A_'", [C("param", "p", "ILIKE", "%A_")]),
    # IS [NOT] NULL
    ("params.p IS NULL", [C("param", "p", "IS NULL", None)]),
    ("tags.t is not null", [C("tag", "t", "IS NOT NULL", None)]),
    ("tags.t  IS\tNOT\nNULL", [C("tag", "t", "IS NOT NULL", None)]),
    # string attributes, aliases of run_name
    ("run_id = 'abc'", [C("attribute", "run_id", "=", "abc")]),
    ("run_name LIKE 'exp-%'", [C("attribute", "run_name", "LIKE", "exp-%")]),
    ("`run name` = 'a'", [C("attribute", "run_name", "=", "a")]),
    ("\"Run name\" = 'a'", [C("attribute", "run_name", "=", "a")]),
    ("attributes.`Run Name` != 'a'", [C("attribute", "run_name", "!=", "a")]),
    ("user_id ILIKE 'ana%'", [C("attribute", "user_id", "ILIKE", "ana%")]),
    ("artifact_uri = 's3://b/p'", [C("attribute", "artifact_uri", "=", "s3://b/p")]),
    ("lifecycle_stage = 'active'", [C("attribute", "lifecycle_stage", "=", "active")]),
    # status values are upper-cased and checked for = and !=; patterns pass through
    ("status = 'finished'", [C("attribute", "status", "=", "FINISHED")]),
    ("status != 'Killed'", [C("attribute", "status", "!=", "KILLED")]),
    ("status LIKE 'fin%'", [C("attribute", "status", "LIKE", "fin%")]),
    # IN lists on run_id
    ("run_id IN ('a')", [C("attribute", "run_id", "IN", ("a",))]),
    ("attributes.run_id IN ('a', \"b\",'c')", [C("attribute", "run_id", "IN", ("a", "b", "c"))]),
    ("run_id not in ( 'a' , 'b' )", [C("attribute", "run_id", "NOT IN", ("a", "b"))]),
    ("run_id NOT\tIN('it''s')", [C("attribute", "run_id", "NOT IN", ("it's",))]),
    # numeric attributes and their aliases
    ("start_time >= 1700000000000", [C("attribute", "start_time", ">=", 1.7e12)]),
    ("end_time < 5", [C("attribute", "end_time", "<", 5.0)]),
    ("created > 5", [C("attribute", "start_time", ">", 5.0)]),
    ("attributes.Created > 5", [C("attribute", "start_time", ">", 5.0)]),
    # conjunctions: AND in any case, any whitespace, none needed around a quoted value
    (
        "metrics.acc > 0.9 AND params.model = 'rf'",
        [C("metric", "acc", ">", 0.9), C("param", "model", "=", "rf")],
    ),
    (
        "metrics.acc>0.9 and params.model='rf'   aNd tags.t IS NULL",
        [
            C("metric", "acc", ">", 0.9),
            C("param", "model", "=", "rf"),
            C("tag", "t", "IS NULL", None),
        ],
    ),
    (
        "\n  params.a = 'x'AND params.b = 'y'\n",
        [C("param", "a", "=", "x"), C("param", "b", "=", "y")],
    ),
    (
        "metrics.a > 1 AND metrics.a < 2",
        [C("metric", "a", ">", 1.0), C("metric", "a", "<", 2.0)],
    ),
]


@pytest.mark.parametrize(("text", "expected"), RUN_FILTERS)
def test_run_filter_parses(text: str, expected: list[Comparison]) -> None:
    assert parse_run_filter(text) == expected


# ------------------------------------------------------------------------------ valid experiment filters

EXPERIMENT_FILTERS: list[tuple[str, list[Comparison]]] = [
    ("", []),
    (" ", []),
    ("name = 'fraud'", [C("attribute", "name", "=", "fraud")]),
    ("attributes.name LIKE 'fraud-%'", [C("attribute", "name", "LIKE", "fraud-%")]),
    ("attr.name ILIKE '%X%'", [C("attribute", "name", "ILIKE", "%X%")]),
    ("attribute.name != 'x'", [C("attribute", "name", "!=", "x")]),
    ("experiment_id = '3'", [C("attribute", "experiment_id", "=", "3")]),
    ("experiment_id IN ('1', '2')", [C("attribute", "experiment_id", "IN", ("1", "2"))]),
    ("experiment_id NOT IN ('0')", [C("attribute", "experiment_id", "NOT IN", ("0",))]),
    ("creation_time > 1700000000000", [C("attribute", "creation_time", ">", 1.7e12)]),
    ("last_update_time <= -1", [C("attribute", "last_update_time", "<=", -1.0)]),
    ("tags.team = 'risk'", [C("tag", "team", "=", "risk")]),
    ("tag.`owner name` IS NOT NULL", [C("tag", "owner name", "IS NOT NULL", None)]),
    (
        "name LIKE 'a%' and tags.t ILIKE 'b' AND creation_time > 0",
        [
            C("attribute", "name", "LIKE", "a%"),
            C("tag", "t", "ILIKE", "b"),
            C("attribute", "creation_time", ">", 0.0),
        ],
    ),
]


@pytest.mark.parametrize(("text", "expected"), EXPERIMENT_FILTERS)
def test_experiment_filter_parses(text: str, expected: list[Comparison]) -> None:
    assert parse_experiment_filter(text) == expected


# ------------------------------------------------------------------------------ filter errors

# (filter, position, token, fragments the message must contain)
RUN_FILTER_ERRORS: list[tuple[str, int, str, list[str]]] = [
    # the documented example, verbatim
    (
        "metrics.acc >> 0.9",
        13,
        ">",
        [
            "Invalid filter \"metrics.acc >> 0.9\": unexpected '>' at position 13; "
            "expected a number after '>' (comparison operators: = != > >= < <=)."
        ],
    ),
    # unknown prefix lists the valid ones
    (
        "foo.x = 'a'",
        0,
        "foo",
        [
            "unknown prefix 'foo'",
            "metrics (metric)",
            "datasets (dataset)",
            "valid prefixes for runs",
        ],
    ),
    ("metrix.acc > 1", 0, "metrix", ["unknown prefix 'metrix'", "params (param, parameter"]),
    ("metrics", 7, "", ["unexpected end of filter", "after the prefix 'metrics'"]),
    ("tags = 'x'", 4, " ", ["expected '.' and a key after the prefix 'tags'"]),
    # unknown attribute lists the valid ones and suggests a close one
    ("start = 1", 0, "start", ["unknown run attribute 'start'", "did you mean", "start_time"]),
    ("acc > 0.9", 0, "acc", ["unknown run attribute 'acc'", "run_id, run_name", "metrics.<key>"]),
    ("attributes.Status = 'x'", 11, "Status", ["unknown run attribute 'Status'", "'status'"]),
    ("name = 'x'", 0, "name", ["unknown run attribute 'name'"]),
    ("\"\" = 'x'", 0, '""', ["unknown run attribute ''"]),
    ("datasets.foo = 'x'", 9, "foo", ["unknown datasets key 'foo'", "name, digest, context"]),
    # operator not allowed for the kind
    (
        "metrics.a LIKE '1'",
        10,
        "LIKE",
        ["operator 'LIKE' is not allowed for metrics", "= != > >= < <="],
    ),
    ("metrics.a IS NULL", 10, "IS NULL", ["operator 'IS NULL' is not allowed for metrics"]),
    ("params.p > '1'", 9, ">", ["operator '>' is not allowed for params", "IS NOT NULL"]),
    ("tags.t IN ('a')", 7, "IN", ["operator 'IN' is not allowed for tags", "LIKE ILIKE"]),
    ("run_name IN ('a')", 9, "IN", ["'IN' is not allowed for run_name", "only for run_id"]),
    ("status not in ('RUNNING')", 7, "not in", ["'NOT IN' is not allowed for status"]),
    ("run_name > 'a'", 9, ">", ["not allowed for run_name", "allowed: = != LIKE ILIKE"]),
    ("run_id IS NULL", 7, "IS NULL", ["not allowed for run_id", "IN NOT IN"]),
    ("start_time LIKE '1'", 11, "LIKE", ["not allowed for start_time", "= != > >= < <="]),
    ("datasets.name > 'a'", 14, ">", ["not allowed for datasets.name"]),
    # metric (or numeric attribute) compared to a string
    ("metrics.acc > 'x'", 14, "'x'", ["metrics.acc compared to a string", "without quotes"]),
    ("metrics.acc = '0.9'", 14, "'0.9'", ["as in metrics.acc = 0.9"]),
    ('metrics.`a b` > "1"', 16, '"1"', ["metrics.`a b` compared to a string"]),
    ("start_time > '2024'", 13, "'2024'", ["start_time is a number", "start_time > 2024"]),
    ("metrics.acc > abc", 14, "abc", ["unexpected 'abc'", "expected a number after '>'"]),
    # param/tag/attribute compared to a bare number: say to quote it
    (
        "params.lr = 0.01",
        12,
        "0.01",
        ["unquoted number '0.01'", "params are strings", "params.lr = '0.01'"],
    ),
    ("tags.t != -1", 10, "-1", ["tags are strings", "tags.t != '-1'"]),
    ("run_name = 5", 11, "5", ["run_name is a string", "run_name = '5'"]),
    ("run_id IN (1, 2)", 11, "1", ["unquoted number '1'", "run_id IN ('1', ...)"]),
    ("tags.`a{0}` = 5", 14, "5", ["tags.`a{0}` = '5'"]),
    (
        "params.p = rf",
        11,
        "rf",
        ["unexpected 'rf'", "expected a quoted string", "params.p = 'value'"],
    ),
    ("status = RUNNING", 9, "RUNNING", ["expected a quoted string"]),
    # status values are checked
    (
        "status = 'DONE'",
        9,
        "'DONE'",
        ["unknown status 'DONE'", "RUNNING, SCHEDULED, FINISHED, FAILED, KILLED"],
    ),
    # unterminated strings and keys
    ("params.p = 'abc", 11, "'abc", ["unterminated string at position 11", "close it with '"]),
    ('params.p = "abc', 11, '"abc', ["unterminated string", 'close it with "']),
    ("params.p = 'it''", 11, "'it''", ["unterminated string"]),
    ("tags.`my tag = 'x'", 5, "`my tag = 'x'", ["unterminated quoted key", "close it with `"]),
    ("`run name = 'x'", 0, "`run name = 'x'", ["unterminated quoted key"]),
    # missing pieces
    ("metrics.acc >", 13, "", ["unexpected end of filter at position 13", "expected a number"]),
    ("params.p =", 10, "", ["unexpected end of filter", "expected a quoted string"]),
    ("metrics.acc", 11, "", ["expected an operator after metrics.acc", "= != > >= < <="]),
    ("metrics.acc 0.9", 12, "0.9", ["expected an operator after metrics.acc"]),
    ("params.p IS", 11, "", ["expected NULL or NOT NULL after IS"]),
    ("params.p IS NOT 'x'", 16, "'x'", ["expected NULL or NOT NULL"]),
    ("tags. = 'x'", 5, " ", ["expected a key after 'tags.'", "backticks"]),
    ("tags.`` = 'x'", 5, "``", ["empty key at position 5"]),
    (
        "'run_id' = 'x'",
        0,
        "'run_id'",
        ["single quotes are for values", "backticks or double quotes"],
    ),
    ("= 'x'", 0, "=", ["expected a key", "a clause is <key> <operator> <value>"]),
    ("5 > 1", 0, "5", ["expected a key"]),
    # dangling / doubled AND
    (
        "metrics.a > 1 AND",
        14,
        "AND",
        ["dangling 'AND' at position 14", "expected a clause after AND"],
    ),
    ("metrics.a > 1 and   ", 14, "and", ["dangling 'AND'"]),
    ("AND metrics.a > 1", 0, "AND", ["unexpected 'AND' at position 0", "expected a clause"]),
    ("metrics.a > 1 AND AND metrics.b > 1", 18, "AND", ["unexpected 'AND' at position 18"]),
    # OR, NOT and parentheses
    (
        "metrics.a > 1 OR metrics.b > 1",
        14,
        "OR",
        [
            "Shipyard filters are a conjunction of clauses joined by AND; "
            "OR is not supported: run two searches"
        ],
    ),
    ("metrics.a > 1 or metrics.b > 1", 14, "or", ["OR is not supported"]),
    ("metrics.a > 1 AND OR", 18, "OR", ["OR is not supported"]),
    (
        "(metrics.a > 1)",
        0,
        "(",
        ["conjunction of clauses", "parentheses are supported only around IN"],
    ),
    ("metrics.a > 1)", 13, ")", ["parentheses"]),
    ("metrics.a > 1 AND (params.p = 'x')", 18, "(", ["parentheses"]),
    ("NOT metrics.a > 1", 0, "NOT", ["NOT is supported only in NOT IN and IS NOT NULL"]),
    ("metrics.a > 1 AND not params.p = 'x'", 18, "not", ["NOT is supported only in NOT IN"]),
    ("params.p NOT LIKE 'x'", 13, "LIKE", ["expected IN after NOT"]),
    ("metrics.a > 1 NOT", 14, "NOT", ["NOT is supported only"]),
    # trailing garbage
    ("metrics.a > 1 foo", 14, "foo", ["unexpected 'foo'", "expected AND or the end of the filter"]),
    ("params.p = 'x' 'y'", 15, "'y'", ["expected AND or the end"]),
    ("params.p = 'x';", 14, ";", ["unexpected ';'"]),
    ("params.p = 'x' ANDparams.q = 'y'", 15, "ANDparams.q", ["expected AND or the end"]),
    # IN lists
    ("run_id IN ()", 11, ")", ["empty IN list at position 11", "run_id IN ('a', 'b')"]),
    ("run_id NOT IN (  )", 17, ")", ["empty NOT IN list"]),
    ("run_id IN 'a'", 10, "'a'", ["expected '(' after IN"]),
    ("run_id IN", 9, "", ["unexpected end of filter", "expected '(' after IN"]),
    ("run_id IN ('a'", 14, "", ["expected ',' or ')' in the IN list"]),
    ("run_id IN ('a' 'b')", 15, "'b'", ["expected ',' or ')'"]),
    ("run_id IN ('a',)", 15, ")", ["expected a quoted string"]),
    ("run_id IN ('a', 'b", 16, "'b", ["unterminated string"]),
    # malformed numbers
    ("metrics.a == 1", 10, "==", ["use a single '='"]),
    ("metrics.a ! 1", 10, "!", ["expected an operator after metrics.a"]),
    ("metrics.a > 1x", 12, "1x", ["malformed number '1x'"]),
    ("metrics.a > 1.2.3", 12, "1.2.3", ["malformed number"]),
    ("metrics.a > 1e", 12, "1e", ["malformed number"]),
    ("metrics.a > 1e999", 12, "1e999", ["out of range"]),
    ("metrics.a > -", 12, "-", ["expected a number"]),
    ("metrics.a > NaN", 12, "NaN", ["expected a number"]),
    ("metrics.a > 1AND metrics.b > 2", 12, "1AND", ["malformed number"]),
]


@pytest.mark.parametrize(("text", "position", "token", "fragments"), RUN_FILTER_ERRORS)
def test_run_filter_errors(text: str, position: int, token: str, fragments: list[str]) -> None:
    with pytest.raises(InvalidFilter) as caught:
        parse_run_filter(text)
    error = caught.value
    assert error.details == {"filter": text, "position": position, "token": token}
    assert error.message.startswith(f'Invalid filter "{text}": ')
    assert f"at position {position};" in error.message
    assert error.message.endswith(".")
    for fragment in fragments:
        assert fragment in error.message


EXPERIMENT_FILTER_ERRORS: list[tuple[str, int, str, list[str]]] = [
    (
        "metrics.acc > 1",
        0,
        "metrics",
        ["unknown prefix 'metrics'", "attributes (attribute, attr)", "runs, not experiments"],
    ),
    ("params.p = 'x'", 0, "params", ["unknown prefix 'params'", "tags (tag)"]),
    ("run.name = 'x'", 0, "run", ["unknown prefix 'run'"]),
    ("datasets.name = 'x'", 0, "datasets", ["unknown prefix"]),
    (
        "nam = 'x'",
        0,
        "nam",
        ["unknown experiment attribute 'nam'", "did you mean 'name'", "tags.<key>"],
    ),
    ("run_id = 'x'", 0, "run_id", ["unknown experiment attribute", "experiment_id"]),
    ("name IN ('a')", 5, "IN", ["'IN' is not allowed for name", "allowed: = != LIKE ILIKE"]),
    ("experiment_id LIKE '1%'", 14, "LIKE", ["not allowed for experiment_id", "= != IN NOT IN"]),
    ("experiment_id = 1", 16, "1", ["experiment_id is a string", "experiment_id = '1'"]),
    ("creation_time > '1'", 16, "'1'", ["creation_time compared to a string"]),
    ("last_update_time LIKE 'x'", 17, "LIKE", ["not allowed for last_update_time"]),
    ("tags.t > 'x'", 7, ">", ["not allowed for tags"]),
    ("name = 'a' OR name = 'b'", 11, "OR", ["OR is not supported: run two searches"]),
    ("experiment_id IN ()", 18, ")", ["empty IN list"]),
]


@pytest.mark.parametrize(("text", "position", "token", "fragments"), EXPERIMENT_FILTER_ERRORS)
def test_experiment_filter_errors(
    text: str, position: int, token: str, fragments: list[str]
) -> None:
    with pytest.raises(InvalidFilter) as caught:
        parse_experiment_filter(text)
    assert caught.value.details == {"filter": text, "position": position, "token": token}
    assert caught.value.message.startswith(f'Invalid filter "{text}": ')
    for fragment in fragments:
        assert fragment in caught.value.message


def test_invalid_filter_is_an_invalid_input_with_the_filter_code() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_run_filter("metrics.a >")
    assert caught.value.code == "INVALID_FILTER"
    assert caught.value.http_status == 400
    assert caught.value.to_dict()["details"]["position"] == 11


@pytest.mark.parametrize("parse", [parse_run_filter, parse_experiment_filter])
def test_none_reads_as_empty_and_other_types_are_refused(
    parse: Callable[[str], list[Comparison]],
) -> None:
    assert parse(None) == []  # type: ignore[arg-type]
    with pytest.raises(InvalidFilter, match="a filter is a string, got int"):
        parse(3)  # type: ignore[arg-type]


def test_each_call_returns_a_fresh_list() -> None:
    first = parse_run_filter("metrics.a > 1")
    first.append(C("tag", "x", "=", "y"))
    assert parse_run_filter("metrics.a > 1") == [C("metric", "a", ">", 1.0)]


def test_long_filters_parse_outside_the_cache() -> None:
    text = " AND ".join(f"params.p{i} = 'v{i}'" for i in range(400))
    assert len(text) > 4096
    parsed = parse_run_filter(text)
    assert len(parsed) == 400
    assert parsed[-1] == C("param", "p399", "=", "v399")


# ------------------------------------------------------------------------------ order by

RUN_ORDER_BY: list[tuple[Sequence[str] | None, list[OrderKey]]] = [
    (None, []),
    ([], []),
    (["metrics.acc"], [OrderKey("metric", "acc", True)]),
    (["metrics.acc DESC"], [OrderKey("metric", "acc", False)]),
    (["metric.acc desc"], [OrderKey("metric", "acc", False)]),
    (["params.lr ASC"], [OrderKey("param", "lr", True)]),
    (["parameters.`a b` asc"], [OrderKey("param", "a b", True)]),
    (['tags."mlflow.user" Desc'], [OrderKey("tag", "mlflow.user", False)]),
    (["tags.mlflow.runName"], [OrderKey("tag", "mlflow.runName", True)]),
    (["start_time"], [OrderKey("attribute", "start_time", True)]),
    (["attributes.run_name DESC"], [OrderKey("attribute", "run_name", False)]),
    (["run.status"], [OrderKey("attribute", "status", True)]),
    (["attr.end_time"], [OrderKey("attribute", "end_time", True)]),
    (["`Run Name`"], [OrderKey("attribute", "run_name", True)]),
    (["created DESC"], [OrderKey("attribute", "start_time", False)]),
    (["  metrics.acc\tDESC  "], [OrderKey("metric", "acc", False)]),
    (["metrics.acc", "params.lr"], [OrderKey("metric", "acc"), OrderKey("param", "lr")]),
    (
        ["metrics.acc DESC", "start_time", "params.`a b` asc", "attributes.run_name"],
        [
            OrderKey("metric", "acc", False),
            OrderKey("attribute", "start_time", True),
            OrderKey("param", "a b", True),
            OrderKey("attribute", "run_name", True),
        ],
    ),
    (("metrics.a",), [OrderKey("metric", "a")]),
    ("metrics.acc DESC", [OrderKey("metric", "acc", False)]),  # one string is one clause
]


@pytest.mark.parametrize(("order_by", "expected"), RUN_ORDER_BY)
def test_run_order_by_parses(order_by: Sequence[str] | None, expected: list[OrderKey]) -> None:
    assert parse_run_order_by(order_by) == expected


EXPERIMENT_ORDER_BY: list[tuple[Sequence[str] | None, list[OrderKey]]] = [
    (None, []),
    (["name"], [OrderKey("attribute", "name", True)]),
    (["experiment_id DESC"], [OrderKey("attribute", "experiment_id", False)]),
    (["attributes.creation_time desc"], [OrderKey("attribute", "creation_time", False)]),
    (
        ["last_update_time ASC", "name"],
        [OrderKey("attribute", "last_update_time"), OrderKey("attribute", "name")],
    ),
]


@pytest.mark.parametrize(("order_by", "expected"), EXPERIMENT_ORDER_BY)
def test_experiment_order_by_parses(
    order_by: Sequence[str] | None, expected: list[OrderKey]
) -> None:
    assert parse_experiment_order_by(order_by) == expected


# (order_by, index of the bad clause, position, token, fragments)
RUN_ORDER_BY_ERRORS: list[tuple[list[str], int, int, str, list[str]]] = [
    (["metrics.acc DESCENDING"], 0, 12, "DESCENDING", ["expected ASC or DESC after metrics.acc"]),
    (["metrics.acc DESC x"], 0, 17, "x", ["expected the end of the clause", "<key> [ASC|DESC]"]),
    (["metrics.acc ASC DESC"], 0, 16, "DESC", ["expected the end of the clause"]),
    (["metrics.a DESC, params.b"], 0, 14, ",", ["give each key as its own order_by entry"]),
    (["metrics.a, params.b"], 0, 9, ",", ["its own order_by entry"]),
    (
        ["start_time", "datasets.name"],
        1,
        0,
        "datasets.name",
        ["datasets cannot be used in order_by", "metrics, params, tags and attributes"],
    ),
    (["foo.bar"], 0, 0, "foo", ["unknown prefix 'foo'"]),
    (["bogus"], 0, 0, "bogus", ["unknown run attribute 'bogus'", "metrics.<key>"]),
    ([""], 0, 0, "", ["empty order_by clause"]),
    (["  "], 0, 2, "", ["empty order_by clause"]),
    (["DESC"], 0, 0, "DESC", ["unknown run attribute 'DESC'"]),
    (["metrics.`acc DESC"], 0, 8, "`acc DESC", ["unterminated quoted key"]),
    (["metrics.acc > 1"], 0, 12, ">", ["expected ASC or DESC"]),
    (["metrics.a", "metric.a DESC"], 1, 0, "metric.a DESC", ["duplicate key metrics.a", "once"]),
]


@pytest.mark.parametrize(
    ("order_by", "index", "position", "token", "fragments"), RUN_ORDER_BY_ERRORS
)
def test_run_order_by_errors(
    order_by: list[str], index: int, position: int, token: str, fragments: list[str]
) -> None:
    with pytest.raises(InvalidFilter) as caught:
        parse_run_order_by(order_by)
    error = caught.value
    clause = order_by[index]
    assert error.details == {
        "order_by": clause,
        "index": index,
        "position": position,
        "token": token,
    }
    assert error.message.startswith(f'Invalid order_by clause "{clause}": ')
    assert f"at position {position};" in error.message
    for fragment in fragments:
        assert fragment in error.message


EXPERIMENT_ORDER_BY_ERRORS: list[tuple[list[str], int, str, list[str]]] = [
    (["tags.team"], 0, "tags.team", ["tags cannot be used in order_by", "name, experiment_id"]),
    (["metrics.acc"], 0, "metrics", ["unknown prefix 'metrics'"]),
    (["nme DESC"], 0, "nme", ["did you mean 'name'", "creation_time, last_update_time"]),
    (["name sideways"], 5, "sideways", ["expected ASC or DESC after name"]),
]


@pytest.mark.parametrize(("order_by", "position", "token", "fragments"), EXPERIMENT_ORDER_BY_ERRORS)
def test_experiment_order_by_errors(
    order_by: list[str], position: int, token: str, fragments: list[str]
) -> None:
    with pytest.raises(InvalidFilter) as caught:
        parse_experiment_order_by(order_by)
    assert caught.value.details["position"] == position
    assert caught.value.details["token"] == token
    for fragment in fragments:
        assert fragment in caught.value.message


def test_experiment_order_by_does_not_suggest_unorderable_prefixes() -> None:
    with pytest.raises(InvalidFilter) as caught:
        parse_experiment_order_by(["bogus"])
    assert "tags.<key>" not in caught.value.message


def test_order_by_clause_that_is_not_a_string() -> None:
    with pytest.raises(InvalidFilter, match="got int") as caught:
        parse_run_order_by(["metrics.a", 3])  # type: ignore[list-item]
    assert caught.value.details["index"] == 1


# ------------------------------------------------------------------------------ generated inputs

VALID_RUN_CLAUSES: list[tuple[str, Comparison]] = [
    (text, parsed[0]) for text, parsed in RUN_FILTERS if len(parsed) == 1
]


def _case(rng: random.Random, word: str) -> str:
    return "".join(ch.upper() if rng.random() < 0.5 else ch.lower() for ch in word)


def test_random_conjunctions_of_valid_clauses_parse_clause_by_clause() -> None:
    rng = random.Random(20240611)
    for _ in range(500):
        chosen = rng.choices(VALID_RUN_CLAUSES, k=rng.randint(1, 6))
        joiners = [
            rng.choice([" ", "  ", "\t", "\n"]) + _case(rng, "and") + rng.choice([" ", "\n ", "\t"])
            for _ in chosen[1:]
        ]
        text = chosen[0][0] + "".join(j + c[0] for j, c in zip(joiners, chosen[1:], strict=True))
        assert parse_run_filter(text) == [parsed for _, parsed in chosen]


FUZZ_VOCABULARY = [
    "metrics.acc", "metric.`a b`", "params.p", "tags.\"x.y\"", "datasets.name", "run_id", "status",
    "start_time", "name", "experiment_id", "creation_time", "=", "!=", "<>", ">", ">=", "<", "<=",
    "==", "!", "LIKE", "ilike", "IN", "NOT", "IS", "NULL", "AND", "and", "OR", "(", ")", ",", "'x'",
    '"y"', "'RUNNING'", "0.5", "-1e3", "1e999", "1x", "'", '"', "`", ".", "ASC", "desc", "é", "\x00",
    "`{0}`", "'%s{}'", "tags.`a{b}`", "{", "}",
]  # fmt: skip

PARSERS: list[Callable[[str], object]] = [
    parse_run_filter,
    parse_experiment_filter,
    lambda text: parse_run_order_by([text]),
    lambda text: parse_experiment_order_by([text]),
]


def _mutate(rng: random.Random, text: str) -> str:
    """Insert, delete or repeat a few characters of a valid filter."""
    for _ in range(rng.randint(1, 3)):
        at = rng.randint(0, len(text))
        action = rng.randrange(3)
        if action == 0:
            text = text[:at] + rng.choice(string.printable + "`'\"(){}") + text[at:]
        elif action == 1:
            text = text[:at] + text[at + 1 :]
        else:
            text = text[:at] + text[at : at + rng.randint(1, 4)] + text[at:]
    return text


def _random_inputs(seed: int, count: int) -> list[str]:
    """Printable noise, soups of grammar tokens, and valid filters with a few typos."""
    rng = random.Random(seed)
    valid = [text for text, _ in RUN_FILTERS + EXPERIMENT_FILTERS]
    texts = []
    for i in range(count):
        if i % 3 == 0:
            texts.append("".join(rng.choices(string.printable, k=rng.randint(0, 40))))
        elif i % 3 == 1:
            words = rng.choices(FUZZ_VOCABULARY, k=rng.randint(0, 10))
            texts.append("".join(w + rng.choice(["", " ", " ", "\t"]) for w in words))
        else:
            texts.append(_mutate(rng, rng.choice(valid)))
    return texts


@pytest.mark.parametrize("parse", PARSERS)
def test_random_text_never_raises_anything_but_invalid_filter(
    parse: Callable[[str], object],
) -> None:
    errors: list[tuple[str, InvalidFilter]] = []
    for text in _random_inputs(seed=7, count=4000):
        try:
            parse(text)
        except InvalidFilter as error:
            errors.append((text, error))
    assert errors  # the generator does reach the error paths
    for text, failure in errors:
        position, token = failure.details["position"], failure.details["token"]
        assert 0 <= position <= len(text), (text, failure.details)
        assert text.startswith(token, position) or "duplicate" in failure.message, (
            text,
            failure.details,
        )
        assert f"at position {position};" in failure.message
