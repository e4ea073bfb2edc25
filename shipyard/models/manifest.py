"""The model package's manifest, ``shipyard-model.json``, and the package's content hash.

A model package is a folder::

    shipyard-model.json      this manifest (written last)
    requirements.txt         the pinned requirements, one a line
    input_example.json       optional
    <flavor files>           model.pkl, model.ubj, model.onnx ...

The manifest (format version 1)::

    {
      "format_version": 1,
      "shipyard_version": "0.1.0",
      "created_at": "2025-01-01T00:00:00+00:00",
      "python_version": "3.11.9",
      "predict_flavor": "sklearn",
      "flavors": {"sklearn": {"data": "model.pkl", "library_versions": {"sklearn": "1.5.0"},
                              "runs_code_on_load": true, ...}},
      "signature": {"inputs": {...}, "outputs": {...}} | null,
      "input_example": "input_example.json" | null,
      "requirements": ["scikit-learn==1.5.0", "numpy==2.0.0", ...],
      "metadata": {"run_id": ..., "metrics": {...}, "datasets": [...], ...},
      "content": {"sha256": "...", "size": 1234, "files": {"model.pkl": {"sha256": ..., "size": ...}}}
    }

The content hash covers every file but the manifest: sha256 over ``path\\0sha256\\0size\\n`` of
each file, in sorted path order, so it is stable across machines and file systems.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInput, NotFound
from shipyard.models.signature import Signature

MANIFEST = "shipyard-model.json"
FORMAT_VERSION = 1
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Manifest:
    """What ``shipyard-model.json`` says about a package."""

    predict_flavor: str
    flavors: dict[str, dict[str, Any]]
    signature: Signature | None = None
    input_example: str | None = None
    python_version: str = ""
    requirements: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    content: dict[str, Any] = field(default_factory=dict)
    shipyard_version: str = ""
    created_at: str = ""
    format_version: int = FORMAT_VERSION

    @property
    def content_hash(self) -> str:
        return str(self.content.get("sha256", ""))

    @property
    def size(self) -> int:
        return int(self.content.get("size", 0))

    @property
    def runs_code_on_load(self) -> bool:
        return bool(self.flavors[self.predict_flavor].get("runs_code_on_load"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "shipyard_version": self.shipyard_version,
            "created_at": self.created_at,
            "python_version": self.python_version,
            "predict_flavor": self.predict_flavor,
            "flavors": self.flavors,
            "signature": self.signature.to_dict() if self.signature else None,
            "input_example": self.input_example,
            "requirements": list(self.requirements),
            "metadata": self.metadata,
            "content": self.content,
        }

    def write(self, folder: Path) -> None:
        (folder / MANIFEST).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False))

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str = "the manifest") -> Manifest:
        try:
            version = int(raw["format_version"])
            if version > FORMAT_VERSION:
                raise InvalidInput(
                    f"{where} has format version {version}, newer than this Shipyard reads "
                    f"({FORMAT_VERSION}); upgrade Shipyard to load it."
                )
            flavors = {str(k): dict(v) for k, v in raw["flavors"].items()}
            predict_flavor = str(raw["predict_flavor"])
            if predict_flavor not in flavors:
                raise KeyError(f"flavors.{predict_flavor}")
            sig = raw.get("signature")
            return cls(
                predict_flavor=predict_flavor,
                flavors=flavors,
                signature=Signature.from_dict(sig) if sig else None,
                input_example=raw.get("input_example"),
                python_version=str(raw.get("python_version", "")),
                requirements=tuple(raw.get("requirements", ())),
                metadata=dict(raw.get("metadata") or {}),
                content=dict(raw.get("content") or {}),
                shipyard_version=str(raw.get("shipyard_version", "")),
                created_at=str(raw.get("created_at", "")),
                format_version=version,
            )
        except InvalidInput:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidInput(
                f"{where} is not a valid Shipyard model manifest ({type(exc).__name__}: {exc}). "
                "The package is damaged or was not written by Shipyard; save or log the model "
                "again."
            ) from None

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        """Read ``folder/shipyard-model.json``; NotFound or InvalidInput with a clear reason."""
        path = folder / MANIFEST
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise NotFound(
                f"{folder} is not a Shipyard model package: it has no {MANIFEST}. Pass the "
                "folder written by shipyard.save_model (or a runs:/ or models:/ URI)."
            ) from None
        return cls.parse(text, str(path))

    @classmethod
    def parse(cls, text: str | bytes, where: str) -> Manifest:
        try:
            raw = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidInput(
                f"{where} is not valid JSON ({exc}). The package is damaged; save or log the "
                "model again."
            ) from None
        if not isinstance(raw, dict):
            raise InvalidInput(f"{where} is not a JSON object; the package is damaged.")
        return cls.from_dict(raw, where)


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def content_of(folder: Path) -> dict[str, Any]:
    """Size, per-file digests and the package hash of every file in ``folder`` but the
    manifest."""
    files: dict[str, dict[str, Any]] = {}
    for p in sorted(folder.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(folder).as_posix()
        if rel == MANIFEST:
            continue
        files[rel] = {"sha256": file_digest(p), "size": p.stat().st_size}
    return {
        "sha256": package_hash(files),
        "size": sum(int(f["size"]) for f in files.values()),
        "files": files,
    }


def package_hash(files: Mapping[str, Mapping[str, Any]]) -> str:
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(f"{rel}\0{files[rel]['sha256']}\0{files[rel]['size']}\n".encode())
    return h.hexdigest()


def verify(folder: Path, manifest: Manifest) -> None:
    """Raise InvalidInput naming the first file whose bytes differ from the manifest."""
    actual = content_of(folder)
    if actual["sha256"] == manifest.content_hash:
        return
    expected = manifest.content.get("files", {})
    for rel in sorted(set(expected) | set(actual["files"])):
        if expected.get(rel) != actual["files"].get(rel):
            state = (
                "is missing"
                if rel not in actual["files"]
                else "is not in the manifest"
                if rel not in expected
                else "differs from the manifest"
            )
            raise InvalidInput(
                f"Model package {folder}: file {rel!r} {state} (content hash check failed). "
                "The package is damaged; log the model again."
            )
    raise InvalidInput(f"Model package {folder}: content hash check failed.")
