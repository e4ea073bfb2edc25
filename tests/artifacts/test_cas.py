"""The content-addressed artifact repository over a local byte store and the metadata index."""

from __future__ import annotations

import hashlib
import io
import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

import pytest

from shipyard.artifacts.base import CHUNK_SIZE
from shipyard.artifacts.cas import ContentAddressedRepository, blob_key, digest_of_key
from shipyard.artifacts.local import LocalByteStore
from shipyard.entities import ArtifactInfo
from shipyard.errors import Conflict, InvalidArtifactPath, InvalidInput, NotFound
from shipyard.store.sql import SqlTrackingStore
from tests.artifacts.helpers import open_tracking_store

MiB = 1024 * 1024


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlTrackingStore]:
    s = open_tracking_store(tmp_path)
    yield s
    s.close()


@pytest.fixture
def repo(store: SqlTrackingStore, tmp_path: Path) -> ContentAddressedRepository:
    return ContentAddressedRepository(
        store, LocalByteStore(tmp_path / "artifacts"), tmp_path / "tmp"
    )


@pytest.fixture
def run_id(store: SqlTrackingStore) -> str:
    return str(store.create_run(store.create_experiment("cas")).info.run_id)


@pytest.fixture
def other_run_id(store: SqlTrackingStore) -> str:
    return str(store.create_run(store.create_experiment("cas-other")).info.run_id)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def blob_digests(repo: ContentAddressedRepository) -> list[str]:
    return sorted(d for d, _ in repo.iter_blobs())


def read(repo: ContentAddressedRepository, owner: str, path: str) -> bytes:
    with repo.open(owner, path) as f:
        return f.read()


class FailingStream(io.RawIOBase):
    """Yields ``ok_bytes`` of data, then fails the way a dropped connection would."""

    def __init__(self, ok_bytes: int) -> None:
        self.left = ok_bytes

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            raise ConnectionResetError("client went away")
        chunk = b"x" * min(n, self.left)
        self.left -= len(chunk)
        return chunk


class GeneratedStream(io.RawIOBase):
    """``size`` bytes made on the fly, answering each ``read(n)`` with ``n`` bytes like a file
    would; reads of up to one block reuse a single block, so the stream itself holds ~1 MiB."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.block = os.urandom(CHUNK_SIZE)
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        if n <= len(self.block):
            chunk = self.block[:n]  # the block itself when n is the block size
        else:
            whole, part = divmod(n, len(self.block))
            chunk = self.block * whole + self.block[:part]
        self.left -= n
        self.digest.update(chunk)
        return chunk


# ---------------------------------------------------------------- keys


def test_blob_keys_fan_out_by_digest() -> None:
    d = sha(b"x")
    assert blob_key(d) == f"sha256/{d[:2]}/{d[2:4]}/{d}"
    assert digest_of_key(blob_key(d)) == d
    assert digest_of_key(f"sha256/00/00/{d}") is None  # not where this digest belongs
    assert digest_of_key("other/key") is None
    with pytest.raises(InvalidInput, match="not a sha256 digest"):
        blob_key("../../etc")


# ---------------------------------------------------------------- round trips


def test_upload_then_read_stat_and_list(repo: ContentAddressedRepository, run_id: str) -> None:
    info = repo.upload(run_id, "model/weights.bin", io.BytesIO(b"weights"))
    assert info == ArtifactInfo("model/weights.bin", False, 7, sha(b"weights"))
    repo.upload(run_id, "./README.md", io.BytesIO(b"readme"))
    repo.upload(run_id, "model/conf/a.json", io.BytesIO(b"{}"))

    assert read(repo, run_id, "model/weights.bin") == b"weights"
    assert repo.stat(run_id, "model/weights.bin") == info
    assert repo.list(run_id) == [
        ArtifactInfo("README.md", False, 6, sha(b"readme")),
        ArtifactInfo("model", True),
    ]
    assert repo.list(run_id, "model/") == [info, ArtifactInfo("model/conf", True)]
    assert repo.list(run_id, "model/weights.bin") == []
    assert repo.list(run_id, "nothing/here") == []


def test_empty_file(repo: ContentAddressedRepository, run_id: str) -> None:
    info = repo.upload(run_id, "empty", io.BytesIO(b""))
    assert (info.file_size, info.digest) == (0, sha(b""))
    assert read(repo, run_id, "empty") == b""


def test_missing_artifact(repo: ContentAddressedRepository, run_id: str) -> None:
    with pytest.raises(NotFound):
        repo.open(run_id, "nope")
    with pytest.raises(NotFound):
        repo.stat(run_id, "nope")


def test_indexed_file_whose_bytes_vanished(repo: ContentAddressedRepository, run_id: str) -> None:
    repo.upload(run_id, "f", io.BytesIO(b"data"))
    repo.blobs.delete(blob_key(sha(b"data")))
    with pytest.raises(NotFound, match=r"bytes .* are missing"):
        repo.open(run_id, "f")


def test_upload_file_dir_and_download(
    repo: ContentAddressedRepository, run_id: str, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"a")
    (src / "sub" / "b.txt").write_bytes(b"b")
    repo.upload_dir(run_id, "bundle", src)
    assert (src / "a.txt").read_bytes() == b"a"  # the source files are left in place
    repo.upload_file(run_id, "single.txt", src / "a.txt")

    out = repo.download(run_id, "bundle", tmp_path / "out")
    assert (out / "a.txt").read_bytes() == b"a"
    assert (out / "sub" / "b.txt").read_bytes() == b"b"
    assert (repo.download(run_id, "single.txt", tmp_path / "one")).read_bytes() == b"a"

    with pytest.raises(InvalidInput, match="is a folder"):
        repo.upload_file(run_id, "x", src)
    with pytest.raises(NotFound, match="does not exist"):
        repo.upload_file(run_id, "x", src / "absent")


def test_local_path_points_at_the_blob(repo: ContentAddressedRepository, run_id: str) -> None:
    repo.upload(run_id, "f", io.BytesIO(b"local"))
    path = repo.local_path(run_id, "f")
    assert path is not None
    assert path.read_bytes() == b"local"
    assert path.name == sha(b"local")


# ---------------------------------------------------------------- dedupe and freeing


def test_same_content_is_stored_once(
    repo: ContentAddressedRepository, run_id: str, other_run_id: str
) -> None:
    repo.upload(run_id, "a.bin", io.BytesIO(b"same"))
    repo.upload(run_id, "copy/b.bin", io.BytesIO(b"same"))
    repo.upload(other_run_id, "c.bin", io.BytesIO(b"same"))
    assert blob_digests(repo) == [sha(b"same")]
    assert repo.local_path(run_id, "a.bin") == repo.local_path(other_run_id, "c.bin")


def test_delete_frees_only_unreferenced_bytes(
    repo: ContentAddressedRepository, run_id: str, other_run_id: str
) -> None:
    repo.upload(run_id, "dir/shared", io.BytesIO(b"shared"))
    repo.upload(run_id, "dir/own", io.BytesIO(b"own"))
    repo.upload(run_id, "keep", io.BytesIO(b"keep"))
    repo.upload(other_run_id, "shared", io.BytesIO(b"shared"))

    repo.delete(run_id, "dir")
    assert repo.list(run_id) == [ArtifactInfo("keep", False, 4, sha(b"keep"))]
    assert blob_digests(repo) == sorted([sha(b"shared"), sha(b"keep")])
    assert read(repo, other_run_id, "shared") == b"shared"

    repo.delete(run_id)  # the whole run
    assert repo.list(run_id) == []
    assert blob_digests(repo) == [sha(b"shared")]


def test_free_returns_bytes_of_unreferenced_blobs_only(
    repo: ContentAddressedRepository, store: SqlTrackingStore, run_id: str, other_run_id: str
) -> None:
    repo.upload(run_id, "a", io.BytesIO(b"aaaa"))
    repo.upload(run_id, "b", io.BytesIO(b"bb"))
    repo.upload(other_run_id, "b", io.BytesIO(b"bb"))
    digests = store.delete_artifacts(run_id)  # the index forgets; the bytes are still there
    assert digests == {sha(b"aaaa"), sha(b"bb")}

    assert repo.free(digests) == 4  # 'bb' is still used by the other run
    assert blob_digests(repo) == [sha(b"bb")]
    assert repo.free(digests) == 0  # freeing again is harmless
    assert repo.free(set()) == 0


def test_overwrite_frees_the_old_content(
    repo: ContentAddressedRepository, run_id: str, other_run_id: str
) -> None:
    repo.upload(run_id, "f", io.BytesIO(b"v1"))
    repo.upload(run_id, "f", io.BytesIO(b"v2"))
    assert read(repo, run_id, "f") == b"v2"
    assert blob_digests(repo) == [sha(b"v2")]

    repo.upload(other_run_id, "g", io.BytesIO(b"v2"))
    repo.upload(run_id, "f", io.BytesIO(b"v3"))
    assert blob_digests(repo) == sorted([sha(b"v2"), sha(b"v3")])


# ---------------------------------------------------------------- path rules


@pytest.mark.parametrize("path", ["../x", "/abs", "a/../../b", "", "a\\b"])
def test_invalid_paths_store_nothing(
    repo: ContentAddressedRepository, run_id: str, path: str
) -> None:
    with pytest.raises(InvalidArtifactPath):
        repo.upload(run_id, path, io.BytesIO(b"x"))
    assert repo.list(run_id) == []
    assert blob_digests(repo) == []
    with pytest.raises(InvalidArtifactPath):
        repo.list(run_id, "../")
    with pytest.raises(InvalidArtifactPath):
        repo.delete(run_id, "..")


def test_a_folder_cannot_become_a_file(repo: ContentAddressedRepository, run_id: str) -> None:
    repo.upload(run_id, "model/weights.bin", io.BytesIO(b"w"))
    with pytest.raises(Conflict, match=r"'model' of .* is a folder"):
        repo.upload(run_id, "model", io.BytesIO(b"x"))
    with pytest.raises(Conflict, match=r"'model/weights\.bin' is a file"):
        repo.upload(run_id, "model/weights.bin/extra", io.BytesIO(b"x"))
    assert blob_digests(repo) == [sha(b"w")]


def test_text_mode_source_is_refused(
    repo: ContentAddressedRepository, run_id: str, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInput, match="binary mode"):
        repo.upload(run_id, "t", io.StringIO("text"))  # type: ignore[arg-type]
    assert list((tmp_path / "tmp").iterdir()) == []


# ---------------------------------------------------------------- failures and races


def test_failing_source_leaves_nothing_behind(
    repo: ContentAddressedRepository, run_id: str, tmp_path: Path
) -> None:
    with pytest.raises(ConnectionResetError):
        repo.upload(run_id, "big.bin", cast(BinaryIO, FailingStream(5 * MiB + 123)))
    with pytest.raises(NotFound):
        repo.stat(run_id, "big.bin")
    assert repo.list(run_id) == []
    assert blob_digests(repo) == []
    assert list((tmp_path / "tmp").iterdir()) == []


def test_failed_indexing_frees_the_new_blob(
    repo: ContentAddressedRepository,
    store: SqlTrackingStore,
    run_id: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo.upload(run_id, "kept", io.BytesIO(b"old"))

    def refuse(*a: object) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(store, "record_artifact", refuse)
    with pytest.raises(RuntimeError, match="database went away"):
        repo.upload(run_id, "new", io.BytesIO(b"new"))
    with pytest.raises(RuntimeError):
        repo.upload(run_id, "dup", io.BytesIO(b"old"))  # existing content must survive
    assert blob_digests(repo) == [sha(b"old")]
    assert list((tmp_path / "tmp").iterdir()) == []


def test_blob_removed_by_a_concurrent_free_is_put_back(
    repo: ContentAddressedRepository,
    store: SqlTrackingStore,
    run_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another process frees the same content between our put and our index write."""
    record = store.record_artifact

    def record_after_concurrent_free(owner: str, path: str, digest: str, size: int) -> ArtifactInfo:
        repo.blobs.delete(blob_key(digest))
        return record(owner, path, digest, size)

    monkeypatch.setattr(store, "record_artifact", record_after_concurrent_free)
    repo.upload(run_id, "f", io.BytesIO(b"racy"))
    assert read(repo, run_id, "f") == b"racy"

    repo.upload(run_id, "g", io.BytesIO(b"racy"))  # the deduplicated path too
    assert read(repo, run_id, "g") == b"racy"


# ---------------------------------------------------------------- memory


def test_large_upload_and_download_use_constant_memory(
    repo: ContentAddressedRepository, run_id: str, tmp_path: Path
) -> None:
    size = 64 * MiB
    repo.upload(run_id, "warm-up", io.BytesIO(b"w"))  # first-use caches are not the upload's
    source = GeneratedStream(size)
    tracemalloc.start()
    try:
        info = repo.upload(run_id, "big.bin", cast(BinaryIO, source))
        _, upload_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        digest = hashlib.sha256()
        with repo.open(run_id, "big.bin") as f:
            while chunk := f.read(CHUNK_SIZE):
                digest.update(chunk)
        _, download_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.file_size == size
    assert info.digest == source.digest.hexdigest() == digest.hexdigest()
    assert upload_peak < 4 * MiB, f"upload peaked at {upload_peak / MiB:.1f} MiB"
    assert download_peak < 4 * MiB, f"download peaked at {download_peak / MiB:.1f} MiB"
    assert list((tmp_path / "tmp").iterdir()) == []


# ---------------------------------------------------------------- the same layer over S3


@pytest.mark.s3
def test_content_addressed_artifacts_on_s3(
    store: SqlTrackingStore,
    run_id: str,
    other_run_id: str,
    s3_bucket: str,
    moto_endpoint: str,
    tmp_path: Path,
) -> None:
    from shipyard.artifacts.s3 import S3ByteStore

    blobs = S3ByteStore(f"s3://{s3_bucket}/artifacts", endpoint_url=moto_endpoint)
    repo = ContentAddressedRepository(store, blobs, tmp_path / "tmp")
    data = os.urandom(3 * MiB + 5)
    repo.upload(run_id, "model/weights.bin", io.BytesIO(data))
    repo.upload(other_run_id, "same.bin", io.BytesIO(data))
    repo.upload(run_id, "small.txt", io.BytesIO(b"small"))

    assert read(repo, run_id, "model/weights.bin") == data
    assert blob_digests(repo) == sorted([sha(data), sha(b"small")])
    assert repo.local_path(run_id, "small.txt") is None

    repo.delete(run_id)
    assert blob_digests(repo) == [sha(data)]
    assert read(repo, other_run_id, "same.bin") == data
    assert list((tmp_path / "tmp").iterdir()) == []
    repo.close()
