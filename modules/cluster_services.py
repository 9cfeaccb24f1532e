"""In-cluster names of what the add-on stack installs and the rendered workloads call: one place for both sides.

`modules/addons.py` installs the Helm releases under these names; `modules/k8s/` renders the addresses and labels
the workloads use. Plain constants, no construct imports, so the manifest renderer stays light.
"""

from __future__ import annotations

MONITORING_NAMESPACE = "monitoring"  # infra/config/versions.yaml: kube_prometheus_stack and prometheus_pushgateway
# The `release` label kube-prometheus-stack's Prometheus selects ServiceMonitors, PodMonitors and rules by.
PROMETHEUS_RELEASE = "kube-prometheus-stack"
# Release, Service (the chart's fullnameOverride) and port of the Pushgateway batch jobs push to.
PUSHGATEWAY_RELEASE = "prometheus-pushgateway"
PUSHGATEWAY_PORT = 9091


def pushgateway_url(namespace: str = MONITORING_NAMESPACE) -> str:
    """The Pushgateway Service the add-on stack installs, as a pod in another namespace reaches it."""
    return f"http://{PUSHGATEWAY_RELEASE}.{namespace}.svc:{PUSHGATEWAY_PORT}"
