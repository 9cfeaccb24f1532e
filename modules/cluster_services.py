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
# What kube-prometheus-stack's Alertmanager pod reserves (modules/alerting.py sets it; the cost report prices it).
# Locally the same binary idles at ~32 MB resident (docs/observability.md): 128Mi leaves room for many alert groups.
ALERTMANAGER_REQUESTS = {"cpu": "50m", "memory": "128Mi"}
ALERTMANAGER_LIMITS = {"memory": "256Mi"}


def pushgateway_url(namespace: str = MONITORING_NAMESPACE) -> str:
    """The Pushgateway Service the add-on stack installs, as a pod in another namespace reaches it."""
    return f"http://{PUSHGATEWAY_RELEASE}.{namespace}.svc:{PUSHGATEWAY_PORT}"


# Pods other namespaces' NetworkPolicies admit, by the pod labels the pinned charts set (infra/config/versions.yaml):
# a policy names these pods, never a whole namespace (docs/security.md, decision 0131).
PROMETHEUS_PORT = 9090
PROMETHEUS_PODS = {"app.kubernetes.io/name": "prometheus"}  # the operator's label on every Prometheus pod
PUSHGATEWAY_PODS = {
    "app.kubernetes.io/name": "prometheus-pushgateway",
    "app.kubernetes.io/instance": PUSHGATEWAY_RELEASE,
}
KEDA_NAMESPACE = "keda"  # keda and keda_http_addon
KEDA_HTTP_RELEASE = "keda-http-addon"
# The HTTP add-on's interceptor only: it routes by Host header without the API key, so only it is admitted.
KEDA_INTERCEPTOR_PODS = {"app.kubernetes.io/component": "interceptor", "app.kubernetes.io/instance": KEDA_HTTP_RELEASE}
KEDA_INTERCEPTOR_PORT = 8080  # the chart's interceptor.proxy.port
GATEWAY_NAMESPACE = "envoy-gateway-system"  # envoy_gateway: the proxies run in the controller's namespace
# Envoy Gateway binds a listener port below 1024 at port + 10000 inside the proxy pod (it runs unprivileged).
ENVOY_PRIVILEGED_PORT_SHIFT = 10000
MLFLOW_NAMESPACE = "mlflow"
CERT_MANAGER_NAMESPACE = "cert-manager"  # cert_manager: issues the gateway's certificate (decision 0135)
MLFLOW_RELEASE = "mlflow"
MLFLOW_PORT = 5000  # the mlflow chart's service.port and container port
MLFLOW_PODS = {"app.kubernetes.io/name": "mlflow", "app.kubernetes.io/instance": MLFLOW_RELEASE}
KUBE_DNS_PODS = {"k8s-app": "kube-dns"}  # CoreDNS in kube-system (the EKS add-on keeps the kube-dns label)

# The Qdrant server the RAG models keep their index in (modules/qdrant.py, infra/config/versions.yaml `qdrant`): the
# chart's Service is its fullname, which is the release name when that contains the chart's name (its _helpers.tpl).
QDRANT_NAMESPACE = "qdrant"
QDRANT_RELEASE = "qdrant"
QDRANT_HTTP_PORT = 6333  # the chart's service.ports `http` (REST); gRPC 6334 and p2p 6335 are not used here
QDRANT_PODS = {"app.kubernetes.io/name": "qdrant", "app.kubernetes.io/instance": QDRANT_RELEASE}  # selectorLabels
# The Kubernetes Secret holding Qdrant's API key, in the Qdrant namespace and in the serving namespace (both copied
# from one Secrets Manager secret by External Secrets), and its key.
QDRANT_API_KEY_SECRET = "qdrant-api-key"
QDRANT_API_KEY_SECRET_KEY = "api-key"
# Pods of the serving namespace that talk to Qdrant, by this label: the RAG models' servers and the job that loads a
# version's index into Qdrant. The Qdrant and KEDA namespaces' policies admit them by it (modules/k8s/platform.py).
RAG_ROLE_LABEL = "mlp.io/rag"
RAG_SERVER_PODS = {RAG_ROLE_LABEL: "server"}
RAG_INGEST_PODS = {RAG_ROLE_LABEL: "ingest"}


# The StorageClass the add-on stack creates for EBS gp3 volumes (modules/addons.py `storage_classes`): EKS clusters
# created on Kubernetes 1.30 or later have no default StorageClass (EKS 1.30 release notes: the `gp2` class it still
# creates lacks the default annotation), so a volume names its class.
GP3_STORAGE_CLASS = "gp3"


def qdrant_url(namespace: str = QDRANT_NAMESPACE) -> str:
    """The Qdrant server's REST address, as a pod in another namespace reaches it."""
    return f"http://{QDRANT_RELEASE}.{namespace}.svc:{QDRANT_HTTP_PORT}"


def envoy_proxy_pods(gateway_name: str, gateway_namespace: str) -> dict[str, str]:
    """The Envoy proxy pods Envoy Gateway runs for exactly one Gateway."""
    return {
        "app.kubernetes.io/name": "envoy",
        "app.kubernetes.io/component": "proxy",
        "gateway.envoyproxy.io/owning-gateway-name": gateway_name,
        "gateway.envoyproxy.io/owning-gateway-namespace": gateway_namespace,
    }


def envoy_container_port(listener_port: int) -> int:
    return listener_port + ENVOY_PRIVILEGED_PORT_SHIFT if listener_port < 1024 else listener_port
