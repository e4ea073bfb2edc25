"""Artifact paths: the one place that decides whether a path stays inside its run.

An artifact path is relative and POSIX-style (``model/weights.bin``). It names a file or folder
below the owner's artifact root and nothing else: every path that could point elsewhere once it
is joined to a folder on some machine (``..``, ``/etc/passwd``, ``C:\\x``, ``a\\..\\b``) is
refused with :class:`~shipyard.errors.InvalidArtifactPath` rather than repaired, so what is stored
is always what the caller meant.

Only harmless spellings are normalised: a leading ``./``, ``.`` segments and one trailing ``/``.
"""

from __future__ import annotations

import re
import unicodedata

from shipyard.errors import InvalidArtifactPath

MAX_ARTIFACT_PATH_LENGTH = 1024
"""Longest accepted path, in characters (the width of the index's ``path`` column)."""

_EXAMPLE = "'model/weights.bin'"
_DRIVE_RE = re.compile(r"^[A-Za-z]:")


def clean_path(path: str, *, allow_root: bool = False) -> str:
    """Check an artifact path and return it normalised.

    ``allow_root`` accepts ``""`` (and ``"."``, ``"./"``) as the owner's root folder, returned as
    ``""``; without it an empty path is an error. Raises
    :class:`~shipyard.errors.InvalidArtifactPath` saying what is wrong and how to write it.
    """
    if not isinstance(path, str):
        raise InvalidArtifactPath(
            f"artifact path must be a string, got {type(path).__name__} {path!r}; "
            f"pass a relative path such as {_EXAMPLE}."
        )
    if "\x00" in path:
        raise InvalidArtifactPath(
            f"artifact path {path!r} contains a NUL character, which no file system accepts; "
            "remove it."
        )
    for ch in path:
        if unicodedata.category(ch) == "Cc":
            raise InvalidArtifactPath(
                f"artifact path {path!r} contains the control character {ch!r}; "
                "use printable characters only."
            )
    if len(path) > MAX_ARTIFACT_PATH_LENGTH:
        raise InvalidArtifactPath(
            f"artifact path {path[:40]!r}... is {len(path)} characters long; the limit is "
            f"{MAX_ARTIFACT_PATH_LENGTH}. Use shorter folder and file names."
        )
    if "\\" in path:
        raise InvalidArtifactPath(
            f"artifact path {path!r} contains a backslash; separate folders with '/', "
            f"as in {_EXAMPLE}."
        )
    if path.startswith("/"):
        raise InvalidArtifactPath(
            f"artifact path {path!r} is absolute; use a path relative to the run's artifact "
            f"folder, such as {_EXAMPLE}."
        )
    if _DRIVE_RE.match(path):
        raise InvalidArtifactPath(
            f"artifact path {path!r} starts with a drive letter, which leaves the run's artifact "
            f"folder on Windows; use a path relative to it, such as {_EXAMPLE}."
        )

    segments = path.split("/")
    if len(segments) > 1 and segments[-1] == "":
        segments.pop()  # one trailing slash names the same folder
    kept: list[str] = []
    for segment in segments:
        if segment == "..":
            raise InvalidArtifactPath(
                f"artifact path {path!r} leaves the run's artifact folder; use a path relative "
                f"to it, such as {_EXAMPLE}."
            )
        if segment == "":
            if not path:
                break
            raise InvalidArtifactPath(
                f"artifact path {path!r} has an empty folder name ('//'); "
                "write each '/' once, as in 'model/weights.bin'."
            )
        if segment != ".":
            kept.append(segment)

    cleaned = "/".join(kept)
    if not cleaned and not allow_root:
        raise InvalidArtifactPath(
            f"artifact path {path!r} names the run's artifact folder itself, not a file; "
            f"give a file path such as {_EXAMPLE}."
        )
    return cleaned
