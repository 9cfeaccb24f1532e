"""Against the real local stack: Prometheus scrapes its exporters and the model servers, the rules load, and after
real traffic through the gateway every dashboard panel's query is valid and returns data.

GPU panels cannot have data here (no GPU, no DCGM exporter): they are excluded by `PanelSpec.cluster_only` (and the
generate models' panels, `generate_only`, are checked where a generate server serves: test_generation.py), and
`test_dashboards.py` asserts that this set is exactly the DCGM panels.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from core import dashboards, endpoints, rules
from core import promql as q
from core.policy import policy
from infra.local import prometheus as local
from infra.local import tls
from tests.integration.conftest import local_env, packaged_variants, registered_versions  # noqa: F401

pytestmark = pytest.mark.integration

SPLIT = (75, 25)
TEXTS = [
    "A gorgeous, witty, seductive movie.",
    "The plot is a mess and the acting is worse.",
    "Not the best film of the year, but a pleasant surprise with a great cast.",
    "Two hours I will never get back.",
]


def wait_for(expr: str, timeout: float = 120) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    result: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        result = local.query(expr)
        if result:
            return result
        time.sleep(2)
    return result


def test_prometheus_scrapes_its_exporters_and_loads_the_rules(local_env: None) -> None:  # noqa: F811
    for job in ("prometheus", "node", "pushgateway", q.GATEWAY_EXPORTER_JOB, q.PROCESS_EXPORTER_JOB):
        assert wait_for(f'up{{job="{job}"}} == 1', timeout=60), f"job {job} is not scraped"
    body = httpx.get(f"{endpoints.prometheus_url()}/api/v1/rules", timeout=10).json()
    loaded = {r.get("name") for g in body["data"]["groups"] for r in g["rules"]}
    expected = {r.get("record") or r.get("alert") for g in rules.rule_groups() for r in g["rules"]}
    assert expected <= loaded
    unhealthy = [r["name"] for g in body["data"]["groups"] for r in g["rules"] if r.get("health") == "err"]
    assert not unhealthy, f"rules failing to evaluate: {unhealthy}"


@pytest.fixture(scope="module")
def traffic(registered_versions: dict[str, int]) -> Iterator[list[int]]:  # noqa: F811
    """Two live versions behind the gateway (75/25, so per-version numbers differ), a minute of real requests."""
    from infra.local.secrets import api_key
    from infra.local.serving import current_weights, set_weights, start_model_server, stop_model_server

    versions = [registered_versions["fp32"], registered_versions["int8"]]
    before = current_weights()
    for v in versions:
        start_model_server(v)
    set_weights({versions[0]: SPLIT[0], versions[1]: SPLIT[1]})
    headers = {"X-API-Key": api_key("loadtest")}
    deadline = time.monotonic() + 4 * policy().alerting.local_scrape_interval_seconds + 40
    sent = 0
    verify = tls.client_context()
    with httpx.Client(base_url=endpoints.gateway_url(), headers=headers, timeout=30, verify=verify) as client:
        while time.monotonic() < deadline:
            batch = TEXTS[: 1 + sent % len(TEXTS)]  # vary texts per request: the batch-size histogram spreads
            resp = client.post(q.PREDICT_ENDPOINT, json={"texts": batch})
            assert resp.status_code == 200, resp.text
            sent += 1
    # The drift panel reads what the drift job pushes: push one value the way it does (same job and grouping key);
    # the drift job itself is tested in its own area.
    from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

    from pipelines.drift.push import JOB as DRIFT_JOB

    registry = CollectorRegistry()
    Gauge(q.DRIFT_SCORE, "share of drifted features", registry=registry).set(0.1)
    grouping = {"model_name": policy().release.default_model, "model_version": str(versions[0])}
    push_to_gateway(endpoints.pushgateway_url(), job=DRIFT_JOB, registry=registry, grouping_key=grouping)
    yield versions
    # Servers that carry traffic cannot be stopped: hand the traffic back first, then stop ours.
    if before:
        set_weights(before)
    else:
        set_weights({versions[0]: 100})
    for v in sorted(versions, key=lambda v: current_weights().get(v, 0)):
        if v not in before:
            stop_model_server(v)


def test_every_panel_query_is_valid_and_returns_data_after_traffic(traffic: list[int]) -> None:
    empty = []
    for spec in dashboards.panels():
        if spec.cluster_only or spec.generate_only:  # generate panels: tests/integration/test_generation.py
            continue
        for query in spec.queries:
            expr = dashboards.local_expr(query.expr)
            result = wait_for(expr, timeout=90)  # raises PrometheusQueryError if the query is invalid
            if not result:
                empty.append(f"{spec.title}: {expr}")
    assert not empty, "panels without data after traffic:\n" + "\n".join(empty)


def test_latency_slo_bucket_exists_on_the_model_servers(traffic: list[int]) -> None:
    """The latency burn-rate rules read the bucket at exactly the SLO threshold; without it they are silent."""
    le = f"{policy().slo.latency_p95_ms / 1000:g}"
    assert wait_for(f'{q.REQUEST_DURATION}_bucket{{endpoint="{q.PREDICT_ENDPOINT}",le="{le}"}}'), (
        f"model servers export no {q.REQUEST_DURATION} bucket le={le}: the latency SLO alerts cannot fire"
    )


def test_gateway_exporter_counts_requests_per_upstream_version(traffic: list[int]) -> None:
    result = wait_for(f"sum by (upstream_version) ({q.GATEWAY_REQUESTS_TOTAL})")
    assert {str(v) for v in traffic} <= {r["metric"].get("upstream_version") for r in result}  # type: ignore[union-attr]


def test_cpu_and_memory_are_attributed_to_each_live_version(traffic: list[int]) -> None:
    for record in (rules.R.CPU, rules.R.MEMORY):
        result = wait_for(record)
        versions = {r["metric"]["model_version"] for r in result}  # type: ignore[index]
        assert {str(v) for v in traffic} <= versions, f"{record}: {versions}"


def test_model_server_metrics_agree_with_the_gateway_per_version(traffic: list[int]) -> None:
    """Each server's own request counter must count its own requests: the split the servers report matches the
    split the gateway sent (a shared metrics directory between servers would report the same numbers twice)."""
    window = "3m"
    served = local.query(
        f'sum by (model_version) (increase({q.REQUEST_TOTAL}{{endpoint="{q.PREDICT_ENDPOINT}"}}[{window}]))'
    )
    # Requests refused at the gateway (401/403/429) reach no upstream and carry no version: leave them out.
    sent = local.query(
        f'sum by (upstream_version) (increase({q.GATEWAY_REQUESTS_TOTAL}{{upstream_version!=""}}[{window}]))'
    )
    by_server = {r["metric"]["model_version"]: float(r["value"][1]) for r in served}  # type: ignore[index]
    by_gateway = {r["metric"]["upstream_version"]: float(r["value"][1]) for r in sent}  # type: ignore[index]
    first, second = (str(v) for v in traffic)
    share_server = by_server[first] / (by_server[first] + by_server[second])
    share_gateway = by_gateway[first] / (by_gateway[first] + by_gateway[second])
    assert abs(share_server - share_gateway) < 0.1, (
        f"servers report {by_server}, the gateway sent {by_gateway}: per-version server metrics are wrong"
    )
