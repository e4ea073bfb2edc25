from __future__ import annotations

import pytest

from shipyard.artifacts.paths import MAX_ARTIFACT_PATH_LENGTH, clean_path
from shipyard.errors import InvalidArtifactPath, InvalidInput


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("model.pkl", "model.pkl"),
        ("model/weights.bin", "model/weights.bin"),
        ("./model/weights.bin", "model/weights.bin"),
        ("././a", "a"),
        ("a/./b", "a/b"),
        ("model/", "model"),
        ("..a/b..", "..a/b.."),  # dots inside a name are just characters
        (".hidden/.x", ".hidden/.x"),
        ("with space/ünïcode €.txt", "with space/ünïcode €.txt"),
        ("a" * MAX_ARTIFACT_PATH_LENGTH, "a" * MAX_ARTIFACT_PATH_LENGTH),
    ],
)
def test_accepts_and_normalises_relative_paths(raw: str, expected: str) -> None:
    assert clean_path(raw) == expected


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("..", "leaves the run's artifact folder"),
        ("../x", "leaves the run's artifact folder"),
        ("a/../../b", "leaves the run's artifact folder"),
        ("a/..", "leaves the run's artifact folder"),
        ("a/../b", "leaves the run's artifact folder"),  # not silently collapsed to 'b'
        ("/etc/passwd", "is absolute"),
        ("/", "is absolute"),
        ("a\\b", "backslash"),
        ("..\\x", "backslash"),
        ("C:\\x", "backslash"),
        ("C:/x", "drive letter"),
        ("c:x", "drive letter"),
        ("a\x00b", "NUL"),
        ("a\nb", "control character"),
        ("a\x1bb", "control character"),
        ("a\x7fb", "control character"),
        ("a//b", "empty folder name"),
        ("a/b//", "empty folder name"),
        ("", "artifact folder itself"),
        (".", "artifact folder itself"),
        ("./", "artifact folder itself"),
        ("a" * (MAX_ARTIFACT_PATH_LENGTH + 1), "characters long"),
    ],
)
def test_rejects_paths_that_could_escape_or_mislead(raw: str, why: str) -> None:
    with pytest.raises(InvalidArtifactPath, match=why) as err:
        clean_path(raw)
    assert err.value.code == "INVALID_ARTIFACT_PATH"
    assert isinstance(err.value, InvalidInput)


def test_message_says_why_and_what_to_do() -> None:
    with pytest.raises(InvalidArtifactPath) as err:
        clean_path("../x")
    assert str(err.value) == (
        "artifact path '../x' leaves the run's artifact folder; use a path relative to it, "
        "such as 'model/weights.bin'."
    )


@pytest.mark.parametrize("root", ["", ".", "./"])
def test_root_is_allowed_only_when_asked(root: str) -> None:
    assert clean_path(root, allow_root=True) == ""


def test_allow_root_still_rejects_escapes() -> None:
    with pytest.raises(InvalidArtifactPath):
        clean_path("..", allow_root=True)
    with pytest.raises(InvalidArtifactPath):
        clean_path("/", allow_root=True)


def test_rejects_non_strings() -> None:
    with pytest.raises(InvalidArtifactPath, match="must be a string"):
        clean_path(b"a/b")  # type: ignore[arg-type]
