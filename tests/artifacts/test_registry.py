from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.artifacts import registry
from shipyard.artifacts.base import ByteStore
from shipyard.artifacts.local import LocalByteStore
from shipyard.artifacts.registry import known_schemes, open_byte_store, register_byte_store
from shipyard.config import Settings
from shipyard.errors import InvalidInput


def test_plain_path_and_file_uri_open_a_local_store(settings: Settings, tmp_path: Path) -> None:
    for uri in (str(tmp_path / "a"), (tmp_path / "a").as_uri(), f"file://localhost{tmp_path}/a"):
        store = open_byte_store(uri, settings)
        assert isinstance(store, LocalByteStore)
        assert store.root == tmp_path / "a"


def test_relative_path_is_made_absolute(settings: Settings, tmp_path: Path) -> None:
    store = open_byte_store("rel/artifacts", settings)  # the suite runs in tmp_path
    assert isinstance(store, LocalByteStore)
    assert store.root == tmp_path / "rel" / "artifacts"


def test_the_default_workspace_uses_a_local_store(settings: Settings) -> None:
    store = open_byte_store(settings.artifact_uri, settings)
    assert isinstance(store, LocalByteStore)
    assert store.root == settings.home / "artifacts"


def test_s3_uri_opens_an_s3_store(settings: Settings, aws_env: None) -> None:
    from shipyard.artifacts.s3 import S3ByteStore

    s3_settings = settings.with_(s3_endpoint_url="http://127.0.0.1:9")
    store = open_byte_store("s3://bucket/some/prefix/", s3_settings)
    assert isinstance(store, S3ByteStore)
    assert (store.bucket, store.prefix, store.uri) == (
        "bucket",
        "some/prefix",
        "s3://bucket/some/prefix",
    )
    assert store.endpoint_url == "http://127.0.0.1:9"
    store.close()


@pytest.mark.parametrize("uri", ["s3://", "s3:///prefix"])
def test_s3_uri_needs_a_bucket(settings: Settings, aws_env: None, uri: str) -> None:
    with pytest.raises(InvalidInput, match="names no bucket"):
        open_byte_store(uri, settings)


def test_unknown_scheme_lists_the_known_ones(settings: Settings) -> None:
    with pytest.raises(InvalidInput) as err:
        open_byte_store("gs://bucket/x", settings)
    message = str(err.value)
    assert "unknown scheme 'gs'" in message
    assert "file://" in message
    assert "s3://" in message


def test_remote_file_uri_is_refused(settings: Settings) -> None:
    with pytest.raises(InvalidInput, match="must be local"):
        open_byte_store("file://fileserver/share", settings)


def test_empty_uri_is_refused(settings: Settings) -> None:
    with pytest.raises(InvalidInput, match="is empty"):
        open_byte_store("", settings)


def test_plugins_register_schemes(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "_FACTORIES", dict(registry._FACTORIES))
    seen: list[str] = []

    def factory(uri: str, s: Settings) -> ByteStore:
        seen.append(uri)
        return LocalByteStore(tmp_path / "mem")

    register_byte_store("mem", factory)
    assert "mem" in known_schemes()
    assert isinstance(open_byte_store("MEM://x", settings), LocalByteStore)
    assert seen == ["MEM://x"]
    with pytest.raises(InvalidInput, match="lowercase"):
        register_byte_store("Bad-Scheme", factory)


def test_missing_boto3_names_the_extra(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from shipyard.errors import MissingDependency

    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(MissingDependency, match=r"pip install 'shipyard\[s3\]'"):
        open_byte_store("s3://bucket", settings)


def test_unusable_aws_profile_is_explained(
    settings: Settings, aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shipyard.errors import StoreUnavailable

    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    with pytest.raises(StoreUnavailable, match=r"cannot set up the S3 client.*AWS_PROFILE"):
        open_byte_store("s3://bucket", settings)
