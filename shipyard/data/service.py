"""The datasets service: register content-addressed versions, read them back, profile, validate.

:class:`Datasets` works on a :class:`~shipyard.workspace.Workspace`: metadata in its dataset store,
bytes in its content-addressed artifact store. Registering streams each file twice (once to hash
it, which decides whether the content is new, once into the byte store if it is) and profiles
the rows a batch at a time; nothing is loaded whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.data.sources import Source, file_digest, open_source
from shipyard.errors import InvalidInput, NotFound, ShipyardError
from shipyard.store.datasets import DatasetStore, NewVersion, VersionFile

if TYPE_CHECKING:
    from shipyard.artifacts.cas import ContentAddressedRepository
    from shipyard.data.profile import Profile, ProfileDiff
    from shipyard.data.schema import Schema
    from shipyard.data.validate import ValidationReport
    from shipyard.entities import DatasetVersion, RegisteredDataset
    from shipyard.workspace import Workspace


def tree_digest(files: list[VersionFile]) -> str:
    """The content digest of a version: its file's sha256, or for several files the sha256 of
    their sorted ``path digest`` lines."""
    if len(files) == 1:
        return files[0].digest
    lines = "".join(f"{f.path} {f.digest}\n" for f in sorted(files, key=lambda f: f.path))
    return hashlib.sha256(lines.encode()).hexdigest()


class Datasets:
    """Registered datasets of one workspace."""

    def __init__(self, workspace: Workspace) -> None:
        self.ws = workspace

    @property
    def store(self) -> DatasetStore:
        return self.ws.datasets

    def _cas(self) -> ContentAddressedRepository:
        from shipyard.artifacts.cas import ContentAddressedRepository

        repo = self.ws.artifacts
        if not isinstance(repo, ContentAddressedRepository):
            raise ShipyardError(
                "Datasets need a direct database URI and artifact store for "
                "now; use a sqlite:/// or postgresql:// tracking URI (the server has no datasets "
                "API yet)."
            )
        return repo

    # ------------------------------------------------------------------ versions

    def register(
        self,
        name: str,
        data: Any,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        run_id: str | None = None,
        source_uri: str | None = None,
        user_id: str = "",
    ) -> tuple[DatasetVersion, bool]:
        """Register ``data`` as a version of ``name``; ``(version, created)``. The same content
        again returns the existing version with ``created`` False and stores nothing."""
        cas = self._cas()
        self.store  # noqa: B018 - fail early on a workspace without a dataset store
        if run_id is not None:
            self.ws.store.get_run(run_id)  # NotFound: a version must not name a run that is not
        with open_source(data, materialize=True, tmp_dir=cas.tmp_dir) as source:
            files = [VersionFile(rel, *file_digest(p)) for rel, p in source.files]
            digest = tree_digest(files)
            existing = self.store.find_version(name, digest)
            if existing is not None:
                return existing, False
            profile, schema = self._analyse(source)
            for f, (_, local) in zip(files, source.files, strict=True):
                self._put(cas, f.digest, local)
            version, created = self.store.create_version(
                name,
                NewVersion(
                    content_digest=digest,
                    format=source.format,
                    num_bytes=sum(f.size for f in files),
                    num_rows=profile.num_rows if profile else None,
                    num_columns=len(profile.columns) if profile else None,
                    source_uri=source_uri or source.uri,
                    run_id=run_id,
                    description=description,
                    tags=dict(tags or {}),
                    schema=json.dumps(schema.to_dict()) if schema else None,
                    profile=json.dumps(profile.to_dict(), allow_nan=False) if profile else None,
                ),
                files,
                user_id=user_id,
            )
            for f, (_, local) in zip(files, source.files, strict=True):
                # A concurrent free of the same content may have removed a blob: put it back.
                self._put(cas, f.digest, local)
            return version, created

    @staticmethod
    def _put(cas: ContentAddressedRepository, digest: str, local: Path) -> None:
        from shipyard.artifacts.cas import blob_key

        key = blob_key(digest)
        if cas.blobs.exists(key):
            return
        # The byte store may move the file it is given: hand it a copy, never the caller's
        # file (nor a hard link to it, which a later edit of that file would change).
        cas.tmp_dir.mkdir(parents=True, exist_ok=True)
        handoff = cas.tmp_dir / f"shipyard-data-{uuid.uuid4().hex}.put"
        try:
            shutil.copyfile(local, handoff)
            cas.blobs.put_file(key, handoff)
        finally:
            handoff.unlink(missing_ok=True)

    @staticmethod
    def _analyse(source: Source) -> tuple[Profile | None, Schema | None]:
        if not source.tabular:
            return None, None
        from shipyard.data.schema import infer_schema, unique_candidates

        profile = _profile_of(source)
        unique = set()
        for column in unique_candidates(profile):
            values = source.read_column(column)
            import pyarrow.compute as pc

            if pc.count_distinct(values).as_py() == len(values):
                unique.add(column)
        return profile, infer_schema(profile, unique)

    def get(self, name: str, version: int | None = None) -> DatasetVersion:
        return self.store.get_version(name, version)

    def list_datasets(self) -> list[RegisteredDataset]:
        return self.store.list_datasets()

    def versions(self, name: str) -> list[DatasetVersion]:
        return self.store.list_versions(name)

    def download(self, name: str, version: int | None, dest: Path) -> Path:
        """Copy a version's files into folder ``dest``; the folder."""
        v = self.get(name, version)
        cas = self._cas()
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        for info in self._files(cas, v.storage_owner):
            target = dest / info.path
            target.parent.mkdir(parents=True, exist_ok=True)
            with cas.open(v.storage_owner, info.path) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
        return dest

    def open(self, name: str, version: int | None = None) -> Any:
        """A version's rows as a ``pyarrow.dataset.Dataset`` read from the artifact store
        (lazily: scan it, or ``.to_table()`` to load it)."""
        import pyarrow.dataset as ds

        v = self.get(name, version)
        if v.format not in ("parquet", "csv"):
            raise InvalidInput(
                f"{v.uri} is a folder of files of mixed formats, not a table; download it with "
                f"`shipyard data get {name} --version {v.version} DEST`."
            )
        cas = self._cas()
        paths = [
            cas.local_path(v.storage_owner, info.path) for info in self._files(cas, v.storage_owner)
        ]
        if any(p is None for p in paths):
            raise ShipyardError(
                "reading a version in place needs a local artifact store; download it first."
            )
        fmt = "parquet" if v.format == "parquet" else ds.CsvFileFormat()
        return ds.dataset([str(p) for p in paths], format=fmt)

    @staticmethod
    def _files(cas: ContentAddressedRepository, owner: str, folder: str = "") -> list[Any]:
        out: list[Any] = []
        for info in cas.list(owner, folder):
            out.extend(Datasets._files(cas, owner, info.path) if info.is_dir else [info])
        return out

    # ------------------------------------------------------------------ profiles and schemas

    def profile(self, name: str, version: int | None = None) -> Profile:
        from shipyard.data.profile import Profile

        v = self.get(name, version)
        if v.profile is None:
            raise NotFound(f"{v.uri} has no profile: it is not a table (format {v.format}).")
        return Profile.from_dict(json.loads(v.profile))

    def inferred_schema(self, name: str, version: int | None = None) -> Schema:
        from shipyard.data.schema import schema_from_dict

        v = self.get(name, version)
        if v.schema is None:
            raise NotFound(f"{v.uri} has no schema: it is not a table (format {v.format}).")
        return schema_from_dict(json.loads(v.schema), v.uri)

    def schema(self, name: str, version: int | None = None) -> Schema:
        """The user-edited schema when there is one (and no version is asked for), else the
        one inferred from the given or latest version."""
        from shipyard.data.schema import load_schema

        text = self.store.get_user_schema(name) if version is None else None
        if text is not None:
            return load_schema(text, f"of dataset {name!r}")
        return self.inferred_schema(name, version)

    def set_schema(self, name: str, schema: str | Path | Schema | None) -> None:
        """Keep a user-edited schema (a Schema, YAML text or a YAML file), or forget it."""
        from shipyard.data.schema import Schema, load_schema

        if schema is None:
            self.store.set_user_schema(name, None)
            return
        if isinstance(schema, Schema):
            text = schema.to_yaml()
        elif isinstance(schema, Path):
            try:
                text = schema.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise InvalidInput(f"can't read schema file {schema}: {exc}") from None
            load_schema(text, str(schema))
        else:
            text = schema
            load_schema(text)
        self.store.set_user_schema(name, text)

    def validate(
        self,
        name: str,
        data: Any,
        *,
        version: int | None = None,
        environment: str | None = None,
        schema: Schema | None = None,
    ) -> ValidationReport:
        """Validate ``data`` against the dataset's schema (:meth:`schema`, unless given)."""
        from shipyard.data.validate import validate

        schema = schema or self.schema(name, version)
        with open_source(data) as source:
            return validate(
                source.batches(),
                schema,
                environment=environment,
                read_column=source.read_column,
            )

    def profile_data(self, data: Any) -> Profile:
        """Profile a table or file without registering it (a serving window, say)."""
        with open_source(data) as source:
            return _profile_of(source)

    def diff(self, name: str, base: int, other: int) -> dict[str, Any]:
        """What changed between two versions: metadata, schema and profile."""
        from shipyard.data.profile import diff_profiles

        a, b = self.get(name, base), self.get(name, other)
        meta = {
            k: {"base": getattr(a, k), "other": getattr(b, k)}
            for k in ("content_digest", "num_rows", "num_columns", "num_bytes", "format")
            if getattr(a, k) != getattr(b, k)
        }
        out: dict[str, Any] = {"name": name, "base": base, "other": other, "metadata": meta}
        if a.profile and b.profile:
            out["profile"] = diff_profiles(
                self.profile(name, base), self.profile(name, other)
            ).to_dict()
        return out

    def skew(
        self, name: str, serving: Any, *, version: int | None = None, threshold: float = 0.2
    ) -> ProfileDiff:
        """Training-serving skew: a serving window (data or a Profile) against a version."""
        from shipyard.data.profile import Profile, skew

        window = serving if isinstance(serving, Profile) else self.profile_data(serving)
        return skew(self.profile(name, version), window, threshold=threshold)

    # ------------------------------------------------------------------ lineage

    def log_input(
        self, run_id: str, name: str, version: int | None = None, *, context: str | None = None
    ) -> DatasetVersion:
        """Record that a run read a version: the exact link, and the run's usual dataset input
        (name, digest, source ``datasets:/NAME/VERSION``) so run search and the MLflow API see it."""
        from shipyard.entities import Dataset, DatasetInput

        v = self.get(name, version)
        self.store.link_run(run_id, name, v.version, context)
        tags = {"mlflow.data.context": context} if context else {}
        with contextlib.suppress(InvalidInput):
            self.ws.store.log_inputs(
                run_id,
                [DatasetInput(Dataset(name, v.content_digest[:36], "shipyard", v.uri), tags)],
            )
        return v


def _profile_of(source: Source) -> Profile:
    """The profile of a tabular source; a table without rows keeps its columns (from the
    file's schema, read only then)."""
    from shipyard.data.profile import Profile

    profile = Profile.from_batches(source.batches())
    if not profile.columns:
        profile = Profile.from_batches((), schema=source.arrow_schema())
    return profile
