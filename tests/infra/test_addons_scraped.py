"""What the cluster's alerts read must be scraped: each exporter's ServiceMonitor carries the label by which
kube-prometheus-stack selects ServiceMonitors."""

from __future__ import annotations

import yaml

from infra.config import EnvConfig
from modules.addons import PROMETHEUS_RELEASE
from tests.infra.conftest import Synth


def test_argo_rollouts_controller_metrics_are_scraped_by_the_platform_prometheus(synth: Synth, env: EnvConfig) -> None:
    releases = synth.resources(env.name, "addons", "helm_release").values()
    prometheus = next(r for r in releases if r["chart"] == "kube-prometheus-stack")
    selector = yaml.safe_load(prometheus["values"][0])["prometheus"]["prometheusSpec"]["serviceMonitorSelector"]
    rollouts = next(r for r in releases if r["chart"] == "argo-rollouts")
    metrics = yaml.safe_load(rollouts["values"][0])["controller"]["metrics"]
    assert metrics["enabled"] and metrics["serviceMonitor"]["enabled"]
    labels = metrics["serviceMonitor"]["additionalLabels"]
    assert selector["matchLabels"].items() <= labels.items()
    assert labels["release"] == PROMETHEUS_RELEASE
