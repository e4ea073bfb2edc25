"""The state one ``shipyard`` invocation shares between its commands.

The top-level group stores a :class:`CliState` in ``ctx.obj``. Settings are built from the global
options the first time a command asks for them, and the workspace (stores, artifact repository)
is opened on first use and closed when the command ends, so ``--help`` never touches storage.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import click

from shipyard.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from shipyard.artifacts.cas import ContentAddressedRepository
    from shipyard.config import Settings
    from shipyard.entities import Experiment, Page, Run
    from shipyard.store.base import TrackingStore
    from shipyard.workspace import Workspace

T = TypeVar("T")

PAGE_SIZE = 1000
"""How many items to ask a store for per page when collecting several pages."""


@dataclass
class CliState:
    """Global options, and the settings and workspace built from them on demand."""

    home: str | None = None
    tracking_uri: str | None = None
    _settings: Settings | None = field(default=None, repr=False)
    _workspace: Workspace | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        """Settings from the environment and the global options (built once)."""
        if self._settings is None:
            from shipyard.config import Settings

            self._settings = Settings.from_env(home=self.home, tracking_uri=self.tracking_uri)
        return self._settings

    @property
    def workspace(self) -> Workspace:
        """The workspace the settings name, opened on first use."""
        if self._workspace is None:
            from shipyard.workspace import Workspace

            self._workspace = Workspace.open(self.settings)
        return self._workspace

    @property
    def store(self) -> TrackingStore:
        """Shortcut for ``workspace.store``."""
        return self.workspace.store

    def close(self) -> None:
        """Close the workspace if a command opened it."""
        if self._workspace is not None:
            ws, self._workspace = self._workspace, None
            ws.close()


pass_state = click.make_pass_decorator(CliState, ensure=True)
"""Decorator handing a command the invocation's :class:`CliState` as first argument."""


def resolve_experiment(store: TrackingStore, ref: str) -> Experiment:
    """The experiment a user named: by exact name, or by id.

    ``name:X`` and ``id:X`` force one reading. A bare value that is both the name of one
    experiment and the id of another is refused as ambiguous rather than guessed.
    """
    kind, _, rest = ref.partition(":")
    if rest and kind in ("id", "name"):
        found = _by_id(store, rest) if kind == "id" else store.get_experiment_by_name(rest)
        if found is None:
            what = "id" if kind == "id" else "name"
            raise NotFound(
                f"No experiment has the {what} {rest!r}. "
                "See the existing ones with `shipyard experiments list --view all`."
            )
        return found
    by_name = store.get_experiment_by_name(ref)
    by_id = _by_id(store, ref) if ref.isdigit() else None
    if by_name is not None and by_id is not None and by_name.experiment_id != by_id.experiment_id:
        raise InvalidInput(
            f"{ref!r} is both the name of experiment {by_name.experiment_id} and the id of "
            f"experiment {by_id.name!r}; write 'name:{ref}' or 'id:{ref}' to choose."
        )
    found = by_name or by_id
    if found is None:
        raise NotFound(
            f"No experiment is named {ref!r} or has that id. "
            "See the existing ones with `shipyard experiments list --view all`."
        )
    return found


def _by_id(store: TrackingStore, experiment_id: str) -> Experiment | None:
    if not experiment_id.isdigit():
        return None
    try:
        return store.get_experiment(experiment_id)
    except NotFound:
        return None


def get_run(store: TrackingStore, run_id: str) -> Run:
    """The run with this id, or a ``NotFound`` that says where to find run ids."""
    try:
        return store.get_run(run_id.strip())
    except NotFound:
        raise NotFound(
            f"No run has the id {run_id!r}. List run ids with `shipyard runs list` "
            "(add --view all to include deleted runs)."
        ) from None


def local_artifacts(ws: Workspace, action: str) -> ContentAddressedRepository:
    """The workspace's content-addressed artifact store; ``action`` needs direct storage access."""
    from shipyard.artifacts.cas import ContentAddressedRepository

    if ws.settings.is_remote or not isinstance(ws.artifacts, ContentAddressedRepository):
        raise InvalidInput(
            f"{action} needs direct access to the database and artifact storage, but the "
            f"tracking URI {ws.settings.tracking_uri} is a Shipyard server. Run it on the "
            "server's machine with the same --home/--tracking-uri the server uses."
        )
    return ws.artifacts


def parse_tags(values: tuple[str, ...], option: str = "--tag") -> dict[str, str]:
    """``KEY=VALUE`` strings from a repeated option as a dict."""
    tags: dict[str, str] = {}
    for raw in values:
        key, sep, value = raw.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{raw!r} is not KEY=VALUE.", param_hint=option)
        tags[key.strip()] = value
    return tags


def collect_pages(
    fetch: Callable[[str | None, int], Page[T]],
    *,
    page_size: int = PAGE_SIZE,
    limit: int | None = None,
    page_token: str | None = None,
    all_pages: bool = True,
) -> tuple[list[T], str | None]:
    """Items from ``fetch(page_token, page_size)``, page after page.

    Stops after the first page when ``all_pages`` is false, once ``limit`` items are collected,
    or on the last page. Returns the items and the token of the next page (``None`` when nothing
    is left).
    """
    items: list[T] = []
    token = page_token
    while True:
        want = page_size if limit is None else min(page_size, limit - len(items))
        page = fetch(token, want)
        items.extend(page.items)
        token = page.next_page_token
        if not token or not all_pages or (limit is not None and len(items) >= limit):
            return items, token


def model_ref(ref: str) -> tuple[str, str | None]:
    """A model or a version the user named.

    ``NAME`` names a model: ``(NAME, None)``. ``NAME/3``, ``NAME@alias``, ``NAME/latest`` and
    ``models:/...`` URIs name a version: ``(name, "models:/...")``.
    """
    from shipyard.registry.uris import MODELS_SCHEME, parse_model_uri

    text = ref.strip()
    if not text:
        raise click.BadParameter("name a model, as in churn, churn/3 or churn@champion.")
    if not text.startswith(MODELS_SCHEME) and "/" not in text and "@" not in text:
        return text, None
    uri = text if text.startswith(MODELS_SCHEME) else MODELS_SCHEME + text
    return parse_model_uri(uri).name, uri


MAX_CLI_NUMBER = 1e9
"""The largest number a seconds, milliseconds or megabytes option takes (about 31 years of
seconds): beyond it the value cannot be a real setting, and later arithmetic would overflow."""


class FiniteRange(click.FloatRange):
    """A float option that must be finite (not nan or inf) and within ``min``..``max``
    (``max`` defaults to :data:`MAX_CLI_NUMBER`)."""

    name = "number"

    def __init__(
        self,
        min: float | None = None,
        max: float | None = MAX_CLI_NUMBER,
        min_open: bool = False,
        max_open: bool = False,
        clamp: bool = False,
    ) -> None:
        super().__init__(min, max, min_open, max_open, clamp)

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number
