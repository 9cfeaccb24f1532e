"""Against the real local stack: Alertmanager runs the routes of `core/alertmanager.py`, mutes what the inhibition
rule says, and a rule firing in the real Prometheus reaches the platform's receiver, its notification log and
`mlp alerts`; a delivery without Alertmanager's token is refused and logs nothing.

Alerts posted here carry model names no release uses, so they never mix with another test's; each test resolves
what it posted.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client import delete_from_gateway

from core import contracts, endpoints, rules
from core.policy import policy
from infra.local import alertmanager as am
from infra.local import webhook
from pipelines.release.deps import Pushgateway
from services.webhook import alerts as notifications
from tests.integration.conftest import local_env, mlp  # noqa: F401

pytestmark = pytest.mark.integration

UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def seconds(duration: str) -> float:
    """An Alertmanager duration (`1d`, `1h30m`, `10s`) in seconds."""
    parts = re.findall(r"(\d+)(ms|y|w|d|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"unparsed duration {duration!r}"
    return sum(int(n) * UNITS[u] for n, u in parts)


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def alert(name: str, model: str, version: str, ends: datetime) -> dict[str, Any]:
    rule = next(r for g in rules.rule_groups() for r in g["rules"] if r.get("alert") == name)
    return {
        "labels": {"alertname": name, **rule["labels"], "model_name": model, "model_version": version},
        "annotations": {"runbook_url": rule["annotations"]["runbook_url"]},
        "startsAt": iso(datetime.now(UTC)),
        "endsAt": iso(ends),
    }


def wait_for(check: Callable[[], Any], what: str, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(1)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture()
def posted(local_env: None) -> Iterator[Callable[[list[dict[str, Any]]], None]]:  # noqa: F811
    sent: list[dict[str, Any]] = []

    def post(items: list[dict[str, Any]]) -> None:
        sent.extend(items)
        am.post_alerts(items)

    yield post
    if sent:  # resolve them: endsAt now
        am.post_alerts([{**a, "endsAt": iso(datetime.now(UTC))} for a in sent])


def test_prometheus_sends_to_the_local_alertmanager(local_env: None) -> None:  # noqa: F811
    def active() -> list[str]:
        body = httpx.get(f"{endpoints.prometheus_url()}/api/v1/alertmanagers", timeout=10).json()
        return [a["url"] for a in body["data"]["activeAlertmanagers"]]

    urls = wait_for(active, "Prometheus to discover Alertmanager")
    assert urls == [f"{endpoints.alertmanager_url()}{contracts.ALERTMANAGER_API_ALERTS}"]


def test_alertmanager_runs_the_policys_routes(local_env: None) -> None:  # noqa: F811
    status = httpx.get(f"{endpoints.alertmanager_url()}/api/v2/status", timeout=10).json()
    loaded = yaml.safe_load(status["config"]["original"])  # the config as Alertmanager parsed it
    r, route = policy().alert_routing, loaded["route"]
    assert route["group_by"] == ["model_name", "model_version"]
    assert seconds(route["group_wait"]) == r.group_wait_seconds
    assert seconds(route["group_interval"]) == r.group_interval_seconds
    assert seconds(route["repeat_interval"]) == r.ticket_repeat_interval_seconds
    act, page, rest = route["routes"]
    assert act["receiver"] == contracts.RECEIVER_ACT and act["continue"] is True  # the people are told as well
    assert seconds(act["repeat_interval"]) == r.group_interval_seconds
    assert page["receiver"] == contracts.RECEIVER_PAGE
    assert seconds(page["repeat_interval"]) == r.page_repeat_interval_seconds
    assert rest["receiver"] == contracts.RECEIVER_TICKET and "matchers" not in rest  # the catch-all
    # The token reaches Alertmanager only as a file path: never its value.
    token = (am.token_file()).read_text().strip()
    assert token not in status["config"]["original"]


def test_a_down_server_mutes_its_own_latency_and_error_alerts_only(
    posted: Callable[[list[dict[str, Any]]], None],
) -> None:
    model = f"inhibit-test-{int(time.time())}"
    ends = datetime.now(UTC) + timedelta(minutes=5)
    posted(
        [
            alert(contracts.ALERT_SERVER_DOWN, model, "1", ends),
            alert(contracts.ALERT_LATENCY_BURN, model, "1", ends),
            alert(contracts.ALERT_ERROR_BURN, model, "1", ends),
            alert(contracts.ALERT_LATENCY_BURN, model, "2", ends),  # another version: its server is up
            alert(contracts.ALERT_DRIFT, model, "1", ends),  # not a symptom of the server being down
        ]
    )

    def states() -> dict[tuple[str, str], dict[str, Any]] | None:
        ours = [a for a in am.alerts() if a["labels"].get("model_name") == model]
        found = {(a["labels"]["alertname"], a["labels"]["model_version"]): a["status"] for a in ours}
        return found if len(found) == 5 else None

    def settled() -> dict[tuple[str, str], dict[str, Any]] | None:
        found = states()
        muted = found and found[(contracts.ALERT_LATENCY_BURN, "1")]["state"] == "suppressed"
        return found if muted else None

    found = wait_for(settled, "the latency alert of the down server to be inhibited")
    down_fp = next(
        a["fingerprint"]
        for a in am.alerts()
        if a["labels"].get("model_name") == model and a["labels"]["alertname"] == contracts.ALERT_SERVER_DOWN
    )
    for name in (contracts.ALERT_LATENCY_BURN, contracts.ALERT_ERROR_BURN):
        assert found[(name, "1")]["state"] == "suppressed"
        assert found[(name, "1")]["inhibitedBy"] == [down_fp]
    for key in ((contracts.ALERT_LATENCY_BURN, "2"), (contracts.ALERT_DRIFT, "1"), (contracts.ALERT_SERVER_DOWN, "1")):
        assert found[key]["state"] == "active", key
        assert found[key]["inhibitedBy"] == []


def test_one_notification_group_per_model_version_and_receiver(
    posted: Callable[[list[dict[str, Any]]], None],
) -> None:
    model = f"group-test-{int(time.time())}"
    ends = datetime.now(UTC) + timedelta(minutes=5)
    posted(
        [
            alert(contracts.ALERT_SERVER_DOWN, model, "1", ends),
            alert(contracts.ALERT_LATENCY_BURN, model, "2", ends),
            alert(contracts.ALERT_ERROR_BURN, model, "2", ends),
            alert(contracts.ALERT_DRIFT, model, "2", ends),
        ]
    )

    def groups() -> dict[tuple[str, str], list[str]] | None:
        out: dict[tuple[str, str], list[str]] = {}
        for g in am.alert_groups():
            if g["labels"].get("model_name") == model:
                key = (g["labels"]["model_version"], g["receiver"]["name"])
                out[key] = sorted(a["labels"]["alertname"] for a in g["alerts"])
        return out if sum(len(v) for v in out.values()) == 5 else None

    found = wait_for(groups, "Alertmanager to group the posted alerts")
    assert found == {
        ("1", contracts.RECEIVER_PAGE): [contracts.ALERT_SERVER_DOWN],
        ("2", contracts.RECEIVER_PAGE): sorted([contracts.ALERT_ERROR_BURN, contracts.ALERT_LATENCY_BURN]),
        ("2", contracts.RECEIVER_TICKET): [contracts.ALERT_DRIFT],
        ("2", contracts.RECEIVER_ACT): [contracts.ALERT_DRIFT],  # and the platform acts on it (another model here)
    }


def test_a_firing_rule_is_delivered_to_the_receiver_and_shown_by_mlp_alerts(local_env: None) -> None:  # noqa: F811
    model, version = f"e2e-{int(time.time())}", 7
    grouping = {"model_name": model, "model_version": str(version)}
    log = webhook.notifications_log()
    # What the release executor pushes when a canary analysis fails: the real rule CanaryAnalysisFailed fires.
    Pushgateway(endpoints.pushgateway_url()).analysis_failed(model, version, failed=True)
    try:

        def delivered() -> dict[str, Any] | None:
            for record in notifications.read(log, 200):
                for a in record["alerts"]:
                    if a.get("model_name") == model and a["status"] == "firing":
                        return {"receiver": record["receiver"], **a}
            return None

        got = wait_for(delivered, "the CanaryAnalysisFailed notification in the log", timeout=150)
        assert got["alertname"] == contracts.ALERT_CANARY_FAILED
        assert got["receiver"] == contracts.RECEIVER_TICKET
        assert got["model_version"] == str(version)
        assert got["runbook_url"] == f"runbooks/{contracts.RUNBOOKS[contracts.ALERT_CANARY_FAILED]}.md"

        out = mlp("alerts", "--recent", "50").stdout
        active = out.split("Latest notifications")[0]
        assert contracts.ALERT_CANARY_FAILED in active and f"{model} v{version}" in active
        assert f"{model} v{version}" in out.split("Latest notifications")[1]
        assert got["runbook_url"] in active
    finally:
        delete_from_gateway(endpoints.pushgateway_url(), job="release", grouping_key=grouping)


@pytest.mark.parametrize(
    "headers",
    [{}, {contracts.AUTHORIZATION_HEADER: f"{contracts.BEARER_SCHEME} forged"}],
    ids=["unauthenticated", "forged"],
)
def test_the_receiver_refuses_deliveries_without_alertmanagers_token(
    local_env: None,  # noqa: F811
    headers: dict[str, str],
) -> None:
    """A forged drift alert for the platform's own model, on the action route: refused, logged nowhere, and it
    starts no retraining."""
    log, events = webhook.notifications_log(), webhook.events_log()
    before = log.read_text() if log.exists() else ""
    events_before = len(events.read_text().splitlines()) if events.exists() else 0
    labels = {"alertname": contracts.ALERT_DRIFT, "model_name": policy().release.default_model, "model_version": "1"}
    body = {
        "version": "4",
        "groupKey": "{}:{}",
        "status": "firing",
        "receiver": contracts.RECEIVER_ACT,
        "alerts": [{"status": "firing", "labels": labels, "fingerprint": "forged", "startsAt": iso(datetime.now(UTC))}],
    }
    resp = httpx.post(webhook.alerts_url(), json=body, headers=headers, timeout=10)
    assert resp.status_code == 401
    assert (log.read_text() if log.exists() else "") == before
    new_events = events.read_text().splitlines()[events_before:] if events.exists() else []
    assert not [e for e in new_events if '"action": "retrain"' in e], new_events
