"""The Alertmanager routes rendered from the policy: Alertmanager's own tools accept them and route every alert
the rules can raise to the receiver its severity asks for.

`amtool check-config` parses and validates the config the way Alertmanager does at start; `amtool config routes
test` resolves the receivers of a label set through the real routing tree. Receivers here carry no integration
(valid for Alertmanager), so the routing is tested apart from any runtime's destinations.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from core import alertmanager, contracts, rules

AMTOOL = shutil.which("amtool") or "/usr/bin/amtool"
VERSION = {"model_name": "news", "model_version": "3"}


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("am") / "alertmanager.yml"
    config = alertmanager.config({name: {} for name in alertmanager.RECEIVERS})
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def routed_to(config_file: Path, labels: dict[str, str]) -> list[str]:
    result = subprocess.run(
        [AMTOOL, "config", "routes", "test", f"--config.file={config_file}", *[f"{k}={v}" for k, v in labels.items()]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return [name.strip() for name in result.stdout.strip().split(",")]


def test_amtool_accepts_the_rendered_config(config_file: Path) -> None:
    result = subprocess.run([AMTOOL, "check-config", str(config_file)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert "1 inhibit rules" in result.stdout


def test_every_alert_of_the_rules_routes_by_its_severity(config_file: Path) -> None:
    alerts = [r for g in rules.rule_groups() for r in g["rules"] if "alert" in r]
    assert {a["alert"] for a in alerts} == set(contracts.RUNBOOKS), "an alert of the rules was not checked"
    for alert in alerts:
        labels = {"alertname": alert["alert"], **alert["labels"], **VERSION}
        want = contracts.RECEIVER_PAGE if alert["labels"]["severity"] == "page" else contracts.RECEIVER_TICKET
        acts = [contracts.RECEIVER_ACT] if alert["alert"] in alertmanager.ACTIONABLE else []
        assert routed_to(config_file, labels) == [*acts, want], f"{alert['alert']} ({alert['labels']['severity']})"


def test_the_drift_alert_reaches_the_platform_and_the_people(config_file: Path) -> None:
    """The action receiver acts on it; the ticket receiver still tells a person (the route continues)."""
    drift = routed_to(config_file, {"alertname": contracts.ALERT_DRIFT, "severity": "ticket", **VERSION})
    assert drift == [contracts.RECEIVER_ACT, contracts.RECEIVER_TICKET]
    other = routed_to(config_file, {"alertname": contracts.ALERT_CANARY_FAILED, "severity": "ticket", **VERSION})
    assert contracts.RECEIVER_ACT not in other


def test_page_and_ticket_reach_different_receivers(config_file: Path) -> None:
    page = routed_to(config_file, {"alertname": contracts.ALERT_SERVER_DOWN, "severity": "page", **VERSION})
    ticket = routed_to(config_file, {"alertname": contracts.ALERT_LOG_DROPPED, "severity": "ticket", **VERSION})
    unlabelled = routed_to(config_file, {"alertname": "SomethingNew"})
    # kube-prometheus-stack's own rules in the cluster: `critical` pages, `warning` is a ticket.
    critical = routed_to(config_file, {"alertname": "KubeAPIDown", "severity": "critical"})
    warning = routed_to(config_file, {"alertname": "KubePodCrashLooping", "severity": "warning"})
    assert page == critical == [contracts.RECEIVER_PAGE]
    assert warning == [contracts.RECEIVER_TICKET]
    assert ticket == [contracts.RECEIVER_TICKET]
    assert unlabelled == [contracts.RECEIVER_TICKET], "an alert without a severity must still reach someone"


def test_receivers_must_be_exactly_the_routed_ones() -> None:
    with pytest.raises(ValueError, match="missing \\['mlp-act', 'mlp-page'\\]"):
        alertmanager.config({contracts.RECEIVER_TICKET: {}})
    with pytest.raises(ValueError, match="unknown \\['slack'\\]"):
        alertmanager.config({**{name: {} for name in alertmanager.RECEIVERS}, "slack": {}})
