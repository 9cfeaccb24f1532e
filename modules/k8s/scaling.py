"""KEDA: scale model servers on in-flight requests per replica; scale non-critical endpoints to zero with the HTTP
add-on (its interceptor holds requests while the first pod starts: the cold-start trade-off in
docs/serving-cluster.md).

Scale to zero, with the add-on's 0.14 API: an InterceptorRoute tells the interceptor which Host goes to which Service
and what to count; a ScaledObject with the add-on's `external-push` scaler scales the Deployment between 0 and
`max_replicas` on that count. The gateway sends the endpoint's hostname to the interceptor (gateway.py).
"""

from __future__ import annotations

from core import promql
from core.policy import Policy
from modules.k8s import common as c
from modules.k8s import serving
from modules.k8s.props import ServingProps
from modules.k8s.versions import KEDA_API, KEDA_HTTP_API, ROLLOUTS_API

PROMETHEUS_ADDRESS = "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"
# The keda-add-ons-http chart's Services (0.14 defaults), in the namespace the add-on stack installs it into
# (infra/config/versions.yaml: keda_http_addon.namespace).
KEDA_HTTP_NAMESPACE = "keda"
INTERCEPTOR_SERVICE = "keda-add-ons-http-interceptor-proxy"
INTERCEPTOR_PORT = 8080
EXTERNAL_SCALER_ADDRESS = f"keda-add-ons-http-external-scaler.{KEDA_HTTP_NAMESPACE}:9090"


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


def endpoint_host(endpoint: str, hostname: str) -> str:
    """Each non-critical endpoint answers on its own host under the gateway's: the interceptor routes by Host."""
    return f"{endpoint}.{hostname}"


def scale_to_zero_manifests(
    props: ServingProps, policy: Policy, model_name: str, version: int, endpoint: str, hostname: str
) -> list[c.Manifest]:
    """A non-critical endpoint: its own Deployment of `version` at zero replicas, a Service, the InterceptorRoute that
    holds its requests while a pod starts, and the ScaledObject that wakes it on the interceptor's count."""
    name = endpoint_name(model_name, endpoint)
    deploy = serving.deployment(props, policy, model_name, version)
    deploy["metadata"]["name"] = name
    deploy["metadata"]["labels"]["app.kubernetes.io/component"] = endpoint
    # No `replicas` (serving.deployment renders none): KEDA owns the count, from 0 while the endpoint is idle.
    sel = {**c.selector_labels(model_name, version), "app.kubernetes.io/component": endpoint}
    deploy["spec"]["selector"] = {"matchLabels": sel}
    deploy["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] = endpoint
    for constraint in deploy["spec"]["template"]["spec"]["topologySpreadConstraints"]:
        constraint["labelSelector"] = {"matchLabels": dict(sel)}
    svc = serving.service(props, model_name, name, sel)
    s = policy.scaling
    meta = c.metadata(name, props.namespace, c.labels(model_name, version, component=endpoint))
    route = c.manifest(
        KEDA_HTTP_API,
        "InterceptorRoute",
        meta,
        spec={
            "target": {"service": name, "port": c.HTTP_PORT},
            "rules": [{"hosts": [endpoint_host(endpoint, hostname)], "paths": [{"value": "/"}]}],
            "scalingMetric": {"concurrency": {"targetValue": s.target_in_flight_per_replica}},
            "timeouts": {
                # Held this long for a pod to become ready, then the request itself gets the usual timeout.
                "readiness": f"{s.cold_start_timeout_seconds}s",
                "request": f"{cold_start_request_seconds(policy):g}s",
            },
        },
    )
    scaler = c.manifest(
        KEDA_API,
        "ScaledObject",
        c.metadata(name, props.namespace, c.labels(model_name, version, component="scaling")),
        spec={
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicaCount": 0,
            "maxReplicaCount": s.max_replicas,
            "pollingInterval": 15,
            "cooldownPeriod": s.scale_to_zero_idle_seconds,  # idle this long: back to zero
            "triggers": [
                {
                    "type": "external-push",
                    "metadata": {"scalerAddress": EXTERNAL_SCALER_ADDRESS, "interceptorRoute": name},
                }
            ],
        },
    )
    # Created after the InterceptorRoute: the scaler answers an empty metric spec for a route it does not know.
    return [deploy, svc, route, scaler]


def cold_start_request_seconds(policy: Policy) -> float:
    """A request to a scaled-to-zero endpoint: the cold-start wait plus the usual request timeout."""
    return policy.scaling.cold_start_timeout_seconds + policy.gateway.upstream_timeout_seconds
