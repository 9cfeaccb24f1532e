"""The rendered Prometheus rules: promtool accepts them, every alert fires when it should and not otherwise, the
recording rules compute what they claim, and every alert has a runbook.

Inputs are derived from the policy (a bad ratio between the burn-rate limit and 1, a drift score above the
threshold...), so the tests keep meaning the same thing when policy.yaml changes. Alert assertions go through
the `ALERTS` series (`promql_expr_test`), which checks labels and state without restating annotation text.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from core import promql as q
from core import rules
from core.cost import cost_per_1k, replica_usd_per_hour
from core.policy import policy

REPO_ROOT = Path(__file__).resolve().parents[2]
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
# A catalogue model: SLO, drift and cost rules are rendered per model (policy.yaml models).
M = {"model_name": policy().release.default_model, "model_version": "2"}
MS = {**M, "job": q.MODEL_SERVER_JOB, "instance": "127.0.0.1:13000"}


def series(metric: str, labels: dict[str, str], values: str) -> dict[str, str]:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{metric}{{{inner}}}", "values": values}


def firing(alert: str, eval_time: str, expected: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "eval_time": eval_time,
        "expr": f'ALERTS{{alertname="{alert}",alertstate="firing"}}',
        "exp_samples": [
            {"labels": "ALERTS" + _labels({"alertname": alert, "alertstate": "firing", **labels}), "value": 1}
            for labels in expected
        ],
    }


def _labels(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def run_promtool(tmp_path: Path, tests: list[dict[str, Any]]) -> None:
    rules.render(tmp_path)
    spec = {"rule_files": [rules.RULES_FILE], "evaluation_interval": "1m", "tests": tests}
    (tmp_path / "test.yml").write_text(yaml.safe_dump(spec, sort_keys=False, width=1000))
    result = subprocess.run(
        [PROMTOOL, "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"promtool test rules failed:\n{result.stdout}\n{result.stderr}"


def counter(per_minute: float, minutes: int = 120) -> str:
    return f"0+{per_minute:g}x{minutes}"


# ---------------------------------------------------------------- static checks


def test_rendered_rules_pass_promtool_check(tmp_path: Path) -> None:
    path = rules.render(tmp_path)
    result = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_runbook_with_the_four_sections() -> None:
    groups = rules.rule_groups()
    for group in groups:
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            url = rule["annotations"]["runbook_url"]
            path = REPO_ROOT / url
            assert path.is_file(), f"{rule['alert']}: runbook {url} does not exist"
            text = path.read_text().lower()
            for section in ("## symptom", "## checks", "## commands", "## rollback"):
                assert section in text, f"{url}: missing section {section!r}"
    assert set(rules.alert_names(groups)) == set(rules.RUNBOOKS), "RUNBOOKS lists an alert that is not rendered"


def test_burn_rate_alerts_follow_policy_windows() -> None:
    p = policy()
    slo = next(g for g in rules.rule_groups() if g["name"] == f"mlp-slo-{p.release.default_model}")
    for alert in ("ModelLatencySLOBurnRate", "ModelErrorSLOBurnRate"):
        windows = [
            (r["labels"]["long_window"], r["labels"]["short_window"]) for r in slo["rules"] if r.get("alert") == alert
        ]
        assert windows == [(lw, sw) for lw, sw, _ in p.slo.burn_rate_windows]


PROMQL_WORDS = {
    "sum",
    "max",
    "min",
    "avg",
    "count",
    "group",
    "by",
    "on",
    "and",
    "or",
    "unless",
    "group_left",
    "rate",
    "increase",
    "time",
    "vector",
    "histogram_quantile",
    "label_replace",
    "avg_over_time",
    "humanize",
}


def metric_names(expr: str) -> set[str]:
    """Metric names an expression reads: drop strings, label matchers, grouping clauses, ranges and keywords."""
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|on|group_left)\s*\([^)]*\)", "", expr)
    names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr))
    return {n for n in names if n not in PROMQL_WORDS and not re.fullmatch(r"e\d*", n)}


def test_queries_use_only_names_from_promql_module() -> None:
    """Metric names in the rules come from core/promql.py (or are recording rules defined here)."""
    known = {v for k, v in vars(q).items() if k.isupper() and isinstance(v, str)}
    recorded = {r["record"] for g in rules.rule_groups() for r in g["rules"] if "record" in r}
    allowed = known | recorded | {"up"}
    for group in rules.rule_groups():
        for rule in group["rules"]:
            names = {re.sub(r"_(bucket|count|sum)$", "", n) for n in metric_names(rule["expr"])}
            unknown = names - allowed
            assert not unknown, f"{rule.get('record') or rule.get('alert')}: {unknown} not in core/promql.py"


# ---------------------------------------------------------------- alerts fire when they should, not otherwise


def _requests(ok_per_min: float, err_per_min: float | str) -> list[dict[str, str]]:
    sel = {**MS, "endpoint": q.PREDICT_ENDPOINT}
    err = err_per_min if isinstance(err_per_min, str) else counter(err_per_min)
    return [
        series(q.REQUEST_TOTAL, {**sel, "http_response_code": "200"}, counter(ok_per_min)),
        series(q.REQUEST_TOTAL, {**sel, "http_response_code": "500"}, err),
    ]


def _burn_labels(i: int) -> dict[str, str]:
    long, short, _ = policy().slo.burn_rate_windows[i]
    return {**M, "severity": "page" if i == 0 else "ticket", "long_window": long, "short_window": short}


def test_error_burn_rate_fires_on_sustained_errors_only(tmp_path: Path) -> None:
    p = policy()
    budget = 1 - p.slo.availability_target
    limits = [f * budget for _, _, f in p.slo.burn_rate_windows]
    bad = (max(limits) + 1) / 2  # above every window's limit
    ok = min(limits) / 2  # below every limit
    all_windows = [_burn_labels(i) for i in range(len(limits))]
    run_promtool(
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": _requests(100 * (1 - bad), 100 * bad),
                "promql_expr_test": [firing("ModelErrorSLOBurnRate", "70m", all_windows)],
            },
            {
                "interval": "1m",
                "input_series": _requests(100 * (1 - ok), 100 * ok),
                "promql_expr_test": [firing("ModelErrorSLOBurnRate", "70m", [])],
            },
            # Errors stopped 10 minutes ago: the long windows are still hot, the fast pair's short window is not,
            # so only the slower pairs (whose short window still holds errors) keep firing.
            {
                "interval": "1m",
                "input_series": _requests(100 * (1 - bad), f"0+{100 * bad:g}x60 {6000 * bad:g}+0x60"),
                "promql_expr_test": [firing("ModelErrorSLOBurnRate", "70m", all_windows[1:])],
            },
        ],
    )


def test_latency_burn_rate_fires_when_too_many_requests_are_slow(tmp_path: Path) -> None:
    p = policy()
    threshold = f"{p.slo.latency_p95_ms / 1000:g}"
    limits = [f * 0.05 for _, _, f in p.slo.burn_rate_windows]
    sel = {**MS, "endpoint": q.PREDICT_ENDPOINT}

    def histogram(slow_share: float) -> list[dict[str, str]]:
        return [
            series(f"{q.REQUEST_DURATION}_bucket", {**sel, "le": threshold}, counter(100 * (1 - slow_share))),
            series(f"{q.REQUEST_DURATION}_count", sel, counter(100)),
        ]

    run_promtool(
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": histogram((max(limits) + 1) / 2),
                "promql_expr_test": [
                    firing("ModelLatencySLOBurnRate", "70m", [_burn_labels(i) for i in range(len(limits))])
                ],
            },
            {
                "interval": "1m",
                "input_series": histogram(min(limits) / 2),
                "promql_expr_test": [firing("ModelLatencySLOBurnRate", "70m", [])],
            },
        ],
    )


def test_model_server_down_fires_after_its_for_duration(tmp_path: Path) -> None:
    down_for = policy().alerting.model_server_down_for_seconds // 60
    other = {**MS, "model_version": "3", "instance": "127.0.0.1:13001"}
    run_promtool(
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": [series("up", MS, "1 1 0x20"), series("up", other, "1x22")],
                "promql_expr_test": [
                    firing("ModelServerDown", "1m", []),
                    firing("ModelServerDown", f"{2 + down_for + 1}m", [{**MS, "severity": "page"}]),
                ],
            }
        ],
    )


def test_drift_alert_fires_above_the_threshold_only(tmp_path: Path) -> None:
    t = policy().drift.threshold
    above, below = {**M, "job": "drift"}, {**M, "model_version": "3", "job": "drift"}
    run_promtool(
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": [
                    series(q.DRIFT_SCORE, above, f"{(t + 1) / 2:g}x10"),
                    series(q.DRIFT_SCORE, below, f"{t:g}x10"),  # at the threshold: not above it
                ],
                "promql_expr_test": [firing("ModelDriftDetected", "5m", [{**M, "severity": "ticket"}])],
            }
        ],
    )


def test_canary_failed_alert_follows_the_pushed_metric(tmp_path: Path) -> None:
    failed, passed = {**M, "job": "release"}, {**M, "model_version": "3", "job": "release"}
    run_promtool(
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": [
                    series(q.RELEASE_ANALYSIS_FAILED, failed, "0 0 1x8"),
                    series(q.RELEASE_ANALYSIS_FAILED, passed, "0x10"),
                ],
                "promql_expr_test": [
                    firing("CanaryAnalysisFailed", "1m", []),
                    firing("CanaryAnalysisFailed", "5m", [{**M, "severity": "ticket"}]),
                ],
            }
        ],
    )


def test_canary_failed_alert_fires_for_a_rollout_argo_aborted(tmp_path: Path) -> None:
    """In the cluster the Argo Rollouts controller reports the aborted rollout; no pushed gauge exists there."""
    ns = q.SERVING_NAMESPACE
    rollout = {"namespace": ns, "name": M["model_name"], "strategy": "Canary"}
    other = {"namespace": ns, "name": "other", "strategy": "Canary"}
    elsewhere = {"namespace": "default", "name": "web", "strategy": "Canary"}
    run_promtool(
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": [
                    # Progressing for 3 minutes, then the analysis failed and the rollout was aborted.
                    series(q.ARGO_ROLLOUT_INFO, {**rollout, "phase": "Progressing"}, "1 1 1 0x7"),
                    series(q.ARGO_ROLLOUT_INFO, {**rollout, "phase": "Degraded"}, "0 0 0 1x7"),
                    series(q.ARGO_ROLLOUT_INFO, {**other, "phase": "Healthy"}, "1x10"),
                    series(q.ARGO_ROLLOUT_INFO, {**elsewhere, "phase": "Degraded"}, "1x10"),
                ],
                "promql_expr_test": [
                    firing("CanaryAnalysisFailed", "2m", []),
                    firing(
                        "CanaryAnalysisFailed",
                        "5m",
                        [
                            {
                                "namespace": ns,
                                "name": M["model_name"],
                                "model_name": M["model_name"],
                                "severity": "ticket",
                                "source": "argo-rollouts",
                            }
                        ],
                    ),
                ],
            }
        ],
    )


def test_scale_from_zero_slow_fires_for_slow_and_stuck_pods_not_for_fast_or_old_ones(tmp_path: Path) -> None:
    p = policy()
    cold, lookback = p.scaling.scale_from_zero_alert_seconds, p.alerting.cold_start_lookback_seconds
    ns = q.SERVING_NAMESPACE
    t0 = lookback + 100  # pods created now; `old` was created before the look-back window
    pods = {
        "slow": (t0, t0 + cold + 30, 1),
        "fast": (t0, t0 + cold // 2, 1),
        "stuck": (t0, None, 0),
        "old": (0, cold + 30, 1),
    }
    inputs = []
    for pod, (created, ready_at, ready) in pods.items():
        labels = {"namespace": ns, "pod": pod, "job": "kube-state-metrics"}
        inputs.append(series(q.POD_CREATED, labels, f"{created}x60"))
        if ready_at is not None:
            inputs.append(series(q.POD_READY_TIME, labels, f"{ready_at}x60"))
        inputs.append(series(q.POD_READY, {**labels, "condition": "true"}, f"{ready}x60"))
    eval_minutes = (t0 + cold + 60) // 60 + 1
    expected = [{"namespace": ns, "pod": pod, "severity": "ticket"} for pod in ("slow", "stuck")]
    run_promtool(
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": inputs,
                "promql_expr_test": [firing("ModelScaleFromZeroSlow", f"{eval_minutes}m", expected)],
            }
        ],
    )


def test_dropped_samples_alert_fires_while_drops_are_in_the_window(tmp_path: Path) -> None:
    window = policy().alerting.inference_log_drop_window_seconds // 60
    run_promtool(
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": [series(q.INFERENCE_LOG_DROPPED, MS, f"0 0 0 5x{window + 10}")],
                "promql_expr_test": [
                    firing("InferenceLogSamplesDropped", "2m", []),
                    firing("InferenceLogSamplesDropped", "4m", [{**M, "severity": "ticket"}]),
                    firing("InferenceLogSamplesDropped", f"{3 + window + 2}m", []),
                ],
            }
        ],
    )


def test_gpu_alerts(tmp_path: Path) -> None:
    a = policy().alerting
    full, roomy = {"Hostname": "gpu-node", "gpu": "0"}, {"Hostname": "gpu-node", "gpu": "1"}
    total = 24000
    used_full = int(total * (a.gpu_memory_used_ratio + 1) / 2)
    idle = a.gpu_underutilised_percent / 2
    busy = (a.gpu_underutilised_percent + 100) / 2
    minutes = a.gpu_underutilised_window_seconds // 60 + 20
    run_promtool(
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": [
                    series(q.DCGM_FB_USED, full, f"{used_full}x{minutes}"),
                    series(q.DCGM_FB_FREE, full, f"{total - used_full}x{minutes}"),
                    series(q.DCGM_FB_USED, roomy, f"{total // 10}x{minutes}"),
                    series(q.DCGM_FB_FREE, roomy, f"{total - total // 10}x{minutes}"),
                    series(q.DCGM_GPU_UTIL, full, f"{idle:g}x{minutes}"),
                    series(q.DCGM_GPU_UTIL, roomy, f"{busy:g}x{minutes}"),
                ],
                "promql_expr_test": [
                    firing("GpuMemoryNearlyFull", "5m", []),  # `for: 10m` not yet elapsed
                    firing("GpuMemoryNearlyFull", "15m", [{**full, "severity": "ticket"}]),
                    firing("GpuUnderutilised", f"{minutes - 5}m", [{**full, "severity": "info"}]),
                ],
            }
        ],
    )


# ---------------------------------------------------------------- recording rules compute what they claim


def _value(expr: str, labels: dict[str, str], value: float, eval_time: str = "10m") -> dict[str, Any]:
    return {"eval_time": eval_time, "expr": expr, "exp_samples": [{"labels": expr + _labels(labels), "value": value}]}


def test_request_rate_error_ratio_and_latency_quantiles(tmp_path: Path) -> None:
    sel = {**MS, "endpoint": q.PREDICT_ENDPOINT}
    ok_per_min, err_per_min = 540, 60
    inputs = _requests(ok_per_min, err_per_min)
    # Every request falls in the (0.05, 0.1] bucket: quantile phi interpolates to 0.05 + 0.05 * phi.
    for le, per_min in (("0.05", 0), ("0.1", 600), ("+Inf", 600)):
        inputs.append(series(f"{q.REQUEST_DURATION}_bucket", {**sel, "le": le}, counter(per_min, 20)))
    # A version with requests and no 5xx series at all: its error ratio must be 0, not missing.
    clean = {**MS, "model_version": "3", "endpoint": q.PREDICT_ENDPOINT, "http_response_code": "200"}
    inputs.append(series(q.REQUEST_TOTAL, clean, counter(60, 20)))
    tests = [
        {
            "eval_time": "10m",
            "expr": rules.R.REQUESTS,
            "exp_samples": [
                {"labels": rules.R.REQUESTS + _labels(M), "value": (ok_per_min + err_per_min) / 60},
                {"labels": rules.R.REQUESTS + _labels({**M, "model_version": "3"}), "value": 1},
            ],
        },
        {
            "eval_time": "10m",
            "expr": rules.R.ERROR_RATIO,
            "exp_samples": [
                {"labels": rules.R.ERROR_RATIO + _labels(M), "value": err_per_min / (ok_per_min + err_per_min)},
                {"labels": rules.R.ERROR_RATIO + _labels({**M, "model_version": "3"}), "value": 0},
            ],
        },
        *[_value(rules.R.LATENCY[k], M, 0.05 + 0.05 * k / 100) for k in rules.R.LATENCY],
    ]
    run_promtool(tmp_path, [{"interval": "1m", "input_series": inputs, "promql_expr_test": tests}])


def test_batch_size_cpu_memory_inferences_and_cost(tmp_path: Path) -> None:
    p = policy()
    inferences_per_min = 600
    inputs = [
        series("up", MS, "1x20"),
        series(q.INFERENCES_TOTAL, MS, counter(inferences_per_min, 20)),
        # Local: the process-exporter group of port 13000 is the server of version 2; port 13999 is no server.
        series(
            q.PROCESS_CPU_SECONDS,
            {"job": "process", "groupname": "model-server-13000", "mode": "user"},
            counter(30, 20),
        ),
        series(
            q.PROCESS_CPU_SECONDS,
            {"job": "process", "groupname": "model-server-13000", "mode": "system"},
            counter(6, 20),
        ),
        series(
            q.PROCESS_CPU_SECONDS,
            {"job": "process", "groupname": "model-server-13999", "mode": "user"},
            counter(60, 20),
        ),
        series(
            q.PROCESS_MEMORY_BYTES,
            {"job": "process", "groupname": "model-server-13000", "memtype": "resident"},
            "500000000x20",
        ),
        # Cluster: a pod of version 5 (only the cluster branch of the OR matches it).
        series(
            "up",
            {
                **M,
                "model_version": "5",
                "job": q.MODEL_SERVER_JOB,
                "namespace": q.SERVING_NAMESPACE,
                "pod": "news-5-a",
                "instance": "10.0.0.9:3000",
            },
            "1x20",
        ),
        series(
            q.CONTAINER_CPU_SECONDS,
            {"namespace": q.SERVING_NAMESPACE, "pod": "news-5-a", "container": "server"},
            counter(45, 20),
        ),
    ]
    # Batch sizes: every request carried between 4 and 8 texts.
    for le, per_min in (("4", 0), ("8", 100), ("+Inf", 100)):
        inputs.append(series(f"{q.REQUEST_BATCH_SIZE}_bucket", {**MS, "le": le}, counter(per_min, 20)))
    v5 = {**M, "model_version": "5"}
    tests = [
        *[_value(rules.R.BATCH_SIZE[k], M, 4 + 4 * k / 100) for k in rules.R.BATCH_SIZE],
        {
            "eval_time": "10m",
            "expr": rules.R.CPU,
            "exp_samples": [
                {"labels": rules.R.CPU + _labels(M), "value": (30 + 6) / 60},
                {"labels": rules.R.CPU + _labels(v5), "value": 45 / 60},
            ],
        },
        _value(rules.R.MEMORY, M, 500000000),
        _value(rules.R.INFERENCES, M, inferences_per_min / 60),
        # The rule and the cost report use the same arithmetic (core/cost.py).
        _value(rules.R.COST_PER_1K, M, cost_per_1k(replica_usd_per_hour(p), inferences_per_min / 60)),
    ]
    run_promtool(tmp_path, [{"interval": "1m", "input_series": inputs, "promql_expr_test": tests}])


def test_cost_is_absent_not_infinite_without_inferences(tmp_path: Path) -> None:
    inputs = [series("up", MS, "1x20"), series(q.INFERENCES_TOTAL, MS, "0x20")]
    tests = [{"eval_time": "10m", "expr": rules.R.COST_PER_1K, "exp_samples": []}]
    run_promtool(tmp_path, [{"interval": "1m", "input_series": inputs, "promql_expr_test": tests}])


# ---------------------------------------------------------------- generate models


def _generator() -> str:
    (name,) = [m.name for m in policy().models if m.task == "generate"]
    return name


def test_a_slow_generator_alerts_on_ttft_or_token_gaps_and_a_fast_one_does_not(tmp_path: Path) -> None:
    g = policy().for_model(_generator()).generation
    ttft, gap = g.ttft_p95_ms / 1000, g.inter_token_p95_ms / 1000
    slow_first = {"model_name": _generator(), "model_version": "1", "job": q.MODEL_SERVER_JOB}
    slow_gaps = {**slow_first, "model_version": "2"}
    fast = {**slow_first, "model_version": "3"}

    def histogram(metric: str, labels: dict[str, str], fast_le: float, slow: bool) -> list[dict[str, str]]:
        # 60 observations a minute; all of them in (fast_le, 2 x fast_le] when slow, all at or below it otherwise.
        below = 0 if slow else 60
        return [
            series(f"{metric}_bucket", {**labels, "le": f"{fast_le:g}"}, counter(below, 30)),
            series(f"{metric}_bucket", {**labels, "le": f"{2 * fast_le:g}"}, counter(60, 30)),
            series(f"{metric}_bucket", {**labels, "le": "+Inf"}, counter(60, 30)),
        ]

    inputs = [
        *histogram(q.GENERATE_TTFT, slow_first, ttft, slow=True),
        *histogram(q.GENERATE_INTER_TOKEN, slow_first, gap, slow=False),
        *histogram(q.GENERATE_TTFT, slow_gaps, ttft, slow=False),
        *histogram(q.GENERATE_INTER_TOKEN, slow_gaps, gap, slow=True),
        *histogram(q.GENERATE_TTFT, fast, ttft, slow=False),
        *histogram(q.GENERATE_INTER_TOKEN, fast, gap, slow=False),
    ]
    expected = [
        {"model_name": _generator(), "model_version": v, "severity": "ticket"} for v in ("1", "2")
    ]  # the 10-minute `for` has passed at 20m; the fast version never fires
    run_promtool(
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": inputs,
                "promql_expr_test": [firing("ModelGenerationSlow", "20m", expected)],
            }
        ],
    )


def test_generated_tokens_are_priced_per_million_from_the_models_replicas(tmp_path: Path) -> None:
    name = _generator()
    labels = {"model_name": name, "model_version": "1", "job": q.MODEL_SERVER_JOB, "instance": "127.0.0.1:13050"}
    completion = {k: v for k, v in labels.items() if k != "instance"} | {"kind": "completion"}
    prompt = {**completion, "kind": "prompt"}
    tokens_per_min = 600.0  # 10 generated tokens/s; prompt tokens are not generated and not priced
    inputs = [
        series("up", labels, "1x20"),
        series(q.GENERATE_TOKENS_TOTAL, completion, counter(tokens_per_min, 20)),
        series(q.GENERATE_TOKENS_TOTAL, prompt, counter(5000, 20)),
    ]
    own = {"model_name": name, "model_version": "1"}
    usd_per_hour = replica_usd_per_hour(policy().for_model(name))
    tests = [
        _value(rules.R.TOKENS, own, tokens_per_min / 60),
        # One replica's $/h over the tokens it generates in an hour, per million.
        _value(rules.R.COST_PER_1M_TOKENS, own, usd_per_hour / (tokens_per_min / 60 * 3600 / 1e6)),
    ]
    run_promtool(tmp_path, [{"interval": "1m", "input_series": inputs, "promql_expr_test": tests}])


def test_a_generate_model_has_no_drift_alert_and_each_slo_alert_reads_its_own_model() -> None:
    alerts = [r for g in rules.rule_groups() for r in g["rules"] if "alert" in r]
    drift = [r["expr"] for r in alerts if r["alert"] == "ModelDriftDetected"]
    assert drift and all(_generator() not in e for e in drift)  # the drift job reads a classifier's inputs
    for group in rules.rule_groups():
        if not group["name"].startswith("mlp-slo-"):
            continue
        model = group["name"].removeprefix("mlp-slo-")
        for rule in group["rules"]:
            if "alert" in rule:  # another model's recordings would be judged by this model's objectives
                assert rule["expr"].count(f'{{model_name="{model}"}}') == 2, rule["expr"]
                assert rule["labels"]["model_name"] == model


def test_rag_answers_degraded_fires_on_the_share_without_generation_once_there_are_enough_questions(
    tmp_path: Path,
) -> None:
    (rag,) = [m.name for m in policy().models if m.task == "rag"]
    r = policy().for_model(rag).rag
    labels = {"model_name": rag, "job": q.MODEL_SERVER_JOB}
    per_minute = r.alert_min_questions  # 10 minutes of this: well above the minimum
    degraded_per_minute = int(per_minute * (r.alert_max_degraded_ratio + 0.2))

    def answers(version: str, mode: str, rate: float) -> dict[str, str]:
        return series(q.RAG_ANSWERS_TOTAL, {**labels, "model_version": version, "mode": mode}, counter(rate, 30))

    inputs = [
        answers("1", "generated", per_minute - degraded_per_minute),  # v1: too many retrieval-only answers
        answers("1", "retrieval_only", degraded_per_minute),
        answers("2", "generated", per_minute),  # v2: healthy
        answers("2", "retrieval_only", 0),
        answers("3", "failed", r.alert_min_questions / 20),  # v3: all failed, but half the minimum in 10 minutes
        answers("3", "generated", 0),
    ]
    expected = [{"model_name": rag, "model_version": "1", "severity": "ticket"}]
    run_promtool(
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": inputs,
                "promql_expr_test": [firing("RagAnswersDegraded", "20m", expected)],
            }
        ],
    )
