"""One contract for every byte store, run against the local folder and a real S3 server (moto)."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.artifacts.base import ByteStore
from shipyard.artifacts.local import LocalByteStore
from shipyard.artifacts.s3 import S3ByteStore
from shipyard.errors import InvalidArtifactPath, InvalidInput, NotFound, StoreUnavailable


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


class ByteStoreContract:
    """Behaviour every :class:`ByteStore` must show; subclasses provide the ``blobs`` fixture."""

    __test__ = False

    @pytest.fixture
    def blobs(self) -> ByteStore:
        raise NotImplementedError

    def test_put_then_read_back(self, blobs: ByteStore, tmp_path: Path) -> None:
        blobs.put_file("a/b/c.bin", _write(tmp_path / "src", b"hello bytes"))
        assert blobs.exists("a/b/c.bin")
        with blobs.open("a/b/c.bin") as f:
            assert f.read() == b"hello bytes"

    def test_read_in_chunks(self, blobs: ByteStore, tmp_path: Path) -> None:
        data = os.urandom(3 * 1024 * 1024 + 17)
        blobs.put_file("big", _write(tmp_path / "src", data))
        with blobs.open("big") as f:
            first = f.read(1000)
            rest = f.read()
        assert first + rest == data
        assert b"".join(blobs.iter_bytes("big", chunk_size=1024 * 1024)) == data

    def test_empty_blob(self, blobs: ByteStore, tmp_path: Path) -> None:
        blobs.put_file("empty", _write(tmp_path / "src", b""))
        assert blobs.exists("empty")
        assert b"".join(blobs.iter_bytes("empty")) == b""
        assert [(i.key, i.size) for i in blobs.list("empty")] == [("empty", 0)]

    def test_put_overwrites(self, blobs: ByteStore, tmp_path: Path) -> None:
        blobs.put_file("k", _write(tmp_path / "one", b"one"))
        blobs.put_file("k", _write(tmp_path / "two", b"two"))
        assert b"".join(blobs.iter_bytes("k")) == b"two"
        assert [i.key for i in blobs.list()] == ["k"]

    def test_missing_blob(self, blobs: ByteStore) -> None:
        assert not blobs.exists("nope/x")
        with pytest.raises(NotFound, match="no blob 'nope/x'"):
            blobs.open("nope/x")

    def test_put_missing_local_file(self, blobs: ByteStore, tmp_path: Path) -> None:
        with pytest.raises(NotFound, match="does not exist"):
            blobs.put_file("k", tmp_path / "absent")
        assert not blobs.exists("k")

    def test_list_with_sizes_and_times(self, blobs: ByteStore, tmp_path: Path) -> None:
        before = time.time() - 5
        for key, data in [("x/1", b"a"), ("x/2", b"bb"), ("x2/3", b"ccc"), ("y/4", b"dddd")]:
            blobs.put_file(key, _write(tmp_path / "src", data))
        every = {i.key: i for i in blobs.list()}
        assert {k: i.size for k, i in every.items()} == {"x/1": 1, "x/2": 2, "x2/3": 3, "y/4": 4}
        assert all(before < i.mtime < time.time() + 5 for i in every.values())
        assert sorted(i.key for i in blobs.list("x/")) == ["x/1", "x/2"]
        assert sorted(i.key for i in blobs.list("x")) == ["x/1", "x/2", "x2/3"]
        assert [i.key for i in blobs.list("x/2")] == ["x/2"]
        assert list(blobs.list("zzz")) == []

    def test_delete(self, blobs: ByteStore, tmp_path: Path) -> None:
        blobs.put_file("d/k", _write(tmp_path / "src", b"x"))
        blobs.delete("d/k")
        assert not blobs.exists("d/k")
        assert list(blobs.list("d/")) == []
        blobs.delete("d/k")  # deleting a missing blob is fine

    def test_uri(self, blobs: ByteStore) -> None:
        assert blobs.uri


class TestLocalByteStore(ByteStoreContract):
    __test__ = True

    @pytest.fixture
    def blobs(self, tmp_path: Path) -> ByteStore:
        return LocalByteStore(tmp_path / "blobs")

    def test_put_moves_a_file_on_the_same_disk(self, tmp_path: Path) -> None:
        blobs = LocalByteStore(tmp_path / "blobs")
        src = _write(tmp_path / "src", b"moved")
        inode = src.stat().st_ino
        blobs.put_file("k", src)
        assert not src.exists()
        stored = blobs.local_path("k")
        assert stored == tmp_path / "blobs" / "k"
        assert stored.stat().st_ino == inode
        assert stored.stat().st_mode & 0o777 == 0o644

    def test_put_copies_across_file_systems(self, tmp_path: Path) -> None:
        """A file on another device is copied to a temp name next to the target and renamed."""
        other = Path("/dev/shm")
        if not other.is_dir() or other.stat().st_dev == tmp_path.stat().st_dev:
            pytest.skip("needs a second file system (/dev/shm) to copy across")
        blobs = LocalByteStore(tmp_path / "blobs")
        with tempfile.TemporaryDirectory(dir=other) as elsewhere:
            src = _write(Path(elsewhere) / "src", b"copied")
            blobs.put_file("d/k", src)
            assert src.read_bytes() == b"copied"  # a copy leaves the source alone
        assert (tmp_path / "blobs" / "d" / "k").read_bytes() == b"copied"
        assert [p.name for p in (tmp_path / "blobs" / "d").iterdir()] == ["k"]

    def test_rename_refused_across_mounts_falls_back_to_copy(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Same device but a different mount (a bind mount): rename fails with EXDEV."""
        real_replace = os.replace
        src = _write(tmp_path / "src", b"copied")

        def replace(a: object, b: object) -> None:
            if Path(str(a)) == src:
                _exdev()
            real_replace(a, b)  # type: ignore[arg-type]

        monkeypatch.setattr(os, "replace", replace)
        blobs = LocalByteStore(tmp_path / "blobs")
        blobs.put_file("d/k", src)
        assert (tmp_path / "blobs" / "d" / "k").read_bytes() == b"copied"
        assert [p.name for p in (tmp_path / "blobs" / "d").iterdir()] == ["k"]

    def test_failed_copy_leaves_no_temp_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import shipyard.artifacts.local as local

        def broken_copy(*a: object, **k: object) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(local.shutil, "copyfileobj", broken_copy)
        monkeypatch.setattr(local.os, "replace", _exdev)
        blobs = LocalByteStore(tmp_path / "blobs")
        with pytest.raises(StoreUnavailable, match="No space left on device"):
            blobs.put_file("d/k", _write(tmp_path / "src", b"x"))
        assert list((tmp_path / "blobs" / "d").iterdir()) == []
        assert (tmp_path / "src").exists()

    def test_temp_files_are_not_listed(self, tmp_path: Path) -> None:
        blobs = LocalByteStore(tmp_path / "blobs")
        blobs.put_file("d/k", _write(tmp_path / "src", b"x"))
        (tmp_path / "blobs" / "d" / f".shipyard-tmp-{'0' * 32}").write_bytes(b"partial")
        assert [i.key for i in blobs.list()] == ["d/k"]

    @pytest.mark.parametrize(
        ("key", "error"),
        [
            ("../escape", InvalidArtifactPath),
            ("/abs", InvalidArtifactPath),
            ("a//b", InvalidArtifactPath),
            (f"d/.shipyard-tmp-{'0' * 32}", InvalidInput),
        ],
    )
    def test_keys_stay_inside_the_root(
        self, tmp_path: Path, key: str, error: type[Exception]
    ) -> None:
        blobs = LocalByteStore(tmp_path / "blobs")
        with pytest.raises(error):
            blobs.put_file(key, _write(tmp_path / "src", b"x"))
        assert not (tmp_path / "escape").exists()
        assert list(blobs.list()) == []

    def test_local_path_of_missing_blob(self, tmp_path: Path) -> None:
        assert LocalByteStore(tmp_path).local_path("nope") is None

    def test_missing_root_lists_nothing(self, tmp_path: Path) -> None:
        assert list(LocalByteStore(tmp_path / "absent").list()) == []


def _exdev(*a: object, **k: object) -> None:
    raise OSError(18, "Invalid cross-device link")


@pytest.mark.s3
class TestS3ByteStore(ByteStoreContract):
    __test__ = True

    @pytest.fixture(params=["", "some/prefix"], ids=["bucket-root", "prefix"])
    def blobs(
        self, request: pytest.FixtureRequest, s3_bucket: str, moto_endpoint: str
    ) -> Iterator[ByteStore]:
        prefix = request.param
        store = S3ByteStore(f"s3://{s3_bucket}/{prefix}", endpoint_url=moto_endpoint)
        yield store
        store.close()

    def test_prefix_isolates_stores(
        self, s3_bucket: str, moto_endpoint: str, tmp_path: Path
    ) -> None:
        a = S3ByteStore(f"s3://{s3_bucket}/a", endpoint_url=moto_endpoint)
        ab = S3ByteStore(f"s3://{s3_bucket}/ab", endpoint_url=moto_endpoint)
        a.put_file("k", _write(tmp_path / "src", b"x"))
        assert [i.key for i in a.list()] == ["k"]
        assert list(ab.list()) == []
        assert not ab.exists("k")

    def test_multipart_upload(
        self, s3_bucket: str, moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import shipyard.artifacts.s3 as s3

        monkeypatch.setattr(s3, "MULTIPART_THRESHOLD", 5 * 1024 * 1024)
        monkeypatch.setattr(s3, "MULTIPART_CHUNK_SIZE", 5 * 1024 * 1024)
        store = S3ByteStore(f"s3://{s3_bucket}", endpoint_url=moto_endpoint)
        data = os.urandom(12 * 1024 * 1024 + 3)
        store.put_file("big", _write(tmp_path / "src", data))
        head = store._client.head_object(Bucket=s3_bucket, Key="big")
        assert head["ETag"].strip('"').endswith("-3")  # three parts
        assert b"".join(store.iter_bytes("big")) == data

    def test_missing_bucket_says_create_it(
        self, moto_endpoint: str, aws_env: None, tmp_path: Path
    ) -> None:
        store = S3ByteStore("s3://no-such-bucket/p", endpoint_url=moto_endpoint)
        with pytest.raises(StoreUnavailable, match=r"does not exist.*create it"):
            store.put_file("k", _write(tmp_path / "src", b"x"))
        with pytest.raises(StoreUnavailable, match=r"does not exist.*create it"):
            store.open("k")
        with pytest.raises(StoreUnavailable, match=r"does not exist.*create it"):
            list(store.list())

    def test_unreachable_endpoint(self, aws_env: None) -> None:
        import boto3
        from botocore.config import Config

        from tests.conftest import free_port

        endpoint = f"http://127.0.0.1:{free_port()}"
        store = S3ByteStore("s3://b", endpoint_url=endpoint)
        store._client = boto3.client(  # no retries, so the test is quick
            "s3", endpoint_url=endpoint, config=Config(retries={"max_attempts": 1})
        )
        with pytest.raises(StoreUnavailable, match="cannot reach the S3 service"):
            store.exists("k")
