"""The serving namespace's NetworkPolicies: default deny in both directions, then exactly what the release needs.

- every pod: receives nothing; sends to CoreDNS (53) only.
- model servers (the release's pods): receive the HTTP port from this Gateway's Envoy proxies and Prometheus; send
  to MLflow (its port) and HTTPS (S3 through the gateway endpoint, STS through the interface endpoint).
- a non-critical model's servers (scaled to zero): receive the HTTP port from the KEDA HTTP interceptor's pods and
  Prometheus instead of the proxies; send as model servers.
- drift job: receives nothing; sends to MLflow, the Pushgateway and HTTPS (S3, STS).

Peers are pods selected by label inside their namespace, never a whole namespace: the KEDA namespace also runs the
operator and the metrics server, which have no business calling a model (decision 0131).
"""

from __future__ import annotations

from core.policy import Policy
from modules import cluster_services as cs
from modules.k8s import common as c
from modules.k8s import netpol as np
from modules.k8s.props import GatewayProps, ServingProps

HTTPS = 443
ANYWHERE = "0.0.0.0/0"  # S3's gateway endpoint routes to public S3 addresses: HTTPS is allowed by port, not address


def serving_pods(model_name: str, component: str = "model-server") -> dict[str, str]:
    return {"app.kubernetes.io/name": model_name, "app.kubernetes.io/component": component}


def drift_job_pods(model_name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": model_name, "app.kubernetes.io/component": "drift"}


def _to_mlflow() -> dict[str, object]:
    return np.rule([np.pods(cs.MLFLOW_NAMESPACE, cs.MLFLOW_PODS)], np.tcp(cs.MLFLOW_PORT))


def _https_out() -> dict[str, object]:
    return np.rule([np.cidr(ANYWHERE)], np.tcp(HTTPS))


def model_server_policy(s: ServingProps, g: GatewayProps, model_name: str, critical: bool = True) -> c.Manifest:
    """A critical model is called by the Gateway's proxies; a scaled-to-zero one only through the interceptor (it
    holds requests while the pods wake)."""
    # Envoy Gateway runs the proxies of every Gateway in its own namespace, labelled with their Gateway.
    proxies = np.pods(cs.GATEWAY_NAMESPACE, cs.envoy_proxy_pods(g.gateway_name, s.namespace))
    interceptor = np.pods(cs.KEDA_NAMESPACE, cs.KEDA_INTERCEPTOR_PODS)
    callers = [proxies if critical else interceptor, np.pods(cs.MONITORING_NAMESPACE, cs.PROMETHEUS_PODS)]
    return _serving_policy(s, model_name, "model-server", callers)


def _serving_policy(s: ServingProps, model_name: str, component: str, callers: list[np.Peer]) -> c.Manifest:
    return np.policy(
        f"{model_name}-{component}",
        s.namespace,
        serving_pods(model_name, component),
        ingress=[np.rule(callers, np.tcp(c.HTTP_PORT))],
        egress=[_to_mlflow(), _https_out()],
        labels=c.labels(model_name, component=component),
    )


def drift_job_policy(s: ServingProps, model_name: str) -> c.Manifest:
    pushgateway = np.rule([np.pods(cs.MONITORING_NAMESPACE, cs.PUSHGATEWAY_PODS)], np.tcp(cs.PUSHGATEWAY_PORT))
    return np.policy(
        f"{model_name}-drift-job",
        s.namespace,
        drift_job_pods(model_name),
        ingress=[],
        egress=[_to_mlflow(), pushgateway, _https_out()],
        labels=c.labels(model_name, component="drift"),
    )


def serving_network_policies(s: ServingProps, g: GatewayProps, p: Policy, model_name: str) -> list[c.Manifest]:
    return [
        np.default_deny(s.namespace),
        np.allow_dns(s.namespace),
        model_server_policy(s, g, model_name, critical=p.model(model_name).critical),
        drift_job_policy(s, model_name),
    ]
