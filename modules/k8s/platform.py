"""The add-on namespaces the platform owns: each one's Pod Security Admission level (with the reason when it is not
`restricted`), its default deny in both directions and its precise allows.

The add-on stack installs these objects before any chart (modules/addons.py, chart `platform-guardrails`), so every
Helm release lands in a namespace that already denies by default. Ports are the defaults of the chart versions
pinned in infra/config/versions.yaml. Within one add-on namespace its components may talk to each other (operator,
webhook and metrics server of one product); across namespaces every allow names pods and ports.

Who calls the API server's webhooks and aggregated APIs: the EKS control plane, from its cross-account ENIs in the
VPC's private subnets, so those allows are from the VPC CIDR on the webhook port only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from core import contracts
from modules import cluster_services as cs
from modules.k8s import common as c
from modules.k8s import netpol as np

PodSecurity = Literal["restricted", "baseline", "privileged"]
HTTPS = 443
POSTGRES = 5432
DNS = 53
ANYWHERE = "0.0.0.0/0"


@dataclass(frozen=True)
class OwnedNamespace:
    name: str
    pod_security: PodSecurity
    reason: str  # why this level (required reading when it is not `restricted`)
    ingress: list[dict[str, Any]] = field(default_factory=list)
    egress: list[dict[str, Any]] = field(default_factory=list)
    # Allows for some pods only: (policy name, pod labels, ingress, egress).
    pod_allows: list[tuple[str, dict[str, str], list[dict[str, Any]], list[dict[str, Any]]]] = field(
        default_factory=list
    )


def _api_server(vpc_cidr: str) -> dict[str, Any]:
    return np.rule([np.cidr(vpc_cidr)], np.tcp(HTTPS))


def _from_control_plane(vpc_cidr: str, *ports: int) -> dict[str, Any]:
    return np.rule([np.cidr(vpc_cidr)], np.tcp(*ports))


def _scraped_on(*ports: int) -> dict[str, Any]:
    return np.rule([np.pods(cs.MONITORING_NAMESPACE, cs.PROMETHEUS_PODS)], np.tcp(*ports))


def _internal() -> dict[str, Any]:
    return np.rule([np.same_namespace()])


# The in-cluster GitHub runners (modules/runners.py): their pods carry this label with their kind.
RUNNER_NAMESPACE = "arc-runners"
ARC_CONTROLLER_NAMESPACE = "arc-systems"
RUNNER_LABEL = "mlp.io/runner"
RETRAIN_POD_NAME = "mlp-retrain"  # the retraining Job's pods (modules/k8s/retrain.py), in the runners' namespace
RUNNER_KINDS = (contracts.RELEASE_RUNNERS, contracts.DRIFT_RUNNERS)
# The Job that creates the registry's users through MLflow's API (modules/registry_users.py).
REGISTRY_USERS_JOB_PODS = {"app.kubernetes.io/name": "mlflow-registry-users", "app.kubernetes.io/part-of": c.PART_OF}


def runner_pods(kind: str) -> dict[str, Any]:
    """Runner pods of one kind (`core.contracts.RELEASE_RUNNERS` or `DRIFT_RUNNERS`)."""
    return np.pods(RUNNER_NAMESPACE, {RUNNER_LABEL: kind})


def owned_namespaces(
    *, vpc_cidr: str, serving_namespace: str, gateway_name: str, listener_ports: list[int], model_port: int
) -> list[OwnedNamespace]:
    """Every add-on namespace the add-on stack creates (kube-system is EKS's own and is left alone)."""
    model_servers = np.pods(serving_namespace, {"app.kubernetes.io/component": "model-server"})
    # The interceptor forwards to the scale-to-zero endpoints' pods; their own policies admit only it.
    platform_pods = np.pods(serving_namespace, {"app.kubernetes.io/part-of": c.PART_OF})
    drift_jobs = np.pods(serving_namespace, {"app.kubernetes.io/component": "drift"})
    prometheus = np.pods(cs.MONITORING_NAMESPACE, cs.PROMETHEUS_PODS)
    rag_servers = np.pods(serving_namespace, cs.RAG_SERVER_PODS)
    https_out = np.rule([np.cidr(ANYWHERE)], np.tcp(HTTPS))
    return [
        OwnedNamespace(
            cs.KEDA_NAMESPACE,
            "baseline",
            "the keda-add-ons-http chart's interceptor, scaler and operator pods set no seccompProfile by default, "
            "which `restricted` requires; baseline still forbids host namespaces, hostPath and privilege",
            ingress=[
                _internal(),
                _from_control_plane(vpc_cidr, 6443, 9443),  # metrics APIService, admission webhooks
                np.rule(
                    [
                        np.pods(cs.GATEWAY_NAMESPACE, cs.envoy_proxy_pods(gateway_name, serving_namespace)),
                        rag_servers,  # a RAG server calls its embedder and generator through it (modules/k8s/rag.py)
                    ],
                    np.tcp(cs.KEDA_INTERCEPTOR_PORT),
                ),
                _scraped_on(8080, 9022),
            ],
            egress=[
                _internal(),
                _api_server(vpc_cidr),
                np.rule([platform_pods], np.tcp(model_port)),  # the interceptor forwards to a woken endpoint
                np.rule([prometheus], np.tcp(cs.PROMETHEUS_PORT)),  # prometheus triggers of the ScaledObjects
            ],
        ),
        OwnedNamespace(
            "argo-rollouts",
            "restricted",
            "the argo-rollouts chart runs non-root with a read-only root, no capabilities and RuntimeDefault seccomp",
            ingress=[_scraped_on(8090)],
            egress=[
                _api_server(vpc_cidr),
                np.rule([prometheus], np.tcp(cs.PROMETHEUS_PORT)),  # AnalysisRuns query Prometheus
                https_out,  # the Gateway API traffic-router plugin is downloaded from its GitHub release at start
            ],
        ),
        OwnedNamespace(
            cs.GATEWAY_NAMESPACE,
            "baseline",
            "Envoy Gateway creates the proxy Deployments itself and their default pod spec sets no seccompProfile; "
            "baseline forbids host access and privilege",
            ingress=[
                _internal(),  # proxies fetch their configuration from the controller (xDS)
                # Clients through the load balancer (client IPs preserved): the proxies' listener ports only.
                np.rule([np.cidr(ANYWHERE)], np.tcp(*[cs.envoy_container_port(p) for p in listener_ports])),
                _scraped_on(19001),
            ],
            egress=[
                _internal(),
                _api_server(vpc_cidr),
                np.rule([model_servers], np.tcp(model_port)),
                np.rule([np.pods(cs.KEDA_NAMESPACE, cs.KEDA_INTERCEPTOR_PODS)], np.tcp(cs.KEDA_INTERCEPTOR_PORT)),
            ],
        ),
        OwnedNamespace(
            cs.MONITORING_NAMESPACE,
            "privileged",
            "kube-prometheus-stack's node-exporter DaemonSet needs hostNetwork, hostPID and hostPath mounts of /proc "
            "and /sys to report node metrics; no other privileged workload runs here",
            ingress=[
                _internal(),  # Grafana -> Prometheus, Prometheus -> Alertmanager
                _from_control_plane(vpc_cidr, 10250),  # the operator's admission webhook
                # Analysis runs and KEDA's prometheus triggers query Prometheus.
                np.rule(
                    [
                        np.pods("argo-rollouts", {"app.kubernetes.io/name": "argo-rollouts"}),
                        np.pods(cs.KEDA_NAMESPACE, {"app.kubernetes.io/name": "keda-operator"}),
                    ],
                    np.tcp(cs.PROMETHEUS_PORT),
                ),
                np.rule([drift_jobs, runner_pods(contracts.DRIFT_RUNNERS)], np.tcp(cs.PUSHGATEWAY_PORT)),
            ],
            egress=[
                _internal(),
                # A scraper by design: every pod and node of the VPC on any port (kubelet, node-exporter, targets).
                np.rule([np.cidr(vpc_cidr)]),
                https_out,  # Alertmanager receivers (chat, paging) and Grafana's sign-in provider
            ],
        ),
        OwnedNamespace(
            "gpu-operator",
            "privileged",
            "the NVIDIA device plugin registers with the kubelet through a hostPath socket "
            "(/var/lib/kubelet/device-plugins) and the DCGM exporter reads the GPUs through host devices",
            ingress=[_scraped_on(9400)],
            egress=[_api_server(vpc_cidr)],
        ),
        OwnedNamespace(
            cs.CERT_MANAGER_NAMESPACE,
            "restricted",
            "the cert-manager chart runs non-root with a read-only root, no capabilities and RuntimeDefault seccomp",
            ingress=[_internal(), _from_control_plane(vpc_cidr, 10250), _scraped_on(9402)],  # webhook, metrics
            egress=[
                _internal(),
                _api_server(vpc_cidr),
                https_out,  # Let's Encrypt's ACME API, Route53 and STS
                # The DNS-01 self-check asks the zone's authoritative name servers (outside the VPC) directly.
                np.rule(
                    [{"ipBlock": {"cidr": ANYWHERE, "except": [vpc_cidr]}}],
                    [*np.tcp(DNS), {"protocol": "UDP", "port": DNS}],
                ),
            ],
        ),
        OwnedNamespace(
            "external-secrets",
            "restricted",
            "the external-secrets chart runs non-root with no capabilities and RuntimeDefault seccomp",
            ingress=[_internal(), _from_control_plane(vpc_cidr, 10250), _scraped_on(8080)],
            egress=[_internal(), _api_server(vpc_cidr), https_out],  # Secrets Manager and STS
        ),
        OwnedNamespace(
            cs.MLFLOW_NAMESPACE,
            "baseline",
            "the mlflow chart's database-migration init container sets no seccompProfile by default; baseline "
            "forbids host access and privilege",
            ingress=[
                # The in-VPC release and drift jobs (modules/runners.py) and the retraining Job they start: MLflow
                # has no other client outside the serving namespace, and no public endpoint.
                np.rule(
                    [
                        model_servers,
                        drift_jobs,
                        np.pods(serving_namespace, cs.RAG_INGEST_PODS),  # reads the version's index (rag.py)
                        *(runner_pods(k) for k in RUNNER_KINDS),
                        np.pods(RUNNER_NAMESPACE, {"app.kubernetes.io/name": RETRAIN_POD_NAME}),
                        np.pods(cs.MLFLOW_NAMESPACE, REGISTRY_USERS_JOB_PODS),
                    ],
                    np.tcp(cs.MLFLOW_PORT),
                ),
                _scraped_on(cs.MLFLOW_PORT),
            ],
            egress=[
                np.rule([np.cidr(vpc_cidr)], np.tcp(POSTGRES)),  # RDS in the private subnets
                https_out,  # S3 artifacts (gateway endpoint), STS
            ],
            pod_allows=[
                (
                    "allow-registry-users-job",
                    REGISTRY_USERS_JOB_PODS,
                    [],
                    [np.rule([np.pods(cs.MLFLOW_NAMESPACE, cs.MLFLOW_PODS)], np.tcp(cs.MLFLOW_PORT))],
                )
            ],
        ),
        OwnedNamespace(
            cs.QDRANT_NAMESPACE,
            "restricted",
            "the qdrant chart runs non-root with a read-only root; the add-on stack's values drop every capability, "
            "set RuntimeDefault seccomp and turn off the chart's root `chown` init container (modules/qdrant.py)",
            # The RAG servers and the job that loads a version's index, on the REST port only: no gRPC, no p2p (one
            # node), no scrape (its /metrics wants the API key; modules/qdrant.py).
            ingress=[
                np.rule([rag_servers, np.pods(serving_namespace, cs.RAG_INGEST_PODS)], np.tcp(cs.QDRANT_HTTP_PORT))
            ],
            egress=[https_out],  # snapshots to S3 (gateway endpoint) and STS for its IRSA role
        ),
        OwnedNamespace(
            ARC_CONTROLLER_NAMESPACE,
            "restricted",
            "the ARC controller and the scale sets' listener pods get a restricted securityContext from the add-ons "
            "stack's values (modules/runners.py)",
            ingress=[],  # nothing calls in: the controller and the listeners poll GitHub and the API server
            egress=[_api_server(vpc_cidr), https_out],  # GitHub's API and its Actions service
        ),
        OwnedNamespace(
            RUNNER_NAMESPACE,
            "restricted",
            "the runner pods run as the image's non-root user with no capabilities and RuntimeDefault seccomp "
            "(modules/runners.py); no Docker-in-Docker: images are built on GitHub-hosted runners",
            ingress=[],  # a runner serves nothing
            egress=[],  # per kind below
            pod_allows=[
                (
                    "allow-release-runners",
                    {RUNNER_LABEL: contracts.RELEASE_RUNNERS},
                    [],
                    [
                        np.rule([np.pods(cs.MLFLOW_NAMESPACE, cs.MLFLOW_PODS)], np.tcp(cs.MLFLOW_PORT)),
                        _api_server(vpc_cidr),  # kubectl apply / argo rollouts status (RBAC: modules/runners.py)
                        https_out,  # GitHub, STS, ECR's API, the package index
                    ],
                ),
                (
                    "allow-retrain-jobs",  # modules/k8s/retrain.py: registers through MLflow, signs with KMS
                    {"app.kubernetes.io/name": RETRAIN_POD_NAME},
                    [],
                    [
                        np.rule([np.pods(cs.MLFLOW_NAMESPACE, cs.MLFLOW_PODS)], np.tcp(cs.MLFLOW_PORT)),
                        https_out,  # STS and KMS
                    ],
                ),
                (
                    "allow-drift-runners",
                    {RUNNER_LABEL: contracts.DRIFT_RUNNERS},
                    [],
                    [
                        np.rule([np.pods(cs.MLFLOW_NAMESPACE, cs.MLFLOW_PODS)], np.tcp(cs.MLFLOW_PORT)),
                        np.rule([np.pods(cs.MONITORING_NAMESPACE, cs.PUSHGATEWAY_PODS)], np.tcp(cs.PUSHGATEWAY_PORT)),
                        https_out,  # GitHub, STS, S3 (inference logs), the package index
                    ],
                ),
            ],
        ),
    ]


def namespace_manifest(ns: OwnedNamespace) -> c.Manifest:
    labels = {
        "app.kubernetes.io/part-of": c.PART_OF,
        "pod-security.kubernetes.io/enforce": ns.pod_security,
        # Audit and warn at `restricted` everywhere: what a looser namespace would fail shows in the audit log.
        "pod-security.kubernetes.io/audit": "restricted",
        "pod-security.kubernetes.io/warn": "restricted",
    }
    annotations = {"mlp.io/pod-security-reason": ns.reason, "helm.sh/resource-policy": "keep"}
    return c.manifest("v1", "Namespace", c.metadata(ns.name, None, labels, annotations=annotations))


def namespace_manifests(ns: OwnedNamespace) -> list[c.Manifest]:
    return [
        namespace_manifest(ns),
        np.default_deny(ns.name),
        np.allow_dns(ns.name),
        np.policy("allow-platform", ns.name, None, ingress=ns.ingress, egress=ns.egress),
        *(np.policy(name, ns.name, pods, ingress=i, egress=e) for name, pods, i, e in ns.pod_allows),
    ]
