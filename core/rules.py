"""Prometheus recording and alerting rules, rendered from the policy for both runtimes.

`rule_groups()` is the one source: `mlp obs render-rules` writes it for the local Prometheus, and the cluster
wraps the same groups into a PrometheusRule. Recording rules are named `level:metric:operation` and carry
`model_name`, `model_version`, so dashboards, alerts and the release executor read the same series.
Where the local and the cluster metric differ (CPU and memory per server), one rule ORs both sources: only one
side exists in a given runtime.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import yaml

from core import contracts
from core import promql as q
from core.cost import replica_usd_per_hour
from core.policy import Policy, policy

RATE = "1m"  # dashboards' rate window: >= 4 scrape intervals locally (5s) and in the cluster (15s)
BY = "model_name, model_version"
RUNBOOK_DIR = "runbooks"
RULES_FILE = "mlp-rules.yml"

RUNBOOKS = contracts.RUNBOOKS  # alert name -> runbooks/<file>.md


# ---------------------------------------------------------------- recording rule names (read by dashboards)


class R:
    """Recording rule names."""

    REQUESTS = f"model_version:requests:rate{RATE}"
    ERROR_RATIO = f"model_version:request_errors:ratio_rate{RATE}"
    LATENCY: ClassVar[dict[int, str]] = {p: f"model_version:request_latency_seconds:p{p}_{RATE}" for p in (50, 95, 99)}
    BATCH_SIZE: ClassVar[dict[int, str]] = {p: f"model_version:request_batch_size:p{p}_{RATE}" for p in (50, 95)}
    CPU = f"model_version:server_cpu_cores:rate{RATE}"
    MEMORY = "model_version:server_resident_memory_bytes"
    REPLICAS = "model_version:servers_up:count"
    INFERENCES = f"model_version:inferences:rate{RATE}"
    COST_PER_1K = "model_version:cost_per_1k_inferences_usd"  # a generate model's inference is a request
    TTFT_P95 = f"model_version:generate_ttft_seconds:p95_{RATE}"
    INTER_TOKEN_P95 = f"model_version:generate_inter_token_seconds:p95_{RATE}"
    TOKENS = f"model_version:generated_tokens:rate{RATE}"
    COST_PER_1M_TOKENS = "model_version:cost_per_1m_generated_tokens_usd"
    DRIFT = "model_version:drift_share:max"
    GPU_UTIL = "gpu:utilisation_percent:avg1m"
    GPU_MEMORY = "gpu:memory_used:ratio"

    @staticmethod
    def slo_errors(window: str) -> str:
        return f"model_version:slo_errors:ratio_rate{window}"

    @staticmethod
    def slo_slow(window: str) -> str:
        return f"model_version:slo_slow_requests:ratio_rate{window}"


def _classify(extra: str = "") -> str:
    """The prediction routes of every task (the pinned route is not among them)."""
    return "{" + f'endpoint=~"{q.PREDICT_ENDPOINTS}"' + extra + "}"


def _of_model(p: Policy, model_name: str, extra: str = "") -> str:
    """One catalogue model's prediction route: its SLO and drift rules carry its own thresholds."""
    route = contracts.server_route(p.model(model_name).task)
    return "{" + f'model_name="{model_name}",endpoint="{route}"' + extra + "}"


def _model_server() -> str:
    return "{" + f'job="{q.MODEL_SERVER_JOB}"' + "}"


def _rate(metric: str, window: str, sel: str) -> str:
    return f"sum by ({BY}) (rate({metric}{sel}[{window}]))"


def error_ratio(window: str, sel: Callable[[str], str] = _classify) -> str:
    """Share of prediction requests answered 5xx; 0 (not empty) when there were requests and no errors."""
    total = _rate(q.REQUEST_TOTAL, window, sel(""))
    errors = _rate(q.REQUEST_TOTAL, window, sel(',http_response_code=~"5.."'))
    return f"({errors} or {total} * 0) / {total}"


def slow_ratio(window: str, threshold_seconds: float, sel: Callable[[str], str] = _classify) -> str:
    """Share of prediction requests slower than the latency SLO. Needs a histogram bucket at exactly the threshold
    (the model server's duration buckets include it; the integration test checks that the series exists)."""
    le = sel(f',le="{threshold_seconds:g}"')
    fast = _rate(f"{q.REQUEST_DURATION}_bucket", window, le)
    total = _rate(f"{q.REQUEST_DURATION}_count", window, sel(""))
    return f"1 - ({fast} / {total})"


def quantile(phi: float, metric: str, sel: str) -> str:
    return f"histogram_quantile({phi}, sum by (le, {BY}) (rate({metric}_bucket{sel}[{RATE}])))"


def _port_join(expr: str) -> str:
    """Local: attribute a process-exporter group (named `model-server-<port>`) to the model version whose
    file_sd target listens on that port."""
    by_port = f'label_replace({expr}, "port", "$1", "groupname", "model-server-([0-9]+)")'
    targets = f'group by (port, {BY}) (label_replace(up{_model_server()}, "port", "$1", "instance", ".*:([0-9]+)"))'
    return f"sum by ({BY}) ({by_port} * on (port) group_left ({BY}) {targets})"


def _pod_join(expr: str) -> str:
    """Cluster: attribute container usage to the model version of the pod (from the pod's scrape target)."""
    pods = f"group by (namespace, pod, {BY}) (up{_model_server()})"
    return f"sum by ({BY}) ({expr} * on (namespace, pod) group_left ({BY}) {pods})"


def cpu_cores() -> str:
    local = _port_join(f'rate({q.PROCESS_CPU_SECONDS}{{job="{q.PROCESS_EXPORTER_JOB}"}}[{RATE}])')
    container = f'{{namespace="{q.SERVING_NAMESPACE}",container!="",container!="POD"}}'
    cluster = _pod_join(f"rate({q.CONTAINER_CPU_SECONDS}{container}[{RATE}])")
    return f"{local} or {cluster}"


def memory_bytes() -> str:
    local = _port_join(f'{q.PROCESS_MEMORY_BYTES}{{job="{q.PROCESS_EXPORTER_JOB}",memtype="resident"}}')
    container = f'{{namespace="{q.SERVING_NAMESPACE}",container!="",container!="POD"}}'
    cluster = _pod_join(f"{q.CONTAINER_MEMORY_WORKING_SET}{container}")
    return f"{local} or {cluster}"


# ---------------------------------------------------------------- groups


def _record(name: str, expr: str, model_name: str | None = None) -> dict[str, Any]:
    """A recording rule; one recorded per catalogue model carries its `model_name` as a static label too, which
    its series have anyway and which tells the models' rules apart (promtool refuses look-alike duplicates)."""
    rule: dict[str, Any] = {"record": name, "expr": expr}
    if model_name is not None:
        rule["labels"] = {"model_name": model_name}
    return rule


def recording_group(p: Policy) -> dict[str, Any]:
    rules = [
        _record(R.REQUESTS, _rate(q.REQUEST_TOTAL, RATE, _classify())),
        _record(R.ERROR_RATIO, error_ratio(RATE)),
        *[_record(R.LATENCY[k], quantile(k / 100, q.REQUEST_DURATION, _classify())) for k in R.LATENCY],
        *[_record(R.BATCH_SIZE[k], quantile(k / 100, q.REQUEST_BATCH_SIZE, "")) for k in R.BATCH_SIZE],
        _record(R.CPU, cpu_cores()),
        _record(R.MEMORY, memory_bytes()),
        _record(R.REPLICAS, f"count by ({BY}) (up{_model_server()} == 1)"),
        _record(R.INFERENCES, _rate(q.INFERENCES_TOTAL, RATE, "")),
        # USD per 1,000 = (replicas x replica $/h) / (inferences per hour / 1000); replica $/h is the CPU
        # instance price times the share one replica reserves (core/cost.py), per model: each may size its pods.
        *[_cost_per_1k(p.for_model(m.name), m.name) for m in p.models],
        *_generation_records(p),
        _record(R.DRIFT, f"max by ({BY}) ({q.DRIFT_SCORE})"),
        _record(R.GPU_UTIL, f"avg by (Hostname, gpu) (avg_over_time({q.DCGM_GPU_UTIL}[1m]))"),
        _record(
            R.GPU_MEMORY,
            f"max by (Hostname, gpu) ({q.DCGM_FB_USED} / ({q.DCGM_FB_USED} + {q.DCGM_FB_FREE}))",
        ),
    ]
    return {"name": "mlp-model-serving", "rules": rules}


def _cost_per_1k(p: Policy, model_name: str) -> dict[str, Any]:
    sel = "{" + f'model_name="{model_name}"' + "}"
    # A classifier counts texts (a request may carry many); a generate model, requests.
    served = R.INFERENCES if p.model(model_name).task != "generate" else R.REQUESTS
    replicas, inferences = f"{R.REPLICAS}{sel}", f"{served}{sel}"
    return _record(
        R.COST_PER_1K, f"({replicas} * {replica_usd_per_hour(p):.6g}) / on ({BY}) ({inferences} * 3.6 > 0)", model_name
    )


def _generation_records(p: Policy) -> list[dict[str, Any]]:
    """TTFT and inter-token p95, generated tokens/s and USD per million generated tokens of the generate models."""
    generators = [m.name for m in p.models if m.task == "generate"]
    if not generators:
        return []
    sel = "{" + f'model_name=~"{"|".join(generators)}"' + "}"
    completion = "{" + f'model_name=~"{"|".join(generators)}",kind="completion"' + "}"
    records = [
        _record(R.TTFT_P95, quantile(0.95, q.GENERATE_TTFT, sel)),
        _record(R.INTER_TOKEN_P95, quantile(0.95, q.GENERATE_INTER_TOKEN, sel)),
        _record(R.TOKENS, _rate(q.GENERATE_TOKENS_TOTAL, RATE, completion)),
    ]
    for name in generators:
        one = "{" + f'model_name="{name}"' + "}"
        usd = f"{R.REPLICAS}{one} * {replica_usd_per_hour(p.for_model(name)):.6g}"
        # USD per 1M tokens = replicas x $/h / (tokens per hour / 1e6)
        records.append(_record(R.COST_PER_1M_TOKENS, f"({usd}) / on ({BY}) ({R.TOKENS}{one} * 0.0036 > 0)", name))
    return records


def _generation_alert(p: Policy, model_name: str) -> dict[str, Any]:
    g = p.generation
    sel = "{" + f'model_name="{model_name}"' + "}"
    ttft, gap = g.ttft_p95_ms / 1000, g.inter_token_p95_ms / 1000
    return _alert(
        contracts.ALERT_GENERATION_SLOW,
        f"{R.TTFT_P95}{sel} > {ttft:g} or {R.INTER_TOKEN_P95}{sel} > {gap:g}",
        "ticket",
        "{{ $labels.model_name }} v{{ $labels.model_version }} generates slower than its objectives",
        f"p95 time to first token above {g.ttft_p95_ms:g} ms or p95 time between tokens above "
        f"{g.inter_token_p95_ms:g} ms for 10 minutes (policy generation); the value is {{{{ $value }}}} s.",
        for_="10m",
    )


def _rag_alert(p: Policy, model_name: str) -> dict[str, Any]:
    """A RAG model answering without its generator (or not at all) too often: the answers are still cited chunks,
    so a ticket, not a page."""
    r = p.rag
    by = "model_name, model_version"
    answers = f'{q.RAG_ANSWERS_TOTAL}{{model_name="{model_name}"}}'
    degraded = f'{q.RAG_ANSWERS_TOTAL}{{model_name="{model_name}",mode!="generated"}}'
    ratio = f"sum by ({by}) (rate({degraded}[10m])) / sum by ({by}) (rate({answers}[10m]))"
    enough = f"sum by ({by}) (increase({answers}[10m])) >= {r.alert_min_questions}"
    return _alert(
        contracts.ALERT_RAG_DEGRADED,
        f"({ratio} > {r.alert_max_degraded_ratio:g}) and on ({by}) ({enough})",
        "ticket",
        "{{ $labels.model_name }} v{{ $labels.model_version }} answers without its generator",
        f"More than {r.alert_max_degraded_ratio:.0%} of the questions of the last 10 minutes were answered with "
        "retrieved chunks only or failed (policy rag); the share is {{ $value | humanizePercentage }}.",
        for_="5m",
    )


def _slo_windows(p: Policy) -> list[str]:
    windows: list[str] = []
    for long, short, _ in p.slo.burn_rate_windows:
        windows += [w for w in (short, long) if w not in windows]
    return windows


def slo_group(p: Policy, model_name: str) -> dict[str, Any]:
    """One model's SLO recordings and burn-rate alerts, from its own objectives (catalogue overrides)."""
    p = p.for_model(model_name)
    threshold = p.slo.latency_p95_ms / 1000

    def sel(extra: str) -> str:
        return _of_model(p, model_name, extra)

    own = "{" + f'model_name="{model_name}"' + "}"
    rules = []
    for w in _slo_windows(p):
        rules.append(_record(R.slo_errors(w), error_ratio(w, sel), model_name))
        rules.append(_record(R.slo_slow(w), slow_ratio(w, threshold, sel), model_name))
    budgets = [
        (
            contracts.ALERT_LATENCY_BURN,
            R.slo_slow,
            0.05,  # the SLO is a p95: 5% of requests may exceed it
            f"requests slower than {p.slo.latency_p95_ms:g} ms",
        ),
        (
            contracts.ALERT_ERROR_BURN,
            R.slo_errors,
            round(1 - p.slo.availability_target, 6),
            "requests answered 5xx",
        ),
    ]
    for alert, series, budget, what in budgets:
        for i, (long, short, factor) in enumerate(p.slo.burn_rate_windows):
            limit = f"{factor * budget:.6g}"
            rules.append(
                _alert(
                    alert,
                    # Its own model's recordings only: each model's alert holds its own objectives.
                    f"{series(long)}{own} > {limit} and {series(short)}{own} > {limit}",
                    severity="page" if i == 0 else "ticket",
                    summary=f"{{{{ $labels.model_name }}}} v{{{{ $labels.model_version }}}} burns its budget of "
                    f"{what} {factor:g}x too fast ({long} and {short} windows)",
                    description=f"{what} over {long}: {{{{ $value | humanizePercentage }}}} "
                    f"(budget {budget:.3g}, burn-rate factor {factor:g}).",
                    labels={"long_window": long, "short_window": short, "model_name": model_name},
                )
            )
    return {"name": f"mlp-slo-{model_name}", "rules": rules}


def _alert(
    name: str,
    expr: str,
    severity: str,
    summary: str,
    description: str,
    for_: str = "0s",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity, **(labels or {})},
        "annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": f"{RUNBOOK_DIR}/{RUNBOOKS[name]}.md",
            **(annotations or {}),
        },
    }


def _seconds(s: int) -> str:
    return q.seconds_to_promql(s)


def _drift_alert(p: Policy, model_name: str) -> dict[str, Any]:
    mv = "{{ $labels.model_name }} v{{ $labels.model_version }}"
    sel = "{" + f'model_name="{model_name}"' + "}"
    return _alert(
        contracts.ALERT_DRIFT,
        f"{R.DRIFT}{sel} > {p.drift.threshold:g}",
        "ticket",
        f"Input drift on {mv}",
        f"Share of drifted features {{{{ $value | humanizePercentage }}}} > {p.drift.threshold:g} "
        f"(drift job over the last {p.drift.window_hours} h).",
        # The raw score travels with the alert: a retraining it starts records it as lineage.
        annotations={contracts.DRIFT_SCORE_ANNOTATION: "{{ $value }}"},
    )


def alert_group(p: Policy) -> dict[str, Any]:
    a = p.alerting
    ns = f'{{namespace="{q.SERVING_NAMESPACE}"}}'
    created = f"max by (namespace, pod) ({q.POD_CREATED}{ns})"
    ready_at = f"max by (namespace, pod) ({q.POD_READY_TIME}{ns})"
    not_ready = f'max by (namespace, pod) ({q.POD_READY}{{namespace="{q.SERVING_NAMESPACE}",condition="true"}})'
    cold = p.scaling.scale_from_zero_alert_seconds
    recent = f"(time() - {created}) < {a.cold_start_lookback_seconds}"
    mv = "{{ $labels.model_name }} v{{ $labels.model_version }}"
    gpu = "{{ $labels.Hostname }} GPU {{ $labels.gpu }}"
    rules = [
        _alert(
            contracts.ALERT_SERVER_DOWN,
            f"up{_model_server()} == 0",
            "page",
            f"Model server {mv} ({{{{ $labels.instance }}}}) is down",
            "Prometheus cannot scrape the model server: it is not running or not answering /metrics.",
            for_=_seconds(a.model_server_down_for_seconds),
        ),
        # The drift job reads a classifier's inference log; generate models are watched by their speed.
        *[_drift_alert(p.for_model(m.name), m.name) for m in p.models if m.task == "classify"],
        *[_generation_alert(p.for_model(m.name), m.name) for m in p.models if m.task == "generate"],
        *[_rag_alert(p.for_model(m.name), m.name) for m in p.models if m.task == "rag"],
        _alert(
            contracts.ALERT_CANARY_FAILED,
            f"max by ({BY}) ({q.RELEASE_ANALYSIS_FAILED}) > 0",
            "ticket",
            f"Canary analysis of {mv} failed; the release was rolled back",
            "The release executor's analysis found the canary worse than stable (latency ratio, error rate) "
            "and restored stable; the candidate needs a look before a new release.",
        ),
        _alert(
            contracts.ALERT_CANARY_QUALITY,
            f"max by ({BY}, stable_version) ({q.RELEASE_QUALITY_FAILED}) > 0",
            "ticket",
            f"The answers of {mv} diverged from stable v{{{{ $labels.stable_version }}}}'s; the release was rolled "
            "back in its shadow phase",
            "On the same mirrored requests the candidate's labels or confidence differed from stable's beyond the "
            "policy's canary.quality thresholds; no client got its answers. The measures are the mlp_shadow_* series.",
        ),
        # The same alert for releases Argo Rollouts runs in the cluster, from the controller's own metrics: the
        # executor's pushed gauge exists only where the local executor ran the analysis.
        _alert(
            contracts.ALERT_CANARY_FAILED,
            f'label_replace(max by (namespace, name) ({q.ARGO_ROLLOUT_INFO}{{namespace="{q.SERVING_NAMESPACE}",'
            f'phase="{q.ARGO_DEGRADED_PHASE}"}}), "model_name", "$1", "name", "(.+)") == 1',
            "ticket",
            "Canary analysis of {{ $labels.model_name }} failed; Argo Rollouts aborted the rollout",
            "An AnalysisRun of the rollout failed (latency ratio, error rate, restarts): traffic went back to stable "
            "and the rollout is Degraded until the next release. `kubectl argo rollouts get rollout` shows the run.",
            labels={"source": "argo-rollouts"},
        ),
        _alert(
            contracts.ALERT_RETRAINED_GATE_FAILED,
            f"max by ({BY}) ({q.RETRAINED_GATE_FAILED}) > 0",
            "ticket",
            f"Retrained candidate {mv} failed the promotion gate",
            "A retraining started by drift produced a version the gate rejected; the loop does not retry it. "
            "Drift-triggered retraining stays refused until a person looks (the gate report is on the version).",
        ),
        _alert(
            contracts.ALERT_SCALE_FROM_ZERO_SLOW,
            # A finished slow start (recent pods only, so it does not alert forever), or a pod still starting.
            f"(({ready_at} - {created}) > {cold} and on (namespace, pod) {recent})"
            f" or (((time() - {created}) > {cold}) and on (namespace, pod) ({not_ready} == 0))",
            "ticket",
            "Model server pod {{ $labels.pod }} took longer than " + f"{cold} s to become ready",
            f"A request arriving at zero replicas waits for the cold start: {{{{ $value | humanizeDuration }}}} "
            f"(alert above {cold} s, policy scaling.scale_from_zero_alert_seconds).",
        ),
        _alert(
            contracts.ALERT_LOG_DROPPED,
            f"sum by ({BY}) (increase({q.INFERENCE_LOG_DROPPED}[{_seconds(a.inference_log_drop_window_seconds)}])) > 0",
            "ticket",
            f"{mv} dropped inference-log samples",
            "The inference-log queue was full or the upload failed: drift checks see fewer samples than served "
            "({{ $value }} in the window).",
        ),
        _alert(
            contracts.ALERT_GPU_MEMORY,
            f"{R.GPU_MEMORY} > {a.gpu_memory_used_ratio:g}",
            "ticket",
            f"{gpu} framebuffer {{{{ $value | humanizePercentage }}}} used",
            f"Above {a.gpu_memory_used_ratio:g} of GPU memory: the next model server or a larger batch will OOM.",
            for_="10m",
        ),
        _alert(
            contracts.ALERT_GPU_IDLE,
            f"avg_over_time({R.GPU_UTIL}[{_seconds(a.gpu_underutilised_window_seconds)}])"
            f" < {a.gpu_underutilised_percent:g}",
            "info",
            f"{gpu} averaged {{{{ $value | humanize }}}}% utilisation",
            f"Below {a.gpu_underutilised_percent:g}% over {_seconds(a.gpu_underutilised_window_seconds)}: "
            "the GPU costs more than CPU serving at this load (docs/finops.md, break-even rate).",
        ),
    ]
    return {"name": "mlp-alerts", "rules": rules}


def rule_groups(pol: Policy | None = None) -> list[dict[str, Any]]:
    """Every recording and alerting rule group (Prometheus rule-file `groups:` entries), for every catalogue model."""
    p = pol or policy()
    return [recording_group(p), *[slo_group(p, m.name) for m in p.models], alert_group(p)]


def alert_names(groups: list[dict[str, Any]] | None = None) -> list[str]:
    names: list[str] = []
    for group in groups or rule_groups():
        for rule in group["rules"]:
            if "alert" in rule and rule["alert"] not in names:
                names.append(rule["alert"])
    return names


def render(out_dir: Path) -> Path:
    """Write the rule file the local Prometheus loads (`rule_files: <dir>/*.yml`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / RULES_FILE
    path.write_text(yaml.safe_dump({"groups": rule_groups()}, sort_keys=False, width=1000))
    return path
