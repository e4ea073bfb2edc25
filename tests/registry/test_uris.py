"""Parsing model URIs and the run sources versions are registered from."""

from __future__ import annotations

import pytest

from shipyard.errors import InvalidArtifactPath, InvalidInput
from shipyard.registry import ModelUri, parse_model_uri, parse_runs_uri


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("models:/churn/3", ModelUri("churn", version=3)),
        ("models:/churn@champion", ModelUri("churn", alias="champion")),
        ("models:/churn/latest", ModelUri("churn")),
        ("models:/churn/Latest", ModelUri("churn")),
        ("models:/churn/staging", ModelUri("churn", stage="Staging")),
        ("models:///churn/1", ModelUri("churn", version=1)),
    ],
)
def test_model_uris(uri: str, expected: ModelUri) -> None:
    assert parse_model_uri(uri) == expected
    assert parse_model_uri(uri).is_latest == (uri.lower().endswith("latest"))


@pytest.mark.parametrize(
    "uri",
    [
        "runs:/abc/model",
        "models:/churn",
        "models:/churn/",
        "models:/churn/0",
        "models:/churn/three",
        "models:/churn/1/extra",
        "models:/@champion",
        "models:/churn@",
        "models:/m-0123456789abcdef",
        "models:/churn/\u00b2",  # a digit to str.isdigit, not to int()
        "models:/churn/\u0661",
    ],
)
def test_malformed_model_uris(uri: str) -> None:
    with pytest.raises(InvalidInput, match=r"models:/"):
        parse_model_uri(uri)


def test_run_sources() -> None:
    assert parse_runs_uri("runs:/abc123/model") == ("abc123", "model")
    assert parse_runs_uri("runs:/abc123/a/b/") == ("abc123", "a/b")
    assert parse_runs_uri("runs:/abc123") == ("abc123", "")
    with pytest.raises(InvalidInput, match="runs:/<run_id>"):
        parse_runs_uri("s3://bucket/model")
    with pytest.raises(InvalidInput, match="names no run"):
        parse_runs_uri("runs:/")
    with pytest.raises(InvalidArtifactPath):
        parse_runs_uri("runs:/abc123/../escape")
