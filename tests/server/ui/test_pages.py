"""The UI's pages and chart data, served in-process over a seeded workspace."""

from __future__ import annotations

import html
import json
import re
from urllib.parse import quote

import httpx
import pytest

from shipyard.entities import Metric
from shipyard.errors import PermissionDenied
from shipyard.server.app import create_app
from shipyard.server.auth import Principal
from shipyard.server.ui.compare import parallel
from tests.server.asgi import ASGISyncTransport
from tests.server.ui._seed import BASE_MS, LONG_HISTORY
from tests.server.ui.conftest import SeededClient


def page(ui: SeededClient, path: str, status: int = 200) -> str:
    r = ui.client.get(path)
    assert r.status_code == status, (path, r.text[:2000])
    assert r.headers["content-type"].startswith("text/html")
    return r.text


def run_names(body: str) -> list[str]:
    return re.findall(r'<td><a href="/runs/[0-9a-f]{32}">([^<]+)</a></td>', body)


def test_home_redirects_to_experiments(ui: SeededClient) -> None:
    r = ui.client.get("/", follow_redirects=False)
    assert r.status_code == 307
    assert r.headers["location"] == "/experiments"


def test_experiments_list_and_filter(ui: SeededClient) -> None:
    body = page(ui, "/experiments")
    assert "churn-experiments" in body
    assert 'aria-current="page">Experiments' in body
    assert "churn-experiments" not in page(ui, "/experiments?filter=name+%3D+%27other%27")


def test_runs_table_filters_with_the_search_grammar(ui: SeededClient) -> None:
    exp = ui.seeded.experiment_id
    body = page(
        ui, f"/experiments/{exp}?filter=" + quote("params.model = 'xgb' and metrics.loss < 0.2")
    )
    # loss = 1/(i+1) < 0.2 for i >= 5; xgb for odd i; newest first
    assert run_names(body) == ["cv-11", "cv-09", "cv-07", "cv-05"]


def test_a_bad_filter_is_explained_not_a_500(ui: SeededClient) -> None:
    body = page(ui, f"/experiments/{ui.seeded.experiment_id}?filter=" + quote("metrics.loss <<< 1"))
    alert = re.search(r'role="alert"[^>]*>([^<]+)<', body)
    assert alert is not None
    assert "metrics.loss &lt;&lt;&lt; 1" in alert.group(1)
    assert run_names(body) == []


def test_runs_table_sorts_by_any_column(ui: SeededClient) -> None:
    exp = ui.seeded.experiment_id
    body = page(ui, f"/experiments/{exp}?order=" + quote("metrics.loss DESC"))
    assert run_names(body)[:3] == ["cv-00", "cv-01", "cv-02"]
    # the loss header now offers the other direction and says how it sorts
    assert 'aria-sort="descending"><a href="/experiments/1?order=metrics.loss+ASC' in body
    body = page(ui, f"/experiments/{exp}?order=" + quote("run_name ASC"))
    assert run_names(body)[:2] == ["cv-00", "cv-01"]


def test_runs_table_pages_forward_and_back(ui: SeededClient) -> None:
    exp = ui.seeded.experiment_id
    first = page(ui, f"/experiments/{exp}?per_page=5")
    assert run_names(first) == [f"cv-{i:02d}" for i in (11, 10, 9, 8, 7)]
    nxt = re.search(r'href="([^"]+)" rel="next"', first)
    assert nxt is not None
    second = page(ui, html.unescape(nxt.group(1)))
    assert run_names(second) == [f"cv-{i:02d}" for i in (6, 5, 4, 3, 2)]
    assert "Page 2" in second
    prev = re.search(r'href="([^"]+)" rel="prev"', second)
    assert prev is not None
    assert run_names(page(ui, html.unescape(prev.group(1)))) == run_names(first)


def test_column_chooser_picks_metrics_params_and_tags(ui: SeededClient) -> None:
    exp = ui.seeded.experiment_id
    body = page(ui, f"/experiments/{exp}?cols=tags.fold&cols=metrics.loss")
    headers = re.findall(r'title="((?:metrics|params|tags)\.[^"]+)"', body)
    assert headers == ["tags.fold", "metrics.loss"]
    # every key on the page is offered, the chosen ones ticked
    assert 'value="params.lr">' in body
    assert 'value="tags.fold" checked>' in body
    # a key typed in the chooser's box (an empty box adds nothing)
    typed = page(ui, f"/experiments/{exp}?cols=tags.fold&cols=&cols=params.model")
    assert re.findall(r'title="((?:metrics|params|tags)\.[^"]+)"', typed) == [
        "tags.fold",
        "params.model",
    ]
    bad = page(ui, f"/experiments/{exp}?cols=nonsense", status=400)
    assert "metrics.&lt;key&gt;" in bad


def test_run_page_shows_everything_about_a_run(ui: SeededClient) -> None:
    rid = ui.seeded.long_run_id
    body = page(ui, f"/runs/{rid}")
    for text in ("cv-11", "accuracy", "val_loss", "lr", "0.012", "fold", "customers", "plots/"):
        assert text in body, text
    charts = re.findall(r'data-src="(/ui/data/runs/[^"]+)"', body)
    assert len(charts) == 3
    only = page(ui, f"/runs/{rid}?chart=val_loss&x=time")
    assert re.findall(r'data-src="[^"]+key=([^"&]+)"', only) == ["val_loss"]
    assert '<option value="time" selected>' in only


def test_metric_data_is_downsampled_and_keeps_the_spike(ui: SeededClient) -> None:
    rid = ui.seeded.long_run_id
    r = ui.client.get(f"/ui/data/runs/{rid}/metric", params={"key": "val_loss", "points": 200})
    assert r.status_code == 200
    d = r.json()
    assert d["total"] == LONG_HISTORY
    assert d["downsampled"] is True
    assert len(d["x"]) == len(d["y"]) == d["shown"] <= 200
    assert max(d["y"]) == 50.0  # the spike at the middle survives
    assert d["x"][0] == 0
    assert d["x"][-1] == LONG_HISTORY - 1
    t = ui.client.get(f"/ui/data/runs/{rid}/metric", params={"key": "val_loss", "x": "relative"})
    assert t.json()["x"][0] == 0.0
    assert t.json()["x"][-1] == pytest.approx((LONG_HISTORY - 1) * 0.01)
    # wall time in epoch seconds (what the chart's time scale reads), still downsampled
    w = ui.client.get(
        f"/ui/data/runs/{rid}/metric", params={"key": "val_loss", "x": "time", "points": 200}
    ).json()
    assert w["axis"] == "time"
    assert w["x"][0] == BASE_MS / 1000
    assert w["x"][-1] == pytest.approx((BASE_MS + (LONG_HISTORY - 1) * 10) / 1000)
    assert w["shown"] <= 200
    assert max(w["y"]) == 50.0


def test_metric_data_errors_are_json(ui: SeededClient) -> None:
    rid = ui.seeded.long_run_id
    missing = ui.client.get(f"/ui/data/runs/{rid}/metric", params={"key": "nope"})
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert ui.client.get(f"/ui/data/runs/{rid}/metric").status_code == 400
    bad_axis = ui.client.get(f"/ui/data/runs/{rid}/metric", params={"key": "loss", "x": "z"})
    assert bad_axis.status_code == 400
    assert "step, time, relative" in bad_axis.json()["message"]


def test_artifact_browser_previews_each_kind(ui: SeededClient) -> None:
    rid = ui.seeded.long_run_id
    base = f"/runs/{rid}/artifacts"
    listing = page(ui, base)
    for name in ("plots/", "data/", "metrics.json", "notes.txt", "blob.bin"):
        assert f">{name}</a>" in listing, name
    image = page(ui, f"{base}?path=plots/roc.png")
    src = re.search(r'<img class="preview-image" src="([^"]+)"', image)
    assert src is not None
    raw = ui.client.get(src.group(1))
    assert raw.headers["content-type"] == "image/png"
    assert raw.content.startswith(b"\x89PNG")
    assert "&#34;auc&#34;: 0.91" in page(ui, f"{base}?path=metrics.json")
    csv_page = page(ui, f"{base}?path=data/sample.csv")
    assert '<th scope="col">score</th>' in csv_page
    assert "<td>0.9</td>" in csv_page
    parquet = page(ui, f"{base}?path=data/sample.parquet")
    assert "first 50 of 120 rows" in parquet
    assert parquet.count("<tr>") == 51  # header + 50 rows
    assert "trained on &lt;all&gt; the data" in page(ui, f"{base}?path=notes.txt")
    assert "binary file" in page(ui, f"{base}?path=blob.bin")
    assert "no artifact" in page(ui, f"{base}?path=missing.txt", status=404).lower()
    page(ui, f"{base}?path=../../etc/passwd", status=400)


def test_compare_view_diffs_params_and_overlays_metrics(ui: SeededClient) -> None:
    ids = ui.seeded.run_ids[:4]
    query = "&".join(f"runs={i}" for i in ids)
    body = page(ui, f"/compare?{query}")
    assert body.count('class="differs"') >= 3  # lr, model differ; accuracy, loss differ
    # the way back: the runs' experiment in the breadcrumb
    crumbs = re.search(r'<nav class="crumbs"[^>]*>(.*?)</nav>', body)
    assert crumbs is not None
    assert f'href="/experiments/{ui.seeded.experiment_id}">churn-experiments</a>' in crumbs.group(1)
    scatter = re.search(r'data-chart="scatter" data-points="([^"]+)"', body)
    assert scatter is not None
    points = json.loads(html.unescape(scatter.group(1)))
    assert points["param"] == "lr"
    assert len(points["x"]) == 4
    by_model = page(ui, f"/compare?{query}&px=model&my=loss")
    cats = json.loads(
        html.unescape(re.search(r'data-points="([^"]+)"', by_model).group(1))  # type: ignore[union-attr]
    )
    assert cats["categories"] == ["linear", "xgb"]
    data = ui.client.get(f"/ui/data/compare/metric?{query}&key=accuracy&x=step").json()
    assert [s["name"] for s in data["series"]] == ["cv-00", "cv-01", "cv-02", "cv-03"]
    assert all(s["total"] == 5 for s in data["series"])


def test_compare_draws_parallel_coordinates(ui: SeededClient) -> None:
    """One line per run across the params that differ and the chosen metric, coloured from
    blue (lowest metric) to red (highest); a run without a param breaks its line there."""
    ids = ui.seeded.run_ids[:4]
    ui.ws.store.log_batch(ids[0], params={"depth": "3"})  # only one run has it
    for run_id, alpha in zip(ids[1:], ("0.001", "0.1", "10"), strict=True):
        ui.ws.store.log_batch(run_id, params={"alpha": alpha})  # 4 decades: a log axis
    query = "&".join(f"runs={i}" for i in ids)
    body = page(ui, f"/compare?{query}&my=loss")
    svg = re.search(r'<svg class="parallel"[^>]*>(.*?)</svg>', body, re.S)
    assert svg is not None
    names = re.findall(r'<text class="name"[^>]*>([^<]+)</text>', svg.group(1))
    assert names == ["alpha (log)", "depth", "lr", "model", "loss"]
    paths = re.findall(r'<path class="run" d="([^"]+)" stroke="(#[0-9a-f]{6})"><title>([^<]+)</title>',
                       svg.group(1))  # fmt: skip
    assert len(paths) == 4
    losses = {r.info.run_name: r.data.metrics["loss"].value
              for r in (ui.ws.store.get_run(i) for i in ids)}  # fmt: skip
    by_name = {title.split(":")[0]: (d, color) for d, color, title in paths}
    lowest, highest = min(losses, key=losses.__getitem__), max(losses, key=losses.__getitem__)
    assert by_name[lowest][1] == "#2563eb"
    assert by_name[highest][1] == "#dc2626"
    # a run lacking a value breaks its line there: the first run has depth but no alpha, the
    # others alpha but no depth
    points = {name: re.findall(r"([ML])([\d.]+),([\d.]+)", d) for name, (d, _) in by_name.items()}
    runs = [ui.ws.store.get_run(i) for i in ids]
    first, *others = (points[r.info.run_name] for r in runs)
    assert [p[0] for p in first] == ["M", "L", "L", "L"]
    assert all([p[0] for p in line] == ["M", "M", "L", "L"] for line in others)
    # on the log axis 0.1 lies halfway between 0.001 and 10
    low, mid, high = (float(line[0][2]) for line in others)
    assert mid == pytest.approx((low + high) / 2, abs=0.1)
    assert parallel(runs, [], "loss") is None  # one axis is no chart
    assert parallel(runs, ["lr"], "no-such-metric") is not None  # the params still draw


def test_compare_only_differences(ui: SeededClient) -> None:
    ids = ui.seeded.run_ids[:2]
    ui.ws.store.log_batch(ids[0], params={"same": "1"})
    ui.ws.store.log_batch(ids[1], params={"same": "1"})
    query = "&".join(f"runs={i}" for i in ids)
    assert '<th scope="row">same' in page(ui, f"/compare?{query}")
    assert '<th scope="row">same' not in page(ui, f"/compare?{query}&diff=1")


@pytest.mark.parametrize("count", [1, 51])
def test_compare_takes_2_to_50_runs(ui: SeededClient, count: int) -> None:
    query = "&".join(f"runs={n:032x}" for n in range(count))
    body = page(ui, f"/compare?{query}", status=400)
    assert "2 to 50 runs" in body


def test_compare_is_authorized_as_the_runs_experiment(ui: SeededClient) -> None:
    """A reader granted on one experiment compares its runs (as its runs table offers), and
    still cannot pull in a run of an experiment they hold no role on."""
    from shipyard.security import Security
    from shipyard.server.auth import auth_for_workspace

    security = Security.for_workspace(ui.ws)
    security.create_user("erin", actor="test")
    security.grant("erin", "reader", f"experiment:{ui.seeded.experiment_id}", actor="test")
    token = security.create_token("erin", "ui", actor="test").secret
    other = ui.ws.store.create_experiment("elsewhere")
    outside = ui.ws.store.create_run(other, run_name="outside").info.run_id
    authenticator, authorizer = auth_for_workspace(ui.ws)
    app = create_app(ui.ws, authenticator=authenticator, authorizer=authorizer)
    query = "&".join(f"runs={i}" for i in ui.seeded.run_ids[:3])
    with httpx.Client(
        transport=ASGISyncTransport(app),
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {token}"},
    ) as c:
        assert c.get(f"/experiments/{ui.seeded.experiment_id}").status_code == 200
        assert c.get(f"/compare?{query}").status_code == 200
        data = c.get(f"/ui/data/compare/metric?{query}&key=accuracy")
        assert data.status_code == 200
        assert len(data.json()["series"]) == 3
        assert c.get(f"/compare?{query}&runs={outside}").status_code == 403
        mixed = c.get(f"/ui/data/compare/metric?{query}&runs={outside}&key=accuracy")
        assert mixed.status_code == 403


def test_compare_choices_keep_keys_exactly(ui: SeededClient) -> None:
    """A key's option carries the key itself: an option's text alone is sent with its
    whitespace collapsed, which would name another (or no) metric."""
    ids = ui.seeded.run_ids[:2]
    for rid in ids:
        ui.ws.store.log_batch(rid, [Metric("val  loss ", 0.5, BASE_MS, 0)], params={" lr": "1"})
    body = page(ui, "/compare?" + "&".join(f"runs={i}" for i in ids))
    assert '<select id="metric" name="metric">' in body
    for select in ("metric", "my"):
        options = body.split(f'<select id="{select}"')[1].split("</select>")[0]
        assert '<option value="val  loss ">val  loss </option>' in options
    px = body.split('<select id="px"')[1].split("</select>")[0]
    assert '<option value=" lr"' in px


def test_registry_pages(ui: SeededClient) -> None:
    models = page(ui, "/models")
    assert "churn" in models
    assert "@champion → v2" in models
    model = page(ui, "/models/churn")
    assert "alias set" in model
    assert "best AUC" in model
    assert model.index("@challenger") < model.index("Versions")
    version = page(ui, "/models/churn/versions/2")
    assert 'class="node kind-data"' in version
    assert 'class="node kind-run"' in version
    assert 'class="node kind-model"' in version
    assert version.count('class="node kind-data"') == 1  # the run's input and registered version
    card = ui.client.get("/models/churn/versions/2/card.md")
    assert card.status_code == 200
    assert card.headers["content-type"].startswith("text/markdown")
    assert "churn" in card.text
    page(ui, "/models/churn/versions/x", status=400)
    page(ui, "/models/churn/versions/9", status=404)


def test_pipeline_pages(ui: SeededClient) -> None:
    first, second = ui.seeded.pipeline_run_ids
    listing = page(ui, "/pipelines")
    assert first[:8] in listing
    assert second[:8] in listing
    body = page(ui, f"/pipelines/runs/{first}")
    assert (
        body.count('<path class="edge"') == 4
    )  # load->clean, clean->stats, clean->train, stats->train
    assert "loading 20 rows" in body  # the step's captured logs
    assert "0 from cache" in body
    again = page(ui, f"/pipelines/runs/{second}")
    assert "4 from cache" in again
    assert again.count('class="node status-succeeded cached"') == 4


def test_dataset_pages(ui: SeededClient) -> None:
    assert "customers" in page(ui, "/datasets")
    assert "v1" in page(ui, "/datasets/customers")
    body = page(ui, "/datasets/customers/versions/1")
    assert "user-edited schema" in body
    charts = [
        json.loads(html.unescape(m))
        for m in re.findall(r'data-chart="bars" data-points="([^"]+)"', body)
    ]
    assert [c["kind"] for c in charts] == ["histogram", "categories", "categories"]
    assert sum(charts[0]["y"]) == pytest.approx(400, abs=1)
    assert sorted(charts[1]["labels"]) == ["basic", "pro", "team"]
    report = page(ui, "/datasets/customers/versions/1/validation")
    assert "Failed" in report
    assert "plan" in report
    assert "age" in report


def test_a_version_with_no_rows_still_has_a_page(ui: SeededClient) -> None:
    """An empty table's version page shows its columns (its inferred schema once had none, and
    the page answered an error)."""
    import pyarrow as pa

    from shipyard.data.service import Datasets

    Datasets(ui.ws).register("empty", pa.table({"score": pa.array([], pa.float64())}))
    body = page(ui, "/datasets/empty/versions/1")
    assert "empty v1" in body
    assert "score" in body
    assert "could not be read" not in body


def test_dataset_versions_diff(ui: SeededClient) -> None:
    listing = page(ui, "/datasets/customers")
    assert 'href="/datasets/customers/diff"' in listing
    body = page(ui, "/datasets/customers/diff")
    assert "v1 → v2" in body
    assert "num rows" in body  # 400 -> 300
    age = body.split('<th scope="row">age</th>')[1].split("</tr>")[0]
    assert "status-drifted" in age
    assert "psi" in age
    plan = body.split('<th scope="row">plan</th>')[1].split("</tr>")[0]
    assert "new: enterprise" in plan
    same = page(ui, "/datasets/customers/diff?base=2&other=2")
    assert "Same content" in same
    page(ui, "/datasets/customers/diff?base=9", status=400)


def test_errors_are_pages_with_the_cause(ui: SeededClient) -> None:
    body = page(ui, "/runs/" + "0" * 32, status=404)
    assert "RESOURCE_DOES_NOT_EXIST" in body
    page(ui, "/experiments/999", status=404)
    page(ui, "/pipelines/runs/nope", status=404)
    page(ui, "/datasets/nope", status=404)


def test_values_from_users_are_escaped(ui: SeededClient) -> None:
    rid = ui.seeded.run_ids[0]
    ui.ws.store.update_run(rid, run_name='<script>alert("x")</script>')
    body = page(ui, f"/experiments/{ui.seeded.experiment_id}")
    assert "<script>alert" not in body
    assert "&lt;script&gt;alert" in body
    assert "<script>" not in body.replace('<script src="', "")


class DenyRuns:
    async def authorize(self, principal: Principal, action: str, resource: str) -> None:
        if resource.startswith("run:"):
            raise PermissionDenied(f"{principal.name} may not {action} {resource}")


def test_pages_and_data_ask_the_authorizer(ui: SeededClient) -> None:
    app = create_app(ui.ws, authorizer=DenyRuns())
    with httpx.Client(transport=ASGISyncTransport(app), base_url="http://testserver") as c:
        assert c.get("/experiments").status_code == 200
        denied = c.get(f"/runs/{ui.seeded.long_run_id}")
        assert denied.status_code == 403
        assert denied.headers["content-type"].startswith("text/html")
        assert "may not read run:" in denied.text
        data = c.get(f"/ui/data/runs/{ui.seeded.long_run_id}/metric?key=loss")
        assert data.status_code == 403
        assert data.json()["error_code"] == "PERMISSION_DENIED"


def test_static_files_are_served_with_the_package(ui: SeededClient) -> None:
    for path in ("/static/ui.js", "/static/ui.css", "/static/vendor/uplot/uPlot.iife.min.js"):
        r = ui.client.get(path)
        assert r.status_code == 200, path
    body = page(ui, "/experiments")
    assert "<script>" not in body
    assert " style=" not in body
    assert " onclick" not in body
