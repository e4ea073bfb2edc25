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


_AUDIT = """() => {
  const out = [];
  const shown = el => {
    const r = el.getBoundingClientRect(), s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none';
  };
  const byIds = ids => (ids || '').split(/\\s+/).filter(Boolean)
    .map(id => (document.getElementById(id) || {}).textContent || '').join(' ').trim();
  const nameOf = el => (el.getAttribute('aria-label') || '').trim()
    || byIds(el.getAttribute('aria-labelledby'))
    || (el.textContent || '').trim()
    || Array.from(el.querySelectorAll('img[alt]')).map(i => i.alt).join(' ').trim()
    || ((el.querySelector('svg title') || {}).textContent || '').trim()
    || (el.getAttribute('title') || '').trim();
  const html = el => el.outerHTML.slice(0, 120);
  if (!document.documentElement.lang) out.push('<html> has no lang');
  if (!document.title.trim()) out.push('empty <title>');
  const h1s = document.querySelectorAll('h1').length;
  if (h1s !== 1) out.push(`${h1s} <h1> elements`);
  let last = 0;
  for (const h of document.querySelectorAll('h1, h2, h3, h4, h5, h6')) {
    const level = +h.tagName[1];
    if (last && level > last + 1) out.push('heading level skipped: ' + html(h));
    last = level;
  }
  const ids = new Set();
  for (const el of document.querySelectorAll('[id]')) {
    if (ids.has(el.id)) out.push('duplicate id ' + el.id);
    ids.add(el.id);
  }
  for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea'))
    if (!(el.labels && el.labels.length) && !el.getAttribute('aria-label')
        && !byIds(el.getAttribute('aria-labelledby')))
      out.push('control without a label: ' + html(el));
  for (const el of document.querySelectorAll('a[href], button, summary, [role=button]'))
    if (!nameOf(el)) out.push('link or button without a name: ' + html(el));
  for (const el of document.querySelectorAll('img'))
    if (!el.hasAttribute('alt')) out.push('image without alt: ' + html(el));
  for (const el of document.querySelectorAll('figure[data-chart] .plot'))
    if (el.getAttribute('role') !== 'img' || !el.getAttribute('aria-label'))
      out.push('chart without a text alternative: ' + html(el));
  for (const el of document.querySelectorAll('svg'))
    if (!el.closest('.uplot, [aria-hidden=true]') && !el.getAttribute('aria-label')
        && !byIds(el.getAttribute('aria-labelledby')) && !el.querySelector('title'))
      out.push('drawing without a text alternative: ' + html(el));
  for (const t of document.querySelectorAll('table'))
    if (!t.querySelector('th')) out.push('table without headers: ' + html(t));
  // Readable at the window's width: the page itself never scrolls sideways (wide tables
  // scroll in their own box).
  const wide = document.documentElement.scrollWidth;
  if (wide > window.innerWidth + 1) out.push(`the page scrolls sideways (${wide} px wide)`);
  // Text: at least 11 px, and WCAG AA contrast against what is behind it.
  const rgba = c => { const m = c.match(/[\\d.]+/g).map(Number); return [m[0], m[1], m[2], m.length > 3 ? m[3] : 1]; };
  const lum = c => {
    const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  };
  const behind = el => {
    for (let e = el; e; e = e.parentElement) {
      const s = getComputedStyle(e);
      if (s.backgroundImage !== 'none') return null;
      const c = rgba(s.backgroundColor);
      if (c[3] > 0.5) return c;
    }
    return [255, 255, 255, 1];
  };
  const seen = new Set();
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    const el = n.parentElement, text = n.textContent.trim();
    if (!text || seen.has(el) || !shown(el) || el.closest('svg, .uplot, .skip, option')) continue;
    seen.add(el);
    const s = getComputedStyle(el), size = parseFloat(s.fontSize);
    if (size < 11) out.push(`${size} px text: ${text.slice(0, 40)}`);
    const back = behind(el);
    if (!back) continue;
    const a = lum(rgba(s.color)), b = lum(back);
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const large = size >= 24 || (size >= 18.66 && +s.fontWeight >= 700);
    if (ratio < (large ? 3 : 4.5))
      out.push(`contrast ${ratio.toFixed(2)} (${s.color} on rgb(${back.slice(0, 3)})): ${text.slice(0, 40)}`);
  }
  return Array.from(new Set(out));
}"""
"""Accessibility checks on the rendered page (the parts of WCAG 2.1 AA a script can decide):
labelled controls, named links and buttons, text alternatives for images, charts and
drawings, one h1 and no skipped heading level, unique ids, table headers, no sideways
scrolling at the window's width, text size and contrast."""

_FOCUSED = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) return null;
  const s = getComputedStyle(e), r = e.getBoundingClientRect();
  let ring = (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none';
  const shape = e.querySelector && e.querySelector('rect');  // a graph's node: its outline
  if (shape && parseFloat(getComputedStyle(shape).strokeWidth) >= 3) ring = true;
  return {html: e.outerHTML.slice(0, 100), ring: ring, shown: r.width > 0 && r.height > 0,
          inMain: !!e.closest('main')};
}"""

MAX_TAB_STOPS = 150


def _accessibility_problems(pg: sync_api.Page) -> list[str]:
    """What :data:`_AUDIT` finds, and every keyboard stop that has no visible focus ring (or
    is not on screen), walking the page with Tab from the top."""
    problems = list(pg.evaluate(_AUDIT))
    pg.evaluate("document.activeElement && document.activeElement.blur()")
    stops, in_main = 0, 0
    for _ in range(MAX_TAB_STOPS):
        pg.keyboard.press("Tab")
        focused = pg.evaluate(_FOCUSED)
        if focused is None:  # past the last stop: focus left the page
            break
        stops += 1
        in_main += focused["inMain"]
        if not focused["ring"]:
            problems.append("focus is not visible on " + focused["html"])
        if not focused["shown"]:
            problems.append("keyboard focus lands on something not shown: " + focused["html"])
    if in_main == 0:
        problems.append(f"Tab never reaches the page's content ({stops} stops)")
    return problems


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
        "artifact-text": f"/runs/{run}/artifacts?path=notes.txt",
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
        "compare": "/compare?" + "&".join(f"runs={r}" for r in s.run_ids),
        "compare-50": "/compare?" + "&".join(f"runs={r}" for r in ui_server.wide_run_ids),
    }
    # What each page must show (its sections, by their headings' accessible names).
    shows = {
        "run": ["Params", "Metrics", "Tags", "Charts"],
        "model": ["Aliases", "Versions", "Audit history"],
        "model-version": ["Lineage", "Deployments", "History of this version"],
        "pipeline-run": ["Steps", "Step runs", "Logs"],
        "dataset-version": ["Schema", "Profile"],
        "deployment": ["Traffic split", "Actions", "Environments and gates", "Rollout timeline"],
        "monitor": ["Over time", "Distributions", "Alerts"],
        "compare": ["Params", "Metrics (latest)"],
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
        if name == "artifact-text":
            assert "trained on <all> the data" in pg.locator("pre.preview-text").inner_text()
        if name == "artifact-image":
            assert pg.eval_on_selector("img.preview-image", "i => i.naturalWidth") == 8
        if name == "model":
            assert pg.locator("ol.timeline li").count() >= 3, name  # the audit events
        if name == "model-version":
            assert pg.get_by_role("link", name=re.compile("model card")).is_visible()
        if name.startswith("compare"):
            runs = len(s.run_ids) if name == "compare" else len(ui_server.wide_run_ids)
            _charts_drawn(pg, 2)  # the metric overlay and the param-vs-metric scatter
            overlay = "document.querySelector('figure[data-chart=overlay]')._plot"
            assert pg.evaluate(overlay + ".series.length") == runs + 1, name
            scatter = (
                "JSON.parse(document.querySelector('figure[data-chart=scatter]').dataset.points)"
            )
            assert len(pg.evaluate(scatter + ".x")) == runs, name
            params = pg.locator("table.diff").first
            assert params.locator("thead th").count() == runs + 1, name
        for heading in shows.get(name, []):
            assert pg.get_by_role("heading", name=heading).first.is_visible(), (name, heading)
        assert _accessibility_problems(pg) == [], name
        pg.screenshot(path=str(tmp_path / f"{name}.png"), full_page=False)
        problems.check()
    assert len(list(tmp_path.glob("*.png"))) == len(pages)
    print(f"\nbrowser: {len(pages)} pages visited, checked for accessibility, screenshots taken")


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

    # Promote the candidate in canary (v2 takes all the traffic), then roll it back (v1 does).
    promote = pg.get_by_role("group", name="Promote")
    promote.get_by_label("Reason").fill("canary looks good")
    promote.get_by_role("button", name="Promote").click()
    pg.wait_for_url(re.compile(r"done=promoted"))
    assert "promoted" in pg.locator("h1 .badge").inner_text()
    assert pg.locator("svg.split-svg rect").count() == 1
    assert pg.locator("svg.split-svg").get_attribute("aria-label") == "Traffic split: v2 100%"
    rollback = pg.get_by_role("group", name="Roll back")
    rollback.get_by_label("Reason").fill("latency after all")
    rollback.get_by_role("button", name="Roll back").click()
    pg.wait_for_url(re.compile(r"done=rolled_back"))
    assert "rolled" in pg.locator("h1 .badge").inner_text()
    assert pg.locator("svg.split-svg").get_attribute("aria-label") == "Traffic split: v1 100%"
    timeline = pg.locator("ol.timeline").inner_text()
    assert "canary looks good" in timeline
    assert "latency after all" in timeline
    pg.screenshot(path=str(tmp_path / "deployment-rolled-back.png"))

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


def test_the_accessibility_audit_finds_what_it_looks_for(
    ui_server: UiServer, page: tuple[sync_api.Page, Problems]
) -> None:
    """The checks every page passes do fail a page that breaks them."""
    pg, _ = page
    body = (
        "<!doctype html><html><head><title>probe</title></head>"
        "<body style='width: 3000px'><h1>a</h1><h3>skipped a level</h3>"
        "<input id='x'><input id='x' aria-label='named'>"
        "<button style='outline: none'></button><a href='#'></a><img src='data:,'>"
        "<p style='color: #bbb'>low contrast</p><p style='font-size: 9px'>tiny</p>"
        "<figure data-chart><div class='plot'></div></figure><svg width='9' height='9'></svg>"
        "<table><tr><td>1</td></tr></table><textarea></textarea></body></html>"
    )
    pg.route(
        f"{ui_server.url}/a11y-probe",
        lambda route: route.fulfill(status=200, headers={"Content-Type": "text/html"}, body=body),
    )
    pg.goto(f"{ui_server.url}/a11y-probe")
    found = "\n".join(_accessibility_problems(pg))
    for expected in (
        "<html> has no lang",
        "heading level skipped",
        "duplicate id x",
        "control without a label: <input",
        "control without a label: <textarea",
        "link or button without a name: <button",
        "link or button without a name: <a",
        "image without alt",
        "chart without a text alternative",
        "drawing without a text alternative",
        "table without headers",
        "the page scrolls sideways",
        "contrast 1.",
        "9 px text: tiny",
        "focus is not visible on <button",
        "Tab never reaches the page's content",
    ):
        assert expected in found, (expected, found)


def test_with_auth_on_the_browser_signs_in_with_basic_and_is_refused_without(
    browser: sync_api.Browser, tmp_path: Path
) -> None:
    """A server with auth on: the browser's HTTP Basic sign-in opens the pages (the charts'
    data requests carry it too); without credentials or with a wrong password it gets 401."""
    from tests.server.conftest import start_server, stop_server

    password = "admin-password-0"
    live = start_server(
        tmp_path,
        timeout=60,
        env_extra={"SHIPYARD_AUTH": "on", "SHIPYARD_ADMIN_PASSWORD": password},
    )
    url = f"{live.url}/experiments/0"
    try:
        # Without credentials the server answers 401 and headless Chromium (no sign-in dialog)
        # gives the page up; a wrong password is tried once and shows the 401.
        anonymous = browser.new_context()
        try:
            with pytest.raises(sync_api.Error, match="ERR_INVALID_AUTH_CREDENTIALS"):
                anonymous.new_page().goto(url)
            assert anonymous.request.get(url).status == 401
        finally:
            anonymous.close()
        wrong = browser.new_context(
            http_credentials={"username": "admin", "password": "wrong-password"}
        )
        try:
            refused = wrong.new_page().goto(url)
            assert refused is not None
            assert refused.status == 401
            assert "UNAUTHENTICATED" in refused.text()
        finally:
            wrong.close()

        signed_in = browser.new_context(
            viewport={"width": 1366, "height": 768},
            http_credentials={"username": "admin", "password": password},
        )
        try:
            pg = signed_in.new_page()
            problems = Problems()
            problems.watch(pg)
            response = pg.goto(url)
            assert response is not None
            assert response.status == 200
            assert response.headers["x-frame-options"] == "DENY"
            pg.wait_for_load_state("networkidle")
            assert pg.locator(".who").inner_text() == "admin"
            assert _accessibility_problems(pg) == []
            problems.check()
        finally:
            signed_in.close()
    finally:
        stop_server(live.process)
    assert "Traceback" not in live.log_text()
