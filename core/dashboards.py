"""Grafana dashboards as code (grafana-foundation-sdk), built from the recording rules in `rules.py`.

`dashboards()` returns name -> dashboard JSON; the cluster wraps each into a ConfigMap the Grafana sidecar
provisions, `mlp obs render-dashboards` writes them to `docs/dashboards/`. Panels are declared as data first
(`PANELS`), so the static PNG renderer and the integration test run exactly the queries Grafana would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common, dashboard

from core import promql as q
from core.policy import Policy, policy
from core.rules import R

MODEL_SERVING = "model-serving"
MODEL_VAR = "model_name"  # one entry per catalogue model (policy.yaml models)
VERSION_VAR = "model_version"
DATASOURCE_VAR = "datasource"
# Panel selector bound to the template variables.
V = f'{{{MODEL_VAR}=~"${MODEL_VAR}",{VERSION_VAR}=~"${VERSION_VAR}"}}'


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class PanelSpec:
    row: str
    title: str
    unit: str
    queries: tuple[Query, ...]
    description: str = ""
    cluster_only: bool = False  # needs metrics that only the cluster has (DCGM GPUs): no data locally, by design
    generate_only: bool = False  # a `generate` model's measures: data only while one serves
    thresholds: tuple[float, ...] = field(default=())  # drawn as lines (SLO limits)


def _per_version(expr: str, legend: str = "v{{model_version}}") -> Query:
    return Query(expr, legend)


def panels(pol: Policy | None = None) -> list[PanelSpec]:
    p = pol or policy()
    lat = [_per_version(f"{R.LATENCY[k]}{V}", f"p{k} v{{{{model_version}}}}") for k in sorted(R.LATENCY)]
    return [
        PanelSpec(
            "Traffic",
            "Request rate",
            "reqps",
            (_per_version(f"{R.REQUESTS}{V}"),),
            "Requests/s to /classify per model version (BentoML request counter).",
        ),
        PanelSpec(
            "Traffic",
            "Latency p50 / p95 / p99",
            "s",
            tuple(lat),
            "Server-side request duration quantiles.",
            thresholds=(p.slo.latency_p95_ms / 1000, p.slo.latency_p99_ms / 1000),
        ),
        PanelSpec(
            "Traffic",
            "Error rate (5xx share)",
            "percentunit",
            (_per_version(f"{R.ERROR_RATIO}{V}"),),
            "Share of requests answered 5xx.",
            thresholds=(p.slo.error_rate,),
        ),
        PanelSpec(
            "Resources",
            "CPU per server",
            "short",
            (_per_version(f"{R.CPU}{V}"),),
            "CPU cores used by each version's servers (process-exporter locally, cAdvisor in the cluster).",
        ),
        PanelSpec(
            "Resources",
            "Memory per server",
            "bytes",
            (_per_version(f"{R.MEMORY}{V}"),),
            "Resident memory of each version's servers.",
        ),
        PanelSpec(
            "Resources",
            "GPU utilisation (DCGM)",
            "percent",
            (Query(R.GPU_UTIL, "{{Hostname}} GPU {{gpu}}"),),
            "NVIDIA DCGM exporter, GPU node group only.",
            cluster_only=True,
        ),
        PanelSpec(
            "Resources",
            "GPU memory used (DCGM)",
            "percentunit",
            (Query(R.GPU_MEMORY, "{{Hostname}} GPU {{gpu}}"),),
            "Framebuffer used / total.",
            cluster_only=True,
            thresholds=(p.alerting.gpu_memory_used_ratio,),
        ),
        PanelSpec(
            "Batching",
            "Texts per request p50 / p95",
            "short",
            tuple(_per_version(f"{R.BATCH_SIZE[k]}{V}", f"p{k} v{{{{model_version}}}}") for k in sorted(R.BATCH_SIZE)),
            f"Distribution of {q.REQUEST_BATCH_SIZE} (texts per /classify call).",
        ),
        PanelSpec(
            "Business",
            "Inferences served",
            "short",
            (_per_version(f"{R.INFERENCES}{V}"),),
            "Texts classified per second.",
        ),
        PanelSpec(
            "Business",
            "Cost per 1,000 inferences",
            "currencyUSD",
            (_per_version(f"{R.COST_PER_1K}{V}"),),
            f"Replica price ({p.prices.cpu_instance} share, policy prices) / inferences per hour x 1000.",
        ),
        PanelSpec(
            "Generation",
            "Time to first token / between tokens p95",
            "s",
            (
                _per_version(f"{R.TTFT_P95}{V}", "first token v{{model_version}}"),
                _per_version(f"{R.INTER_TOKEN_P95}{V}", "between tokens v{{model_version}}"),
            ),
            "Generate models (llama.cpp): request start to the first token, and the gap between two tokens.",
            generate_only=True,
            thresholds=(p.generation.ttft_p95_ms / 1000, p.generation.inter_token_p95_ms / 1000),
        ),
        PanelSpec(
            "Generation",
            "Generated tokens/s",
            "short",
            (_per_version(f"{R.TOKENS}{V}"),),
            "Completion tokens generated per second (prompt tokens are not counted).",
            generate_only=True,
        ),
        PanelSpec(
            "Generation",
            "Cost per 1M generated tokens",
            "currencyUSD",
            (_per_version(f"{R.COST_PER_1M_TOKENS}{V}"),),
            "Replicas x replica price / generated tokens per hour x 1,000,000.",
            generate_only=True,
        ),
        PanelSpec(
            "Quality",
            "Drift: share of drifted features",
            "percentunit",
            (_per_version(f"{R.DRIFT}{V}"),),
            "Pushed by the drift job (Evidently).",
            thresholds=(p.drift.threshold,),
        ),
    ]


def _datasource() -> dashboard.DataSourceRef:
    return dashboard.DataSourceRef(type_val="prometheus", uid=f"${{{DATASOURCE_VAR}}}")


def _panel(spec: PanelSpec) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(spec.title)
        .description(spec.description + (" Cluster only: no data in the local runtime." if spec.cluster_only else ""))
        .unit(spec.unit)
        .datasource(_datasource())
        .height(8)
        .span(8)
        .line_width(2)
        .fill_opacity(10)
        .legend(
            common_b.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
    )
    if spec.unit in ("percentunit",):
        panel = panel.min(0)
    if spec.thresholds:
        steps = [dashboard.Threshold(value=None, color="green")]
        steps += [dashboard.Threshold(value=t, color="red") for t in spec.thresholds]
        panel = panel.thresholds(
            dash.ThresholdsConfig().mode(dashboard.ThresholdsMode.ABSOLUTE).steps(steps)
        ).thresholds_style(common_b.GraphThresholdsStyleConfig().mode(common.GraphTresholdsStyleMode.LINE))
    for i, query in enumerate(spec.queries):
        panel = panel.with_target(
            prometheus.Dataquery().expr(query.expr).legend_format(query.legend).ref_id(chr(ord("A") + i))
        )
    return panel


def model_serving_dashboard(pol: Policy | None = None) -> dict[str, Any]:
    p = pol or policy()
    default = p.release.default_model
    builder = (
        dash.Dashboard("Model serving")
        .uid("mlp-model-serving")
        .tags(["mlp", "model-serving"])
        .refresh("30s")
        .time("now-1h", "now")
        .timezone(common.TimeZoneBrowser)
        .with_variable(
            dash.DatasourceVariable(DATASOURCE_VAR).id(DATASOURCE_VAR).label("Data source").type("prometheus")
        )
        .with_variable(
            dash.CustomVariable(MODEL_VAR)
            .id(MODEL_VAR)
            .label("Model")
            .values(",".join(m.name for m in p.models))
            .current(dashboard.VariableOption(selected=True, text=default, value=default))
        )
        .with_variable(
            dash.QueryVariable(VERSION_VAR)
            .id(VERSION_VAR)
            .label("Model version")
            .datasource(_datasource())
            .query(f'label_values({R.REQUESTS}{{{MODEL_VAR}=~"${MODEL_VAR}"}}, {VERSION_VAR})')
            .refresh(dashboard.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .multi(True)
            .include_all(True)
            .all_value(".*")
            .current(dashboard.VariableOption(selected=True, text="All", value="$__all"))
        )
    )
    row = None
    for spec in panels(p):
        if spec.row != row:
            builder = builder.with_row(dash.Row(spec.row))
            row = spec.row
        builder = builder.with_panel(_panel(spec))
    built: dict[str, Any] = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    return built


def dashboards(pol: Policy | None = None) -> dict[str, dict[str, Any]]:
    """Dashboard name -> Grafana dashboard JSON (provisionable as is)."""
    return {MODEL_SERVING: model_serving_dashboard(pol)}


def write(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, body in dashboards().items():
        path = out_dir / f"{name}.json"
        path.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
        paths.append(path)
    return paths


def local_expr(expr: str) -> str:
    """A panel query as Prometheus runs it with every model and version selected (Grafana substitutes them)."""
    return expr.replace(f"${VERSION_VAR}", ".*").replace(f"${MODEL_VAR}", ".*")
