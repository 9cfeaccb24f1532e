"""The dashboards as rendered: valid Grafana JSON with the version variable, every query built on rules that exist,
cluster-only panels exactly the DCGM ones, and the static renderer drawing what the queries return."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core import dashboards, rules
from core import promql as q
from pipelines.observability.snapshot import render_png

DCGM = (q.DCGM_GPU_UTIL, q.DCGM_FB_USED, q.DCGM_FB_FREE)


def _recorded() -> dict[str, str]:
    return {r["record"]: r["expr"] for g in rules.rule_groups() for r in g["rules"] if "record" in r}


def test_model_serving_dashboard_has_the_version_variable_and_every_panel() -> None:
    body = dashboards.dashboards()[dashboards.MODEL_SERVING]
    variables = {v["name"]: v for v in body["templating"]["list"]}
    assert variables[dashboards.VERSION_VAR]["type"] == "query"
    assert variables[dashboards.VERSION_VAR]["includeAll"] is True
    assert variables[dashboards.DATASOURCE_VAR]["query"] == "prometheus"
    grafana_panels = [p for p in body["panels"] if p["type"] == "timeseries"]
    specs = dashboards.panels()
    assert [p["title"] for p in grafana_panels] == [s.title for s in specs]
    for panel, spec in zip(grafana_panels, specs, strict=True):
        assert [t["expr"] for t in panel["targets"]] == [qq.expr for qq in spec.queries]
        assert panel["datasource"]["uid"] == "${datasource}"
    rows = [p["title"] for p in body["panels"] if p["type"] == "row"]
    assert rows == list(dict.fromkeys(s.row for s in specs))
    json.dumps(body)  # serialisable as is (the cluster puts it in a ConfigMap)


def test_required_panels_exist() -> None:
    exprs = " ".join(qq.expr for s in dashboards.panels() for qq in s.queries)
    for record in (
        rules.R.REQUESTS,
        rules.R.ERROR_RATIO,
        *rules.R.LATENCY.values(),
        rules.R.CPU,
        rules.R.MEMORY,
        rules.R.GPU_UTIL,
        *rules.R.BATCH_SIZE.values(),
        rules.R.INFERENCES,
        rules.R.COST_PER_1K,
        rules.R.DRIFT,
        rules.R.TTFT_P95,
        rules.R.INTER_TOKEN_P95,
        rules.R.TOKENS,
        rules.R.COST_PER_1M_TOKENS,
    ):
        assert record in exprs, f"no panel shows {record}"


def test_every_query_reads_recording_rules_and_is_version_filtered() -> None:
    recorded = _recorded()
    for spec in dashboards.panels():
        for query in spec.queries:
            name = query.expr.split("{")[0]
            assert name in recorded, f"{spec.title}: {name} is not a recording rule"
            if not spec.cluster_only:
                assert f"${dashboards.VERSION_VAR}" in query.expr, f"{spec.title}: not filtered by model_version"


def test_cluster_only_panels_are_exactly_the_dcgm_ones() -> None:
    recorded = _recorded()
    for spec in dashboards.panels():
        uses_dcgm = any(m in recorded[qq.expr.split("{")[0]] for qq in spec.queries for m in DCGM)
        assert spec.cluster_only == uses_dcgm, spec.title


def test_write_produces_one_json_file_per_dashboard(tmp_path: Path) -> None:
    paths = dashboards.write(tmp_path)
    assert {p.stem for p in paths} == set(dashboards.dashboards())
    for path in paths:
        assert json.loads(path.read_text())["uid"]


def test_static_render_draws_each_returned_series(tmp_path: Path) -> None:
    asked: list[str] = []

    def fake_range(expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        asked.append(expr)
        if "cost" in expr:
            return []  # a panel without data is drawn with a note, not an error
        values = [[start + i * step, str(i)] for i in range(5)]
        return [
            {"metric": {"model_version": "1"}, "values": values},
            {"metric": {"model_version": "2"}, "values": values},
        ]

    out = tmp_path / "dash.png"
    drawn = render_png(out, minutes=5, run=fake_range)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    specs = {s.title: s for s in dashboards.panels()}
    for title, n in drawn.items():
        spec = specs[title]
        expected = 0 if spec.cluster_only or "Cost" in title else 2 * len(spec.queries)
        assert n == expected, title
    assert all("$model_version" not in e for e in asked)
    assert not any(q.DCGM_GPU_UTIL in e or rules.R.GPU_UTIL in e for e in asked)
