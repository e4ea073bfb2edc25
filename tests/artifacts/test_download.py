"""Downloading a folder trusts no listing: a path outside the folder is refused, and a failed
copy leaves no temporary file behind."""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import pytest

from shipyard.artifacts.base import ArtifactRepository
from shipyard.entities import ArtifactInfo
from shipyard.errors import InvalidArtifactPath, StoreUnavailable


class _Listing(ArtifactRepository):
    """A repository whose listing and bytes are whatever the test says (a server that lies)."""

    def __init__(self, listing: dict[str, list[ArtifactInfo]], fail: bool = False) -> None:
        self.listing = listing
        self.fail = fail

    def list(self, owner: str, path: str = "") -> list[ArtifactInfo]:
        return self.listing.get(path, [])

    def open(self, owner: str, path: str) -> BinaryIO:
        if self.fail:

            class _Broken(io.BytesIO):
                def read(self, size: int | None = -1) -> bytes:
                    raise StoreUnavailable("the connection dropped")

            return _Broken()
        return io.BytesIO(f"bytes of {path}".encode())

    def upload(self, owner: str, path: str, src: BinaryIO) -> ArtifactInfo:
        raise NotImplementedError

    def upload_file(self, owner: str, path: str, local_path: Path) -> ArtifactInfo:
        raise NotImplementedError

    def stat(self, owner: str, path: str) -> ArtifactInfo:
        raise NotImplementedError

    def delete(self, owner: str, path: str = "") -> None:
        raise NotImplementedError

    def free(self, digests: set[str]) -> int:
        raise NotImplementedError


def test_a_listing_naming_a_path_outside_the_folder_writes_nothing_outside(
    tmp_path: Path,
) -> None:
    repo = _Listing({"model": [ArtifactInfo("model/../../../escaped.txt", False, 3)]})
    dest = tmp_path / "dest" / "deeper"
    with pytest.raises(InvalidArtifactPath):
        repo.download("run", "model", dest)
    assert not list(tmp_path.rglob("escaped.txt"))


def test_a_listing_naming_a_sibling_folder_is_refused(tmp_path: Path) -> None:
    repo = _Listing({"model": [ArtifactInfo("model-other/x.txt", False, 3)]})
    with pytest.raises(InvalidArtifactPath, match="not inside it"):
        repo.download("run", "model", tmp_path)


def test_a_folder_downloads_with_a_dot_slash_path(tmp_path: Path) -> None:
    repo = _Listing({"model": [ArtifactInfo("model/weights.bin", False, 3)]})
    root = repo.download("run", "./model/", tmp_path)
    assert root == tmp_path / "model"
    assert (root / "weights.bin").read_bytes() == b"bytes of model/weights.bin"


def test_a_failed_copy_leaves_no_partial_file(tmp_path: Path) -> None:
    repo = _Listing({}, fail=True)
    with pytest.raises(StoreUnavailable):
        repo.download("run", "model.bin", tmp_path)
    assert list(tmp_path.iterdir()) == []
