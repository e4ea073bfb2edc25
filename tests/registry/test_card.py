"""Model cards: what they gather from the registry, the run and the package, and that both
renderings are valid, readable and carry no markup from user values."""

from __future__ import annotations

import itertools
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

import shipyard
from shipyard import errors
from shipyard.entities import Dataset, DatasetInput, Metric
from shipyard.registry import Registry, model_card, render_model_card
from shipyard.registry.card import split_slice_metric
from shipyard.tracking import gc
from shipyard.workspace import Workspace
from tests.registry.conftest import log_package

EVIL = "<script>alert('x')</script> | **bold** [link](http://evil.example) & `code`"


@pytest.fixture
def churn(workspace: Workspace, registry: Registry, tmp_path: Path) -> str:
    """Version 1 of ``churn``: a real package from a run with metrics (two slices), params,
    a dataset input, hostile tag values, one approval and an alias."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    X = pd.DataFrame({"age": [20.0, 35.0, 50.0, 65.0], "visits": [1, 4, 2, 8]})
    model = LogisticRegression().fit(X, [0, 0, 1, 1])
    shipyard.save_model(model, tmp_path / "pkg", input_example=X[:2])
    store = workspace.store
    experiment_id = store.create_experiment("churn-training")
    run_id = store.create_run(experiment_id, run_name="lr").info.run_id
    store.log_batch(
        run_id,
        metrics=[
            Metric("auc", 0.91, 1, 0),
            Metric("slice/country:FR/auc", 0.88, 1, 0),
            Metric("slice/country:FR/recall", 0.75, 1, 0),
            Metric("slice/age 18-30/auc", 0.79, 1, 0),
        ],
        params={"C": "1.0", "notes": EVIL},
    )
    store.log_inputs(
        run_id,
        [DatasetInput(Dataset("customers", "d1g35t", "local", "/data/c.csv"),
                      {"mlflow.data.context": "training"})],
    )  # fmt: skip
    registry.register_package(
        "churn",
        tmp_path / "pkg",
        run_id=run_id,
        description="Predicts churn.\n\n# not a heading\n- not a list",
        tags={"owner": EVIL},
    )
    registry.approve("churn", 1, "alice", comment="<b>fine</b>")
    registry.set_alias("churn", "champion", 1, user="alice", reason="first")
    return run_id


def test_the_card_gathers_every_source(workspace: Workspace, churn: str) -> None:
    card = model_card(workspace, "models:/churn@champion")
    assert (card.version.name, card.version.version, card.version.aliases) == (
        "churn", 1, ("champion",)
    )  # fmt: skip
    assert card.metrics == {"auc": pytest.approx(0.91)}
    assert card.slices == {
        "age 18-30": {"auc": pytest.approx(0.79)},
        "country:FR": {"auc": pytest.approx(0.88), "recall": pytest.approx(0.75)},
    }
    assert card.params == {"C": "1.0", "notes": EVIL}
    assert [(d.dataset.name, d.dataset.digest) for d in card.lineage.datasets] == [
        ("customers", "d1g35t")
    ]
    assert card.lineage.experiment is not None
    assert card.lineage.experiment.name == "churn-training"
    assert card.signature is not None
    assert [(c.name, c.type) for c in card.signature.inputs.columns] == [
        ("age", "double"), ("visits", "long")
    ]  # fmt: skip
    assert card.package is not None
    assert card.package.flavor == "sklearn"
    assert card.package.runs_code_on_load is True
    assert [a.approver for a in card.approvals] == ["alice"]
    assert [e.action for e in card.events] == ["version_created", "approved", "alias_set"]


def test_markdown_is_valid_and_shows_values_literally(workspace: Workspace, churn: str) -> None:
    text = render_model_card(workspace, "models:/churn/1")
    assert text.startswith("# Model card: churn version 1\n")
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    kinds = [t.type for t in tokens]
    assert "html_block" not in kinds
    assert not any(c.type == "html_inline" for t in tokens for c in t.children or [])
    assert not any(c.type == "link_open" for t in tokens for c in t.children or [])
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    for section in ("Overview", "Metrics", "Parameters", "Slice metrics", "Data", "Signature",
                    "Lineage", "Package", "Approvals", "Audit trail"):  # fmt: skip
        assert section in headings
    assert "# not a heading" not in headings
    assert "bullet_list_open" not in kinds
    rendered = MarkdownIt("commonmark").enable("table").render(text)
    assert "<script>" not in rendered
    assert "&lt;script&gt;alert(" in rendered  # shown, as text
    # Every table row has as many cells as its header (the | in the value is escaped).
    lines = text.splitlines()
    assert rendered.count("<table>") == sum(ln.startswith("| --- |") for ln in lines)
    for i, line in enumerate(lines):
        if line.startswith("| --- |"):
            width = len(re.findall(r"(?<!\\)\|", line))
            assert len(re.findall(r"(?<!\\)\|", lines[i - 1])) == width
            for row in itertools.takewhile(lambda ln: ln.startswith("|"), lines[i + 1 :]):
                assert len(re.findall(r"(?<!\\)\|", row)) == width, row
    assert "<td>country:FR</td><td>0.88</td><td>0.75</td>" in rendered.replace("\n", "")
    assert "<td>age 18-30</td><td>0.79</td><td>-</td>" in rendered.replace("\n", "")
    assert "| customers | d1g35t | /data/c.csv | training |" in text
    assert "| visits | long | yes |" in text
    assert "runs code" in text


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs
        if tag not in ("meta", "br"):
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open, f"</{tag}> closes nothing"
        assert self.open[-1] == tag, f"</{tag}> closes <{self.open[-1]}>"
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_is_self_contained_and_escaped(workspace: Workspace, churn: str) -> None:
    page = render_model_card(workspace, "models:/churn/1", format="html")
    assert page.startswith("<!DOCTYPE html>")
    parser = _Page()
    parser.feed(page)
    parser.close()
    assert parser.open == []  # every element closed, properly nested
    assert "script" not in parser.tags
    assert {"a", "img", "link", "iframe", "b"}.isdisjoint(parser.tags)
    assert all(name in ("charset", "name", "content", "lang", "class") for name, _ in parser.attrs)
    assert EVIL in parser.text  # the value is shown exactly, as text
    assert "<b>fine</b>" in parser.text
    assert "Predicts churn." in parser.text
    assert parser.tags.count("table") >= 8
    assert "style" in parser.tags


def test_a_card_without_package_run_or_slices(
    workspace: Workspace, registry: Registry, churn: str
) -> None:
    registry.register_model_version("bare", f"runs:/{log_package(workspace)}/model")
    text = render_model_card(workspace, "models:/bare/1")
    assert "not a Shipyard model package" in text
    assert "No signature recorded" in text
    assert "No slice metrics. Log them as metrics named slice/&lt;slice&gt;/&lt;metric&gt;." in text
    assert "The run recorded no dataset inputs." in text
    assert "No approval policy" in text

    gc.delete_run_permanently(workspace.store, workspace.artifacts, churn)  # type: ignore[arg-type]
    card = model_card(workspace, "models:/churn/1")
    assert (card.lineage.run, card.metrics, card.slices) == (None, {}, {})
    assert f"{churn} (deleted; the version keeps its own files)" in render_model_card(
        workspace, "models:/churn/1", format="html"
    )


def test_unknown_versions_and_formats_are_refused(workspace: Workspace, churn: str) -> None:
    with pytest.raises(errors.InvalidInput, match="format 'pdf' is unknown"):
        render_model_card(workspace, "models:/churn/1", format="pdf")
    with pytest.raises(errors.NotFound, match="no version 2"):
        render_model_card(workspace, "models:/churn/2")
    with pytest.raises(errors.NotFound, match="'ghost' does not exist"):
        render_model_card(workspace, "models:/ghost/1")


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("slice/country:FR/auc", ("country:FR", "auc")),
        ("slice/region/eu/west/auc", ("region/eu/west", "auc")),
        ("slice/auc", None),
        ("slice//auc", None),
        ("slice/x/", None),
        ("auc", None),
        ("slices/x/auc", None),
    ],
)
def test_slice_metric_names(key: str, expected: tuple[str, str] | None) -> None:
    assert split_slice_metric(key) == expected


def test_render_model_card_is_public_api(workspace: Workspace, churn: str) -> None:
    assert shipyard.render_model_card(workspace, "models:/churn/1").startswith("# Model card")
