"""KEDA: scale model servers on in-flight requests per replica; scale non-critical endpoints to zero with the HTTP
add-on (its interceptor holds requests while the first pod starts: the cold-start trade-off in
docs/serving-cluster.md)."""

from __future__ import annotations

from typing import Any

from modules.k8s import common as c
from modules.k8s import serving
from modules.k8s.props import ServingProps
from modules.k8s.versions import KEDA_API, KEDA_HTTP_API, ROLLOUTS_API
from pipelines import promql
from pipelines.policy import Policy

PROMETHEUS_ADDRESS = "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"


def in_flight_query(model_name: str, version: int | None) -> str:
    """Requests being served right now, summed over the target's pods: KEDA divides by replicas (AverageValue)."""
    if version is None:  # a Rollout spans versions: every pod of the model
        sel = "{" + f'model_name="{model_name}",endpoint="{promql.PREDICT_ENDPOINT}"' + "}"
    else:
        sel = promql.selector(model_name, version)
    return f"sum({promql.REQUEST_IN_PROGRESS}{sel})"


def scaled_object(
    props: ServingProps, policy: Policy, model_name: str, target: dict[str, str], version: int | None
) -> c.Manifest:
    s = policy.scaling
    meta = c.metadata(target["name"], props.namespace, c.labels(model_name, version, component="scaling"))
    return c.manifest(
        KEDA_API,
        "ScaledObject",
        meta,
        spec={
            "scaleTargetRef": dict(target),
            "minReplicaCount": s.min_replicas,
            "maxReplicaCount": s.max_replicas,
            "pollingInterval": 15,
            "cooldownPeriod": 300,
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    # Scale up at once, down slowly: a model pod costs ~a minute to become ready.
                    "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}}
                }
            },
            "triggers": [
                {
                    "type": "prometheus",
                    "metricType": "AverageValue",
                    "metadata": {
                        "serverAddress": PROMETHEUS_ADDRESS,
                        "query": in_flight_query(model_name, version),
                        "threshold": str(s.target_in_flight_per_replica),
                    },
                }
            ],
        },
    )


def deployment_scaler(props: ServingProps, policy: Policy, model_name: str, version: int) -> c.Manifest:
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": c.version_name(model_name, version)}
    return scaled_object(props, policy, model_name, target, version)


def rollout_scaler(props: ServingProps, policy: Policy, model_name: str) -> c.Manifest:
    target = {"apiVersion": ROLLOUTS_API, "kind": "Rollout", "name": model_name}
    return scaled_object(props, policy, model_name, target, None)


def endpoint_name(model_name: str, endpoint: str) -> str:
    return f"{model_name}-{endpoint}"


def scale_to_zero_manifests(
    props: ServingProps, policy: Policy, model_name: str, version: int, endpoint: str, hostname: str
) -> list[c.Manifest]:
    """A non-critical endpoint: its own Deployment of `version` at zero replicas, a Service, and an HTTPScaledObject
    that wakes it on the first request through the KEDA HTTP interceptor."""
    name = endpoint_name(model_name, endpoint)
    deploy = serving.deployment(props, policy, model_name, version)
    deploy["metadata"]["name"] = name
    deploy["metadata"]["labels"]["app.kubernetes.io/component"] = endpoint
    deploy["spec"]["replicas"] = 0
    sel = {**c.selector_labels(model_name, version), "app.kubernetes.io/component": endpoint}
    deploy["spec"]["selector"] = {"matchLabels": sel}
    deploy["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] = endpoint
    for constraint in deploy["spec"]["template"]["spec"]["topologySpreadConstraints"]:
        constraint["labelSelector"] = {"matchLabels": dict(sel)}
    svc = serving.service(props, model_name, name, sel)
    s = policy.scaling
    spec: dict[str, Any] = {
        "hosts": [f"{endpoint}.{hostname}"],
        "pathPrefixes": ["/"],
        "scaleTargetRef": {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
            "service": name,
            "port": c.HTTP_PORT,
        },
        "replicas": {"min": 0, "max": s.max_replicas},
        "scaledownPeriod": s.scale_to_zero_idle_seconds,
        "targetPendingRequests": s.target_in_flight_per_replica,
    }
    meta = c.metadata(name, props.namespace, c.labels(model_name, version, component=endpoint))
    return [deploy, svc, c.manifest(KEDA_HTTP_API, "HTTPScaledObject", meta, spec=spec)]
