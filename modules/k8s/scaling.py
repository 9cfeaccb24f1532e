"""KEDA: scale a critical model's servers on in-flight requests per replica, never below `scaling.min_replicas`;
scale a non-critical model (catalogue `criticality`) to zero with the HTTP add-on (its interceptor holds requests
while the first pod starts: the cold-start trade-off in docs/serving-cluster.md).

Scale to zero, with the add-on's 0.14 API: an InterceptorRoute tells the interceptor which Host goes to which Service
and what to count; a ScaledObject with the add-on's `external-push` scaler scales the Deployment between 0 and
`max_replicas` on that count. The gateway rewrites the model's route to the interceptor's Host (gateway.py).
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


def interceptor_url() -> str:
    """The interceptor's proxy as a pod of the cluster calls it: with the target's `interceptor_host` as Host."""
    return f"http://{INTERCEPTOR_SERVICE}.{KEDA_HTTP_NAMESPACE}.svc:{INTERCEPTOR_PORT}"


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


def interceptor_host(model_name: str, hostname: str) -> str:
    """The Host a non-critical model's requests carry to the interceptor, which routes by Host: the gateway rewrites
    its public route to it (gateway.py), so this name never needs DNS."""
    return f"{model_name}.{hostname}"


def scale_to_zero_manifests(
    props: ServingProps, policy: Policy, model_name: str, version: int, hostname: str
) -> list[c.Manifest]:
    """A non-critical model's version: its Deployment with no replica count and its Service (serving.py), the
    InterceptorRoute that holds requests while a pod starts, and the ScaledObject that wakes it on the
    interceptor's count and returns it to zero when idle."""
    name = c.version_name(model_name, version)
    s = policy.scaling
    route = c.manifest(
        KEDA_HTTP_API,
        "InterceptorRoute",
        c.metadata(model_name, props.namespace, c.labels(model_name, version, component="scaling")),
        spec={
            "target": {"service": name, "port": c.HTTP_PORT},
            "rules": [{"hosts": [interceptor_host(model_name, hostname)], "paths": [{"value": "/"}]}],
            "scalingMetric": {"concurrency": {"targetValue": s.target_in_flight_per_replica}},
            "timeouts": {
                # Held this long for a pod to become ready, then the request itself gets the usual timeout.
                "readiness": f"{s.cold_start_timeout_seconds}s",
                "request": f"{cold_start_request_seconds(policy):g}s",
            },
        },
    )
    # Named after the model, like its InterceptorRoute: a release re-targets the one scaler at the new version, so
    # the replaced version's Deployment is never woken by the same count (the workflow then deletes it).
    scaler = c.manifest(
        KEDA_API,
        "ScaledObject",
        c.metadata(model_name, props.namespace, c.labels(model_name, version, component="scaling")),
        spec={
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicaCount": 0,
            "maxReplicaCount": s.max_replicas,
            "pollingInterval": 15,
            "cooldownPeriod": s.scale_to_zero_idle_seconds,  # idle this long: back to zero
            "triggers": [
                {
                    "type": "external-push",
                    "metadata": {"scalerAddress": EXTERNAL_SCALER_ADDRESS, "interceptorRoute": model_name},
                }
            ],
        },
    )
    # Created after the InterceptorRoute: the scaler answers an empty metric spec for a route it does not know.
    return [*serving.serving_manifests(props, policy, model_name, [version]), route, scaler]


def cold_start_request_seconds(policy: Policy) -> float:
    """A request to a scaled-to-zero endpoint: the cold-start wait plus the usual request timeout."""
    return policy.scaling.cold_start_timeout_seconds + policy.gateway.upstream_timeout_seconds
