"""A static picture of the model-serving dashboard for the README (no Grafana server runs here).

Runs each panel's queries as range queries against the local Prometheus and draws them with matplotlib in the
dashboard's layout. Cluster-only panels (DCGM GPUs) are drawn with a note instead of data.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: no display on servers and CI

import matplotlib.pyplot as plt

from core.dashboards import PanelSpec, local_expr, panels
from infra.local.prometheus import query_range

COLUMNS = 3
RangeQuery = Callable[[str, float, float, float], list[dict[str, Any]]]


def _legend(template: str, labels: dict[str, str]) -> str:
    out = template
    for key, value in labels.items():
        out = out.replace("{{" + key + "}}", value)
    return out


def _scale(unit: str) -> tuple[float, str]:
    return {
        "s": (1000.0, "ms"),
        "percentunit": (100.0, "%"),
        "bytes": (1 / 2**20, "MiB"),
        "reqps": (1.0, "req/s"),
        "currencyUSD": (1.0, "USD"),
        "percent": (1.0, "%"),
    }.get(unit, (1.0, ""))


def render_png(
    out: Path,
    minutes: int = 30,
    step: float = 5.0,
    run: RangeQuery = query_range,
    progress: Callable[[str], None] = lambda _m: None,
) -> dict[str, int]:
    """Draw every panel over the last `minutes`; return panel title -> number of series drawn."""
    specs = panels()
    end = time.time()
    start = end - minutes * 60
    rows = -(-len(specs) // COLUMNS)
    fig, axes = plt.subplots(rows, COLUMNS, figsize=(6 * COLUMNS, 3.2 * rows), squeeze=False)
    drawn: dict[str, int] = {}
    for ax, spec in zip(axes.flat, specs, strict=False):
        progress(f"panel {spec.title}")
        drawn[spec.title] = _draw(ax, spec, start, end, step, run)
    for ax in list(axes.flat)[len(specs) :]:
        ax.axis("off")
    fig.suptitle(f"Model serving — local Prometheus, last {minutes} min", fontsize=14)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return drawn


def _with_gaps(values: list[list[Any]], end: float, step: float, factor: float) -> tuple[list[float], list[float]]:
    """Minutes before `end` and scaled values; a NaN where samples are missing, so the line breaks instead of
    bridging a period without data."""
    xs: list[float] = []
    ys: list[float] = []
    last = None
    for t, v in values:
        if v in ("NaN", "+Inf", "-Inf"):
            continue
        t = float(t)
        if last is not None and t - last > 1.5 * step:
            xs.append((last + step - end) / 60)
            ys.append(float("nan"))
        xs.append((t - end) / 60)
        ys.append(float(v) * factor)
        last = t
    return xs, ys


def _draw(ax: Any, spec: PanelSpec, start: float, end: float, step: float, run: RangeQuery) -> int:
    factor, unit = _scale(spec.unit)
    ax.set_title(f"{spec.row}: {spec.title}", fontsize=10)
    ax.set_ylabel(unit)
    ax.grid(alpha=0.3)
    if spec.cluster_only:
        ax.text(
            0.5,
            0.5,
            "cluster only (DCGM exporter)\nno GPU in the local runtime",
            ha="center",
            va="center",
            transform=ax.transAxes,
            color="grey",
        )
        return 0
    count = 0
    for query in spec.queries:
        for series in run(local_expr(query.expr), start, end, step):
            xs, ys = _with_gaps(series["values"], end, step, factor)
            if not xs:
                continue
            ax.plot(xs, ys, label=_legend(query.legend, series["metric"]), linewidth=1.5)
            count += 1
    for threshold in spec.thresholds:
        ax.axhline(threshold * factor, color="red", linestyle="--", linewidth=1)
    ax.set_xlabel("minutes ago")
    if count:
        ax.legend(fontsize=7, loc="upper left")
    else:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="grey")
    return count
