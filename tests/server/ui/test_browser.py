"""The UI in a real browser: Debian's Chromium driven by Playwright against a real server process
(``python -m shipyard.server.runner``, what ``shipyard server`` runs).

Every page is visited at a laptop's 1366x768; a console error, an uncaught page error, a
Content-Security-Policy violation or a failed request fails the test. Screenshots go to the
test's temporary folder. No browser is downloaded: scripts/test installs Debian's ``chromium``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.server.ui.conftest import UiServer

CHROMIUM = Path("/usr/bin/chromium")
REQUIRED = bool(os.environ.get("SHIPYARD_REQUIRE_CHROMIUM"))
"""Set by scripts/test once it installed Chromium: then a missing browser fails, not skips."""

if REQUIRED and not CHROMIUM.exists():  # pragma: no cover - depends on the machine
    raise RuntimeError(f"SHIPYARD_REQUIRE_CHROMIUM is set but {CHROMIUM} is missing")
if REQUIRED:
    from playwright import sync_api
else:
    sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium (scripts/test installs it)"
    ),
]


class Problems:
    """Console errors, page errors and failed requests seen while a test drives the browser."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def watch(self, page: sync_api.Page) -> None:
        page.on(
            "console",
            lambda m: (
                self.items.append(f"console.{m.type}: {m.text}")
                if m.type in ("error", "warning")
                else None
            ),
        )
        page.on("pageerror", lambda e: self.items.append(f"page error: {e}"))
        # A request cut short because the test navigated on (ERR_ABORTED) is not a failure;
        # a refused connection or a broken response is.
        page.on(
            "requestfailed",
            lambda r: (
                self.items.append(f"request failed: {r.url} ({r.failure})")
                if "ERR_ABORTED" not in (r.failure or "")
                else None
            ),
        )
        page.on(
            "response",
            lambda r: self.items.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None,
        )

    def check(self) -> None:
        assert not self.items, "\n".join(self.items)


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: sync_api.Browser) -> Iterator[tuple[sync_api.Page, Problems]]:
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    pg = context.new_page()
    problems = Problems()
    problems.watch(pg)
    try:
        yield pg, problems
    finally:
        context.close()


def _unlabelled_controls(pg: sync_api.Page) -> list[str]:
    """Form controls with neither a <label> nor an aria-label."""
    return list(
        pg.evaluate(
            """() => Array.from(document.querySelectorAll('input:not([type=hidden]), select'))
                .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
                .map(el => el.outerHTML)"""
        )
    )


def _charts_drawn(pg: sync_api.Page, count: int) -> None:
    """Wait until ``count`` charts hold a uPlot canvas (drawn from their data)."""
    pg.wait_for_function(
        "n => document.querySelectorAll('figure[data-chart] .uplot canvas').length >= n",
        arg=count,
        timeout=15_000,
    )


def _clipped_bar_charts(pg: sync_api.Page) -> list[str]:
    """Bar charts whose x scale ends at the first or last bar's centre (half a bar cut off)."""
    return list(
        pg.evaluate(
            """() => Array.from(document.querySelectorAll('figure[data-chart=bars], figure[data-chart=dist]'))
                .filter(f => {
                    const xs = JSON.parse(f.dataset.points).x, s = f._plot.scales.x;
                    return !(s.min < xs[0] && s.max > xs[xs.length - 1]);
                })
                .map(f => f.dataset.label)"""
        )
    )


_SECOND_AXES = """() => Array.from(document.querySelectorAll('figure[data-chart=overlay]'))
    .flatMap(f => f._plot.axes.filter(a => a.side === 1).map(a => a.scale))"""


def test_every_page_renders_without_errors(
    ui_server: UiServer, page: tuple[sync_api.Page, Problems], tmp_path: Path
) -> None:
    pg, problems = page
    s = ui_server.seeded
    run = s.long_run_id
    pages = {
        "experiments": "/experiments",
        "runs": f"/experiments/{s.experiment_id}",
        "run": f"/runs/{run}",
        "artifacts": f"/runs/{run}/artifacts",
        "artifact-image": f"/runs/{run}/artifacts?path=plots/roc.png",
        "artifact-json": f"/runs/{run}/artifacts?path=metrics.json",
        "artifact-csv": f"/runs/{run}/artifacts?path=data/sample.csv",
        "artifact-parquet": f"/runs/{run}/artifacts?path=data/sample.parquet",
        "models": "/models",
        "model": f"/models/{s.model}",
        "model-version": f"/models/{s.model}/versions/2",
        "pipelines": "/pipelines",
        "pipeline-run": f"/pipelines/runs/{s.pipeline_run_ids[-1]}",
        "datasets": "/datasets",
        "dataset": f"/datasets/{s.dataset}",
        "dataset-version": f"/datasets/{s.dataset}/versions/1",
        "validation": f"/datasets/{s.dataset}/versions/1/validation",
        "dataset-diff": f"/datasets/{s.dataset}/diff",
        "deployments": "/deployments",
        "deployment": f"/deployments/{s.deployment}",
        "monitoring": "/monitoring",
        "monitor": f"/monitoring/{s.monitor}",
    }
    for name, path in pages.items():
        response = pg.goto(ui_server.url + path)
        assert response is not None, (name, path)
        assert response.status == 200, (name, path)
        csp = response.headers.get("content-security-policy", "")
        assert "script-src 'self'" in csp, (name, csp)
        pg.wait_for_load_state("networkidle")
        assert pg.locator("h1").first.is_visible(), name
        if name == "run":
            _charts_drawn(pg, 3)
        if name == "dataset-version":
            _charts_drawn(pg, 3)
            assert _clipped_bar_charts(pg) == [], name
        if name == "monitor":
            _charts_drawn(pg, 7)  # drift, performance, health, volume, quality + 2 overlays
            assert _clipped_bar_charts(pg) == [], name
            # the latency has its own axis on the right of the error-rate chart
            assert pg.evaluate(_SECOND_AXES) == ["ms"]
        if name == "deployment":
            assert pg.locator("svg.split-svg rect").count() == 2
        if name == "artifact-image":
            assert pg.eval_on_selector("img.preview-image", "i => i.naturalWidth") == 8
        assert _unlabelled_controls(pg) == [], name
        pg.screenshot(path=str(tmp_path / f"{name}.png"), full_page=False)
        problems.check()
    assert len(list(tmp_path.glob("*.png"))) == len(pages)


def test_filter_sort_choose_columns_and_compare(
    ui_server: UiServer, page: tuple[sync_api.Page, Problems], tmp_path: Path
) -> None:
    pg, problems = page
    s = ui_server.seeded
    pg.goto(f"{ui_server.url}/experiments/{s.experiment_id}")
    rows = pg.locator("#runs-table tbody tr")
    assert rows.count() == len(s.run_ids)

    pg.get_by_label("Filter", exact=True).fill("metrics.accuracy > 0.85 and params.model = 'xgb'")
    pg.get_by_role("button", name="Apply").click()
    pg.wait_for_load_state("networkidle")
    names = pg.locator("#runs-table tbody td:nth-child(2)").all_inner_texts()
    # accuracy = 0.7 + 0.02 i > 0.85 for i >= 8; xgb for odd i
    assert names == ["cv-11", "cv-09"]

    pg.get_by_role("link", name="Run", exact=True).click()  # sort by run name, ascending
    pg.wait_for_load_state("networkidle")
    assert pg.locator("#runs-table tbody td:nth-child(2)").all_inner_texts() == ["cv-09", "cv-11"]
    assert "order=run_name" in pg.url

    pg.get_by_label("Filter", exact=True).fill("")
    pg.get_by_role("button", name="Apply").click()
    pg.locator("details.chooser summary").click()
    pg.get_by_role("checkbox", name="fold").check()
    pg.get_by_role("checkbox", name="lr").uncheck()
    pg.get_by_role("button", name="Show columns").click()
    pg.wait_for_load_state("networkidle")
    headers = pg.locator("#runs-table thead th").all_inner_texts()
    assert "fold" in headers
    assert "lr" not in headers

    for rid in s.run_ids[:3]:
        pg.locator(f"input[name=runs][value='{rid}']").check()
    assert pg.locator("[data-selected-count]").inner_text() == "3 selected"
    pg.get_by_role("button", name="Compare selected runs").click()
    pg.wait_for_url(re.compile(r"/compare\?"))
    _charts_drawn(pg, 2)
    assert pg.locator("table.diff").first.locator("tbody tr").count() == 2  # lr and model
    pg.screenshot(path=str(tmp_path / "compare.png"))

    pg.get_by_label("X axis").select_option("time")
    _charts_drawn(pg, 2)
    assert "x=time" in pg.url
    problems.check()


def test_bad_filter_is_explained_on_the_page(
    ui_server: UiServer, page: tuple[sync_api.Page, Problems]
) -> None:
    pg, problems = page
    pg.goto(f"{ui_server.url}/experiments/{ui_server.seeded.experiment_id}")
    pg.get_by_label("Filter", exact=True).fill("metrics.accuracy >>> 1")
    pg.get_by_label("Filter", exact=True).press("Enter")
    pg.wait_for_load_state("networkidle")
    alert = pg.get_by_role("alert")
    assert "metrics.accuracy >>> 1" in alert.inner_text()
    problems.check()


def test_keyboard_navigation(ui_server: UiServer, page: tuple[sync_api.Page, Problems]) -> None:
    """Tab reaches the skip link, then the sections; Enter follows them; focus is visible."""
    pg, problems = page
    pg.goto(f"{ui_server.url}/experiments")
    pg.keyboard.press("Tab")
    assert pg.evaluate("document.activeElement.textContent") == "Skip to content"
    pg.keyboard.press("Tab")  # the brand link
    pg.keyboard.press("Tab")
    assert pg.evaluate("document.activeElement.textContent") == "Experiments"
    pg.keyboard.press("Tab")
    assert pg.evaluate("document.activeElement.textContent") == "Models"
    outline = pg.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    pg.keyboard.press("Enter")
    pg.wait_for_url(re.compile(r"/models$"))
    # Tab from the filter box reaches its controls in order, then the column chooser
    pg.goto(f"{ui_server.url}/experiments/{ui_server.seeded.experiment_id}")
    pg.get_by_label("Filter", exact=True).focus()
    order = []
    for _ in range(4):
        pg.keyboard.press("Tab")
        order.append(pg.evaluate("document.activeElement.id || document.activeElement.textContent"))
    assert order == ["per_page", "view", "Apply", "Columns (5 shown)"]
    pg.keyboard.press("Enter")  # opens the chooser
    assert pg.locator("details.chooser").first.get_attribute("open") is not None
    problems.check()


def test_lineage_and_dag_link_onwards(
    ui_server: UiServer, page: tuple[sync_api.Page, Problems]
) -> None:
    pg, problems = page
    s = ui_server.seeded
    pg.goto(f"{ui_server.url}/models/{quote(s.model)}/versions/2")
    graph = pg.locator("svg.graph")
    assert graph.locator(".kind-data").count() >= 1
    assert graph.locator(".kind-run").count() == 1
    graph.locator("a", has=pg.locator(".kind-run")).click()
    pg.wait_for_url(re.compile(rf"/runs/{s.long_run_id}$"))
    pg.goto(f"{ui_server.url}/pipelines/runs/{s.pipeline_run_ids[-1]}")
    assert pg.locator("svg.graph .node.cached").count() == 4  # the second run hit the cache
    assert pg.locator("svg.graph path.edge").count() == 4
    problems.check()


def test_deployment_actions_and_alert_acknowledgement(
    ui_server: UiServer, page: tuple[sync_api.Page, Problems], tmp_path: Path
) -> None:
    pg, problems = page
    s = ui_server.seeded
    pg.goto(f"{ui_server.url}/deployments/{s.deployment}")
    pause = pg.get_by_role("group", name="Pause")
    pause.get_by_label("Reason").fill("checking the canary by hand")
    pause.get_by_role("button", name="Pause").click()
    pg.wait_for_url(re.compile(r"done=paused"))
    assert "paused" in pg.locator("h1 .badge").inner_text()
    assert "checking the canary by hand" in pg.locator("ol.timeline").inner_text()
    pg.screenshot(path=str(tmp_path / "deployment-paused.png"))
    pg.get_by_role("button", name="Resume").click()
    pg.wait_for_url(re.compile(r"done=resumed"))
    assert "canary" in pg.locator("h1 .badge").inner_text()

    pg.goto(f"{ui_server.url}/monitoring")
    pg.get_by_label("Note for alert 1").fill("retraining")
    pg.get_by_role("button", name="Acknowledge").click()
    pg.wait_for_url(re.compile(rf"/monitoring/{s.monitor}"))
    assert "acknowledged" in pg.locator("#alerts").inner_text()
    problems.check()


def test_an_inline_script_would_fail_these_tests(
    ui_server: UiServer, page: tuple[sync_api.Page, Problems]
) -> None:
    """The watch catches what the CSP refuses: a page with an inline script, served with the
    server's own policy, logs a console error."""
    pg, problems = page
    real = pg.goto(f"{ui_server.url}/experiments")
    assert real is not None
    policy = real.headers["content-security-policy"]
    pg.route(
        f"{ui_server.url}/csp-probe",
        lambda route: route.fulfill(
            status=200,
            headers={"Content-Type": "text/html", "Content-Security-Policy": policy},
            body="<!doctype html><title>x</title><script>document.title = 'ran'</script>",
        ),
    )
    pg.goto(f"{ui_server.url}/csp-probe")
    assert pg.title() == "x"  # the inline script did not run
    assert any("Content Security Policy" in p for p in problems.items), problems.items
