"""Model cards: one page about one model version, in Markdown or self-contained HTML.

A card gathers what the registry, the tracking store and the package know about a version:

* the model and version: description, status, stage, aliases, tags, who registered it and when;
* the run's latest metrics and its params, and **slice metrics**: metrics named
  ``slice/<slice>/<metric>`` (``slice/country:FR/auc``, ``slice/age 18-30/recall``), shown as a
  table of slices by metric. The slice is everything between the first and the last ``/``; the
  characters allowed are those of metric keys (letters, digits, spaces, ``_ - . / :``);
* the data versions the run recorded as inputs (name, digest, source, context);
* the signature (input and output schema) and the package (flavor, content hash, requirements,
  whether loading runs code), read from the version's ``shipyard-model.json``;
* lineage (run, experiment), the approval policy, the approvals and the version's audit events.

    print(render_model_card(ws, "models:/churn/3"))                  # Markdown
    html = render_model_card(ws, "models:/churn@champion", format="html")

Every value taken from users (names, tags, descriptions, params) is escaped: HTML cards carry no
markup, script or link that a value brought in, and Markdown cards show values literally. HTML
cards embed their stylesheet and load nothing.
"""

from __future__ import annotations

import html
import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shipyard._version import __version__
from shipyard.entities import (
    Approval,
    ModelLineage,
    ModelVersion,
    RegisteredModel,
    RegistryAction,
    RegistryEvent,
    Run,
)
from shipyard.errors import InvalidInput, NotFound
from shipyard.registry.lineage import lineage_of
from shipyard.registry.registry import Registry
from shipyard.store.registry import ALL_ALIASES

if TYPE_CHECKING:  # pragma: no cover
    from shipyard.models.signature import Schema, Signature
    from shipyard.workspace import Workspace

SLICE_PREFIX = "slice/"
FORMATS = ("markdown", "html")


@dataclass(frozen=True)
class PackageFacts:
    """What a version's ``shipyard-model.json`` says about the package."""

    flavor: str
    content_hash: str
    size: int
    python_version: str = ""
    requirements: tuple[str, ...] = ()
    runs_code_on_load: bool = False
    created_at: str = ""
    imported_from: str | None = None


@dataclass(frozen=True)
class ModelCard:
    """Everything a model card shows (render it with :func:`to_markdown` / :func:`to_html`)."""

    model: RegisteredModel
    version: ModelVersion
    lineage: ModelLineage
    metrics: dict[str, float] = field(default_factory=dict)
    """The run's latest metric values, slice metrics excluded."""
    params: dict[str, str] = field(default_factory=dict)
    slices: dict[str, dict[str, float]] = field(default_factory=dict)
    """Slice name -> metric -> value, from metrics named ``slice/<slice>/<metric>``."""
    signature: Signature | None = None
    package: PackageFacts | None = None
    package_note: str | None = None
    """Why the package could not be described, when it could not."""
    approvals: tuple[Approval, ...] = ()
    events: tuple[RegistryEvent, ...] = ()
    """The audit events that concern this version, oldest first."""
    generated_at: int = 0


def model_card(workspace: Workspace, model: str | ModelVersion) -> ModelCard:
    """Gather the card of the version ``model`` names (a ``models:/`` URI or a version)."""
    registry = Registry(workspace)
    version = registry.resolve(model) if isinstance(model, str) else model
    lineage = lineage_of(workspace, version)
    run = _run(workspace, version)
    metrics: dict[str, float] = {}
    slices: dict[str, dict[str, float]] = {}
    for key, metric in sorted((run.data.metrics if run else {}).items()):
        sliced = split_slice_metric(key)
        if sliced is None:
            metrics[key] = metric.value
        else:
            slices.setdefault(sliced[0], {})[sliced[1]] = metric.value
    package, note, signature = _package(workspace, version)
    events = tuple(e for e in registry.history(version.name) if _concerns(e, version.version))
    return ModelCard(
        model=registry.get_model(version.name),
        version=version,
        lineage=lineage,
        metrics=metrics,
        params=dict(sorted((run.data.params if run else {}).items())),
        slices=slices,
        signature=signature,
        package=package,
        package_note=note,
        approvals=tuple(registry.approvals(version.name, version.version)),
        events=events,
        generated_at=time.time_ns() // 1_000_000,
    )


def render_model_card(
    workspace: Workspace, model: str | ModelVersion, format: str = "markdown"
) -> str:
    """The card of the version ``model`` names, as Markdown or a self-contained HTML page.

    >>> print(render_model_card(ws, "models:/churn/3"))  # doctest: +SKIP
    # Model card: churn version 3
    ...
    """
    if format not in FORMATS:
        raise InvalidInput(f"Model card format {format!r} is unknown; use markdown or html.")
    card = model_card(workspace, model)
    return to_html(card) if format == "html" else to_markdown(card)


def split_slice_metric(key: str) -> tuple[str, str] | None:
    """``"slice/country:FR/auc"`` -> ``("country:FR", "auc")``; ``None`` for other metrics."""
    if not key.startswith(SLICE_PREFIX):
        return None
    slice_name, sep, metric = key[len(SLICE_PREFIX) :].rpartition("/")
    if not sep or not slice_name or not metric:
        return None
    return slice_name, metric


def _run(workspace: Workspace, version: ModelVersion) -> Run | None:
    if version.run_id is None:
        return None
    try:
        return workspace.store.get_run(version.run_id)
    except NotFound:
        return None


def _package(
    workspace: Workspace, version: ModelVersion
) -> tuple[PackageFacts | None, str | None, Signature | None]:
    from shipyard.models.manifest import MANIFEST, Manifest

    path = f"{version.storage_path}/{MANIFEST}" if version.storage_path else MANIFEST
    try:
        with workspace.artifacts.open(version.storage_owner, path) as f:
            manifest = Manifest.parse(f.read(), f"{version.source}/{MANIFEST}")
    except NotFound:
        return None, f"The registered files have no {MANIFEST}: not a Shipyard model package.", None
    except InvalidInput as exc:
        return None, exc.message, None
    facts = PackageFacts(
        flavor=manifest.predict_flavor,
        content_hash=manifest.content_hash,
        size=manifest.size,
        python_version=manifest.python_version,
        requirements=manifest.requirements,
        runs_code_on_load=manifest.runs_code_on_load,
        created_at=manifest.created_at,
        imported_from=_text_or_none(manifest.metadata.get("imported_from")),
    )
    return facts, None, manifest.signature


def _text_or_none(value: Any) -> str | None:
    return str(value) if value else None


def _concerns(event: RegistryEvent, version: int) -> bool:
    if event.version == version:
        return True
    return event.action == RegistryAction.ALIAS_SET and event.from_value == str(version)


# ---------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class _Table:
    headers: tuple[str, ...]
    rows: Sequence[Sequence[str]]
    empty: str


@dataclass(frozen=True)
class _Text:
    text: str
    warning: bool = False


@dataclass(frozen=True)
class _Section:
    title: str
    blocks: list[_Table | _Text]
    level: int = 2


def _sections(card: ModelCard) -> list[_Section]:
    v, lineage = card.version, card.lineage
    facts = [
        ("Model", v.name),
        ("Version", str(v.version)),
        ("Status", v.status + (f" ({v.status_message})" if v.status_message else "")),
        ("Stage", v.current_stage),
        ("Aliases", ", ".join(v.aliases) or "none"),
        ("Registered", f"{_time(v.creation_timestamp)} by {v.user_id or 'unknown'}"),
        ("Source", v.source),
    ]
    if v.content_digest:
        facts.append(("Files sha256", v.content_digest))
    out = [_Section("Overview", [_Table(("Field", "Value"), facts, "")])]
    description = v.description or card.model.description
    out.append(_Section("Description", [_Text(description or "No description.")]))
    out.append(
        _Section(
            "Tags",
            [
                _Table(
                    ("Tag", "Value", "On"),
                    [(k, val, "version") for k, val in sorted(v.tags.items())]
                    + [(k, val, "model") for k, val in sorted(card.model.tags.items())],
                    "No tags.",
                )
            ],
        )
    )
    out.append(
        _Section(
            "Metrics",
            [
                _Table(
                    ("Metric", "Value"),
                    [(k, _number(x)) for k, x in card.metrics.items()],
                    "No metrics." if lineage.run else "No run: no metrics.",
                )
            ],
        )
    )
    out.append(
        _Section(
            "Parameters",
            [_Table(("Parameter", "Value"), list(card.params.items()), "No parameters.")],
        )
    )
    out.append(_Section("Slice metrics", [_slices_table(card.slices)]))
    out.append(
        _Section(
            "Data",
            [
                _Table(
                    ("Dataset", "Digest", "Source", "Context"),
                    [
                        (
                            d.dataset.name,
                            d.dataset.digest,
                            d.dataset.source or d.dataset.source_type or "-",
                            d.tags.get("mlflow.data.context", "-"),
                        )
                        for d in lineage.datasets
                    ],
                    "The run recorded no dataset inputs.",
                )
            ],
        )
    )
    out.append(_Section("Signature", _signature_blocks(card)))
    out.append(_Section("Lineage", [_Table(("Link", "Value"), _lineage_rows(card), "")]))
    out.append(_Section("Package", _package_blocks(card)))
    out.append(_Section("Approvals", _approval_blocks(card)))
    out.append(
        _Section(
            "Audit trail",
            [
                _Table(
                    ("When", "Action", "Alias", "From", "To", "User", "Reason"),
                    [
                        (
                            _time(e.timestamp),
                            e.action,
                            e.alias or "-",
                            e.from_value or "-",
                            e.to_value or "-",
                            e.user_id or "-",
                            e.reason or "-",
                        )
                        for e in card.events
                    ],
                    "No audit events.",
                )
            ],
        )
    )
    return out


def _slices_table(slices: dict[str, dict[str, float]]) -> _Table:
    names = sorted({m for values in slices.values() for m in values})
    rows = [
        (s, *(_number(values[m]) if m in values else "-" for m in names))
        for s, values in sorted(slices.items())
    ]
    return _Table(
        ("Slice", *names),
        rows,
        "No slice metrics. Log them as metrics named slice/<slice>/<metric>.",
    )


def _signature_blocks(card: ModelCard) -> list[_Table | _Text]:
    if card.signature is None:
        return [_Text("No signature recorded: inputs are not checked.")]
    blocks: list[_Table | _Text] = [_Text("Inputs:"), _schema_table(card.signature.inputs)]
    blocks.append(_Text("Outputs:"))
    if card.signature.outputs is None:
        blocks.append(_Text("Not recorded."))
    else:
        blocks.append(_schema_table(card.signature.outputs))
    return blocks


def _schema_table(schema: Schema) -> _Table:
    if schema.is_tensor:
        return _Table(
            ("Tensor", "Dtype", "Shape"),
            [
                (t.name or "(unnamed)", t.dtype, "[" + ", ".join(map(str, t.shape)) + "]")
                for t in schema.tensors
            ],
            "No tensors.",
        )
    return _Table(
        ("Column", "Type", "Required"),
        [(c.name, c.type, "no" if c.optional else "yes") for c in schema.columns],
        "No columns.",
    )


def _lineage_rows(card: ModelCard) -> list[tuple[str, ...]]:
    lineage, v = card.lineage, card.version
    rows: list[tuple[str, ...]] = []
    if lineage.run is not None:
        r = lineage.run
        rows.append(("Run", f"{r.run_id} ({r.run_name}), {r.status}, by {r.user_id or 'unknown'}"))
        rows.append(("Run started", _time(r.start_time)))
    elif v.run_id:
        rows.append(("Run", f"{v.run_id} (deleted; the version keeps its own files)"))
    else:
        rows.append(("Run", "none"))
    if lineage.experiment is not None:
        rows.append(
            ("Experiment", f"{lineage.experiment.name} (id {lineage.experiment.experiment_id})")
        )
    rows.append(("Datasets", str(len(lineage.datasets))))
    return rows


def _package_blocks(card: ModelCard) -> list[_Table | _Text]:
    p = card.package
    if p is None:
        return [_Text(card.package_note or "No package information.")]
    rows = [
        ("Flavor", p.flavor),
        ("Content sha256", p.content_hash),
        ("Size", f"{p.size} bytes"),
        ("Python", p.python_version or "-"),
        ("Saved", p.created_at or "-"),
        ("Requirements", ", ".join(p.requirements) or "-"),
    ]
    if p.imported_from:
        rows.append(("Imported from", p.imported_from))
    blocks: list[_Table | _Text] = [_Table(("Field", "Value"), rows, "")]
    if p.runs_code_on_load:
        blocks.append(
            _Text(
                "Loading this package runs code from it (pickle): load it only if you trust "
                "where it came from.",
                warning=True,
            )
        )
    return blocks


def _approval_blocks(card: ModelCard) -> list[_Table | _Text]:
    policy = card.model.approval_policy
    if policy:
        parts = [
            f"{'every other alias' if alias == ALL_ALIASES else f'alias {alias}'}: {count}"
            for alias, count in sorted(policy.items(), key=lambda kv: kv[0] == ALL_ALIASES)
        ]
        rule = "Required approvals before an alias moves to a version: " + "; ".join(parts) + "."
    else:
        rule = "No approval policy: aliases move without approvals."
    return [
        _Text(rule),
        _Table(
            ("Approver", "When", "Comment"),
            [(a.approver, _time(a.timestamp), a.comment or "-") for a in card.approvals],
            "No approvals.",
        ),
    ]


def _time(ms: int | None) -> str:
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _number(value: float) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return f"{value:.6g}"


def _title(card: ModelCard) -> str:
    return f"Model card: {card.version.name} version {card.version.version}"


def _footer(card: ModelCard) -> str:
    return (
        f"Generated by Shipyard {__version__} on {_time(card.generated_at)} from "
        f"models:/{card.version.name}/{card.version.version}."
    )


# ---------------------------------------------------------------------------- Markdown


_MD_SPECIAL = str.maketrans(
    {c: "\\" + c for c in "\\`*_[]#|~"} | {"<": "&lt;", ">": "&gt;", "&": "&amp;"}
)
_BLOCK_START = re.compile(r"^(\d+)([.)])|^([-+=])")


def _md(text: str, *, block: bool = False) -> str:
    """Literal text for Markdown on one line: inline markup characters escaped and no HTML;
    with ``block``, also what would start a list or a heading line."""
    escaped = " ".join(str(text).split()).translate(_MD_SPECIAL)
    if block:
        escaped = _BLOCK_START.sub(
            lambda m: f"{m[1]}\\{m[2]}" if m[1] else f"\\{m[3]}", escaped, count=1
        )
    return escaped


def _md_paragraphs(text: str) -> list[str]:
    paragraphs = [p for p in str(text).replace("\r\n", "\n").split("\n\n") if p.strip()]
    return [_md(p, block=True) for p in paragraphs] or [""]


def to_markdown(card: ModelCard) -> str:
    """The card as CommonMark/GitHub-flavoured Markdown."""
    lines = [f"# {_md(_title(card))}", ""]
    for section in _sections(card):
        lines += [f"{'#' * section.level} {_md(section.title)}", ""]
        for block in section.blocks:
            if isinstance(block, _Text):
                for para in _md_paragraphs(block.text):
                    lines += [f"> **Warning:** {para}" if block.warning else para, ""]
            elif not block.rows:
                lines += [_md(block.empty, block=True), ""]
            else:
                lines.append("| " + " | ".join(_md(h) for h in block.headers) + " |")
                lines.append("|" + "|".join(" --- " for _ in block.headers) + "|")
                for row in block.rows:
                    lines.append("| " + " | ".join(_md(c) or " " for c in row) + " |")
                lines.append("")
    lines += ["---", "", f"*{_md(_footer(card))}*", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- HTML


_STYLE = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328;
       max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; border-bottom: 1px solid #d0d7de; padding-bottom: .3rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { border: 1px solid #d0d7de; padding: .3rem .6rem; text-align: left;
         vertical-align: top; overflow-wrap: anywhere; }
th { background: #f6f8fa; }
p.empty { color: #656d76; font-style: italic; }
p.warning { background: #fff8c5; border: 1px solid #d4a72c; padding: .5rem .8rem; }
footer { color: #656d76; font-size: .85rem; margin-top: 2rem; border-top: 1px solid #d0d7de; }
""".strip()


def _h(text: object) -> str:
    return html.escape(str(text), quote=True)


def _h_text(text: str) -> Iterable[str]:
    for para in [p for p in str(text).replace("\r\n", "\n").split("\n\n") if p.strip()]:
        yield "<br>".join(_h(line) for line in para.split("\n"))


def _html_table(t: _Table) -> list[str]:
    if not t.rows:
        return [f'<p class="empty">{_h(t.empty)}</p>']
    out = ["<table>", "<thead><tr>" + "".join(f"<th>{_h(h)}</th>" for h in t.headers) + "</tr>"]
    out.append("</thead><tbody>")
    out += ["<tr>" + "".join(f"<td>{_h(c)}</td>" for c in row) + "</tr>" for row in t.rows]
    out.append("</tbody></table>")
    return out


def to_html(card: ModelCard) -> str:
    """The card as one HTML page with its stylesheet inline, no scripts and no external links."""
    title = _h(_title(card))
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{title}</title>",
        f"<style>\n{_STYLE}\n</style>",
        "</head>",
        "<body>",
        f"<h1>{title}</h1>",
    ]
    for section in _sections(card):
        out.append(f"<section><h{section.level}>{_h(section.title)}</h{section.level}>")
        for block in section.blocks:
            if isinstance(block, _Text):
                cls = ' class="warning"' if block.warning else ""
                out += [f"<p{cls}>{para}</p>" for para in _h_text(block.text)]
            else:
                out += _html_table(block)
        out.append("</section>")
    out += [f"<footer><p>{_h(_footer(card))}</p></footer>", "</body>", "</html>", ""]
    return "\n".join(out)
