"""Platform add-ons as Helm releases with pinned chart versions (infra/config/versions.yaml).

Cluster Autoscaler, KEDA + its HTTP add-on, Argo Rollouts (with the Gateway API traffic-router plugin), Envoy
Gateway, kube-prometheus-stack with a Pushgateway for batch jobs, the NVIDIA device plugin (time-slicing), the DCGM
exporter, External Secrets, MLflow wired to RDS (password synced from Secrets Manager) and S3 (IRSA, no static keys),
the in-cluster GitHub runners the release and drift jobs run on (actions-runner-controller, modules/runners.py),
and cert-manager with the ClusterIssuer that gets the gateway's certificate from Let's Encrypt (DNS-01 in the
environment's Route53 zone, IRSA; decision 0135), and the Qdrant server the RAG models keep their index in (its official
chart, snapshots to S3 through IRSA, its API key from Secrets Manager; modules/qdrant.py, decision 0181) on a gp3
volume of the `gp3` StorageClass installed here.

Before any of them, the `platform-guardrails` chart creates the add-on namespaces the platform owns with their Pod
Security labels, default-deny NetworkPolicies and precise allows (modules/k8s/platform.py); every release into one
of them waits for it and does not create the namespace itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from cdktn import AssetType, TerraformAsset
from cdktn_provider_helm.release import Release
from constructs import Construct
from pydantic import Field

from core.promql import SERVING_NAMESPACE
from modules import alerting, cert_manager, database_bootstrap, qdrant, registry_auth, registry_users, runners
from modules.cluster_services import (
    GP3_STORAGE_CLASS,
    MLFLOW_PORT,
    PROMETHEUS_RELEASE,
    PUSHGATEWAY_PORT,
    PUSHGATEWAY_RELEASE,
    QDRANT_RELEASE,
)
from modules.common import Props
from modules.k8s import certificates, image_policy, platform
from modules.k8s import common as k8s_common
from modules.k8s.props import GatewayProps, WebhookProps
from modules.k8s.render import namespace as serving_namespace
from modules.node_autoscaling import SERVICE_ACCOUNT as CA_SERVICE_ACCOUNT
from modules.qdrant import QdrantProps
from modules.workload_roles import (
    ALERT_SECRETS,
    ARTIFACT_PREFIX,
    DRIFT_RUNNER,
    MLFLOW,
    PLATFORM_SECRETS,
    QDRANT_SECRETS,
    RELEASE_RUNNER,
)

CHARTS_DIR = Path(__file__).resolve().parent / "charts"
GPU_NODE_LABEL = {"nvidia.com/gpu.present": "true"}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
SYSTEM_POOL = k8s_common.SYSTEM_NODE_SELECTOR
MLFLOW_DB_SECRET = "mlflow-db"


class ChartProps(Props):
    repository: str
    chart: str
    version: str
    namespace: str
    image_values: dict[str, Any] = Field(
        default_factory=dict, description="Values that pin the chart's images by digest (versions.yaml `images`)"
    )


class AddonsProps(Props):
    cluster_name: str
    region: str
    charts: dict[str, ChartProps]
    argo_rollouts_gateway_plugin: str
    argo_rollouts_gateway_plugin_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    cluster_autoscaler_role_arn: str
    cert_manager_role_arn: str = Field(description="IRSA role of cert-manager: DNS-01 in the hosted zone only")
    hosted_zone_id: str = Field(description="Route53 zone the ACME DNS-01 challenges are answered in")
    dns_zone: str = Field(description="That zone's domain")
    acme_email: str = Field(description="Let's Encrypt account contact")
    mlflow_role_arn: str
    mlflow_db_host: str
    mlflow_db_name: str
    mlflow_db_secret_arn: str = Field(description="MLflow's own database role's secret (not the master)")
    mlflow_db_master_secret_arn: str = Field(description="The RDS-managed master secret: the bootstrap Job only")
    db_bootstrap_role_arn: str
    mlflow_registry_secret_name: str = Field(description="Secrets Manager secret of the registry users")
    alert_receivers_secret_name: str = Field(description="Secrets Manager secret of Alertmanager's receivers")
    alert_secrets_role_arn: str = Field(description="IRSA role the monitoring namespace's SecretStore reads it as")
    artifact_bucket: str
    gpu_time_slicing_replicas: int = Field(ge=1)
    vpc_cidr: str = Field(description="The VPC's CIDR: the EKS control plane's ENIs, nodes and RDS live in it")
    environment: str = Field(description="dev, staging or prod: part of the runner scale sets' names")
    github_repository: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
    arc_runner_image: str
    release_runner_role_arn: str
    drift_runner_role_arn: str
    platform_secrets_role_arn: str
    github_app_secret_name: str = Field(description="Secrets Manager secret of the runners' GitHub App")
    webhook_secret_name: str = Field(description="Secrets Manager secret of the registry-webhook receiver")
    qdrant: QdrantProps = Field(description="The Qdrant server (sizes from infra/config/<env>.yaml `qdrant`)")
    qdrant_api_key_secret_name: str = Field(description="Secrets Manager secret of Qdrant's API key")
    qdrant_secrets_role_arn: str = Field(description="IRSA role the Qdrant namespace's SecretStore reads it as")


def _yaml(values: dict[str, Any]) -> str:
    # Wide lines: a folded Terraform token would no longer resolve.
    return yaml.safe_dump(values, sort_keys=False, width=100_000)


class PlatformAddons(Construct):
    def __init__(self, scope: Construct, id_: str, props: AddonsProps) -> None:
        super().__init__(scope, id_)
        self.props = props
        self.releases: dict[str, Release] = {}
        p = props
        gateway = GatewayProps()  # the Gateway `mlp render k8s` renders (its defaults: name and listener port)
        self.owned_namespaces = platform.owned_namespaces(
            vpc_cidr=p.vpc_cidr,
            serving_namespace=SERVING_NAMESPACE,
            gateway_name=gateway.gateway_name,
            listener_ports=[gateway.listener_port, gateway.https_port],
            model_port=k8s_common.HTTP_PORT,
        )
        self.guardrails = self._local_chart(
            "platform-guardrails",
            namespace="kube-system",  # where Helm keeps this release's record; the objects name their namespaces
            values={"manifests": self.guardrail_manifests()},
            depends_on=[],
        )
        ca = self._release(
            "cluster_autoscaler",
            {
                "autoDiscovery": {"clusterName": p.cluster_name},
                "awsRegion": p.region,
                "rbac": {
                    "serviceAccount": {
                        "name": CA_SERVICE_ACCOUNT,
                        "annotations": {"eks.amazonaws.com/role-arn": p.cluster_autoscaler_role_arn},
                    }
                },
                "extraArgs": {
                    "balance-similar-node-groups": True,
                    "skip-nodes-with-system-pods": False,
                    "expander": "least-waste",
                },
                "nodeSelector": SYSTEM_POOL,
            },
        )
        eso = self._release("external_secrets", {"installCRDs": True, "nodeSelector": SYSTEM_POOL})
        # Alertmanager mounts the receivers' Secret: it is synced before the monitoring release installs.
        alert_secrets = self._local_chart(
            "alertmanager-secrets",
            namespace=p.charts["kube_prometheus_stack"].namespace,
            values={
                "region": p.region,
                "serviceAccount": ALERT_SECRETS.service_account,
                "roleArn": p.alert_secrets_role_arn,
                "manifests": [
                    alerting.receivers_external_secret(
                        p.alert_receivers_secret_name, p.charts["kube_prometheus_stack"].namespace
                    )
                ],
            },
            depends_on=[eso, self.guardrails],
        )
        monitoring = self._release(
            "kube_prometheus_stack",
            {
                "prometheus": {
                    "prometheusSpec": {
                        "retention": "15d",
                        "ruleSelector": {"matchLabels": {"release": PROMETHEUS_RELEASE}},
                        "serviceMonitorSelector": {"matchLabels": {"release": PROMETHEUS_RELEASE}},
                        "podMonitorSelector": {"matchLabels": {"release": PROMETHEUS_RELEASE}},
                        "storageSpec": {
                            "volumeClaimTemplate": {
                                "spec": {
                                    "accessModes": ["ReadWriteOnce"],
                                    "resources": {"requests": {"storage": "50Gi"}},
                                }
                            }
                        },
                        "nodeSelector": SYSTEM_POOL,
                    }
                },
                # Admin credentials come from a pre-created Secret (docs/platform-addons.md), never the default.
                "grafana": {"admin": {"existingSecret": "grafana-admin"}, "nodeSelector": SYSTEM_POOL},
                # The routes of core/alertmanager.py; PagerDuty and Slack credentials from Secrets Manager.
                "alertmanager": alerting.alertmanager_values(SYSTEM_POOL),
            },
            release_name=PROMETHEUS_RELEASE,
            depends_on=[alert_secrets],
        )
        # The drift job pushes its score here (modules/k8s/monitoring.py): without it the drift alert cannot fire.
        self._release(
            "prometheus_pushgateway",
            self.pushgateway_values(p.charts["prometheus_pushgateway"].namespace),
            release_name=PUSHGATEWAY_RELEASE,
            depends_on=[monitoring],
        )
        keda = self._release("keda", {"nodeSelector": SYSTEM_POOL}, depends_on=[monitoring])
        self._release("keda_http_addon", {}, depends_on=[keda])
        self._release(
            "argo_rollouts",
            {
                "controller": {
                    "trafficRouterPlugins": [
                        {
                            "name": "argoproj-labs/gatewayAPI",
                            "location": "https://github.com/argoproj-labs/rollouts-plugin-trafficrouter-gatewayapi"
                            f"/releases/download/{p.argo_rollouts_gateway_plugin}/gatewayapi-plugin-linux-amd64",
                            # A binary the controller runs: loaded only if its SHA-256 is the recorded one.
                            "sha256": p.argo_rollouts_gateway_plugin_sha256,
                        }
                    ],
                    # Scraped by kube-prometheus-stack (it selects ServiceMonitors by its release label): the
                    # cluster's CanaryAnalysisFailed alert reads the controller's rollout_info.
                    "metrics": {
                        "enabled": True,
                        "serviceMonitor": {"enabled": True, "additionalLabels": {"release": PROMETHEUS_RELEASE}},
                    },
                    "nodeSelector": SYSTEM_POOL,
                },
                # The plugin rewrites HTTPRoute weights during a canary.
                "providerRBAC": {
                    "additionalRules": [
                        {
                            "apiGroups": ["gateway.networking.k8s.io"],
                            "resources": ["httproutes", "grpcroutes", "tcproutes"],
                            "verbs": ["get", "list", "watch", "update", "patch"],
                        }
                    ]
                },
            },
            depends_on=[monitoring],
        )
        self._release("envoy_gateway", {"deployment": {"pod": {"nodeSelector": SYSTEM_POOL}}})
        self._release(
            "nvidia_device_plugin",
            {
                "config": {"map": {"default": self.time_slicing_config(p.gpu_time_slicing_replicas)}},
                "nodeSelector": GPU_NODE_LABEL,
                "tolerations": [GPU_TOLERATION],
                "gfd": {"enabled": False},
            },
        )
        self._release(
            "dcgm_exporter",
            {
                "serviceMonitor": {"enabled": True, "additionalLabels": {"release": PROMETHEUS_RELEASE}},
                "nodeSelector": GPU_NODE_LABEL,
                "tolerations": [GPU_TOLERATION],
            },
            depends_on=[monitoring],
        )
        db_secret = self._local_chart(
            "mlflow-db-secret",
            namespace=p.charts["mlflow"].namespace,
            values={
                "region": p.region,
                "secretArn": p.mlflow_db_secret_arn,
                "serviceAccount": MLFLOW.service_account,
                "targetSecret": MLFLOW_DB_SECRET,
                # The auth app's admin password and CSRF key (ExternalSecrets rendered by modules/registry_auth.py),
                # and the Job that creates MLflow's own database role (modules/database_bootstrap.py).
                "manifests": self.registry_auth_manifests() + self.db_bootstrap_manifests(),
            },
            depends_on=[eso, self.guardrails],
        )
        mlflow = self._release("mlflow", self.mlflow_values(), depends_on=[db_secret, monitoring])
        # Then the registry's users and the bot's grants, through MLflow's API (docs/security-registry.md).
        self._local_chart(
            registry_users.NAME,
            namespace=p.charts["mlflow"].namespace,
            values={
                "manifests": registry_users.manifests(
                    namespace=p.charts["mlflow"].namespace,
                    image=registry_auth.MLFLOW_IMAGE,
                    remote_key=p.mlflow_registry_secret_name,
                )
            },
            depends_on=[mlflow, db_secret, self.guardrails],
        )
        # The runners the release and drift jobs run on (decision 0143): their identities, rights and secrets
        # first, then the controller, then one scale set per kind.
        access = self._local_chart(
            "platform-access",
            namespace=p.charts["external_secrets"].namespace,
            values={"manifests": self.access_manifests()},
            depends_on=[eso, self.guardrails],
        )
        controller = self._release("arc_controller", runners.controller_values())
        for rk in runners.KINDS:
            self._release(
                "arc_runner_set",
                runners.scale_set_values(
                    rk, environment=p.environment, github_repository=p.github_repository, image=p.arc_runner_image
                ),
                release_name=rk.kind,
                construct_id=f"{rk.kind}-runners",
                depends_on=[controller, access],
            )
        # The RAG models' index: its key in its namespace first (the pod does not start without it), its volume's
        # StorageClass, then the chart (modules/qdrant.py).
        storage = self._local_chart(
            "storage-classes", namespace="kube-system", values={"manifests": self.storage_classes()}, depends_on=[]
        )
        qdrant_ns = p.charts["qdrant"].namespace
        qdrant_secrets = self._local_chart(
            qdrant.SECRETS_RELEASE,
            namespace=qdrant_ns,
            values={
                "region": p.region,
                "serviceAccount": QDRANT_SECRETS.service_account,
                "roleArn": p.qdrant_secrets_role_arn,
                "manifests": [qdrant.api_key_external_secret(p.qdrant_api_key_secret_name, qdrant_ns)],
            },
            depends_on=[eso, self.guardrails],
        )
        self._release(
            "qdrant",
            qdrant.values(p.qdrant),
            release_name=QDRANT_RELEASE,
            depends_on=[qdrant_secrets, storage],
        )
        cert_manager_release = self._release("cert_manager", self.cert_manager_values(), depends_on=[monitoring])
        # The issuer after the chart: its CRDs come with it (`crds.enabled`).
        self._local_chart(
            "cert-issuers",
            namespace=p.charts["cert_manager"].namespace,
            values={"manifests": [self.cluster_issuer()]},
            depends_on=[cert_manager_release, self.guardrails],
        )
        self.cluster_autoscaler = ca

    def cert_manager_values(self) -> dict[str, Any]:
        return {
            "crds": {"enabled": True, "keep": True},  # kept on uninstall: deleting CRDs deletes every Certificate
            "serviceAccount": {
                "name": cert_manager.SERVICE_ACCOUNT,
                "annotations": {"eks.amazonaws.com/role-arn": self.props.cert_manager_role_arn},
            },
            "nodeSelector": SYSTEM_POOL,
            "prometheus": {
                "enabled": True,
                "servicemonitor": {"enabled": True, "labels": {"release": PROMETHEUS_RELEASE}},
            },
        }

    def cluster_issuer(self) -> dict[str, Any]:
        p = self.props
        return certificates.cluster_issuer(
            cert_manager.CLUSTER_ISSUER,
            email=p.acme_email,
            region=p.region,
            hosted_zone_id=p.hosted_zone_id,
            dns_zone=p.dns_zone,
        )

    @staticmethod
    def storage_classes() -> list[dict[str, Any]]:
        """`gp3`: encrypted EBS gp3 volumes from the EBS CSI driver (the EKS add-on), bound where the pod lands
        (its zone), expandable in place. Deleted with their claim: what lives on them is rebuilt from the registry
        and S3 (the Qdrant index: a RAG version's pinned snapshot, docs/data-stores.md)."""
        return [
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {"name": GP3_STORAGE_CLASS, "labels": {"app.kubernetes.io/part-of": k8s_common.PART_OF}},
                "provisioner": "ebs.csi.aws.com",
                "parameters": {"type": "gp3", "encrypted": "true", "csi.storage.k8s.io/fstype": "ext4"},
                "reclaimPolicy": "Delete",
                "volumeBindingMode": "WaitForFirstConsumer",
                "allowVolumeExpansion": True,
            }
        ]

    @staticmethod
    def time_slicing_config(replicas: int) -> str:
        """NVIDIA device plugin config: each GPU is advertised as `replicas` `nvidia.com/gpu` (no memory isolation)."""
        return _yaml(
            {
                "version": "v1",
                "flags": {"migStrategy": "none"},
                "sharing": {
                    "timeSlicing": {
                        "renameByDefault": False,
                        "failRequestsGreaterThanOne": True,
                        "resources": [{"name": "nvidia.com/gpu", "replicas": replicas}],
                    }
                },
            }
        )

    @staticmethod
    def pushgateway_values(namespace: str) -> dict[str, Any]:
        """One replica, in memory: the drift job pushes a fresh score every run, so a restart loses at most one
        hour's value (the alert's `for` covers it) and needs no volume."""
        return {
            "fullnameOverride": PUSHGATEWAY_RELEASE,  # the Service name the drift job's default URL uses
            "service": {"port": PUSHGATEWAY_PORT},
            "persistentVolume": {"enabled": False},
            "serviceMonitor": {
                "enabled": True,
                "namespace": namespace,
                "additionalLabels": {"release": PROMETHEUS_RELEASE},
                "honorLabels": True,  # keep the pushed job/instance labels the drift rule selects on
            },
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}},
            "containerSecurityContext": {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            },
            "nodeSelector": SYSTEM_POOL,
        }

    def guardrail_manifests(self) -> list[dict[str, Any]]:
        """Every owned add-on namespace with its policies, and the serving namespace itself (Pod Security
        `restricted`, the same object `mlp render k8s` applies): its ExternalSecrets are created before the first
        release, and the release runner only patches it."""
        serving = serving_namespace(SERVING_NAMESPACE)
        serving["metadata"]["annotations"] = {"helm.sh/resource-policy": "keep"}
        namespaces = [m for ns in self.owned_namespaces for m in platform.namespace_manifests(ns)] + [serving]
        return namespaces + image_policy.manifests(**self.image_digest_namespaces())

    def image_digest_namespaces(self) -> dict[str, list[str]]:
        """Where an image without a digest is refused (the platform chose every image there) and where it is only
        reported (the add-ons' charts): modules/k8s/image_policy.py."""
        enforced = [SERVING_NAMESPACE]
        if image_policy.is_pinned(self.props.arc_runner_image):
            enforced.append(platform.RUNNER_NAMESPACE)
        owned = [ns.name for ns in self.owned_namespaces]
        return {"enforced": enforced, "audited": [n for n in owned if n not in enforced]}

    def access_manifests(self) -> list[dict[str, Any]]:
        """The runners' ServiceAccounts (IRSA), the release runner's Kubernetes rights, the platform secret store
        and every ExternalSecret of the serving and runner namespaces."""
        p = self.props
        return [
            runners.service_account(RELEASE_RUNNER, p.release_runner_role_arn),
            runners.service_account(DRIFT_RUNNER, p.drift_runner_role_arn),
            runners.service_account(PLATFORM_SECRETS, p.platform_secrets_role_arn),
            *runners.serving_rbac(runners.release_shapes()),
            *runners.retrain_rbac(),
            runners.platform_store(p.region),
            *runners.external_secrets(
                registry_key=p.mlflow_registry_secret_name,
                github_app_key=p.github_app_secret_name,
                webhook_key=p.webhook_secret_name,
                webhook_secret=WebhookProps.model_fields["secret_name"].default,
            ),
            # The RAG servers' copy of the Qdrant key (modules/k8s/rag.py reads it by secretKeyRef).
            qdrant.api_key_external_secret(
                p.qdrant_api_key_secret_name,
                SERVING_NAMESPACE,
                store=runners.PLATFORM_STORE,
                store_kind="ClusterSecretStore",
            ),
        ]

    def db_bootstrap_manifests(self) -> list[dict[str, Any]]:
        p = self.props
        return database_bootstrap.manifests(
            namespace=p.charts["mlflow"].namespace,
            region=p.region,
            image=registry_auth.MLFLOW_IMAGE,
            db_host=p.mlflow_db_host,
            master_secret_arn=p.mlflow_db_master_secret_arn,
            app_secret=MLFLOW_DB_SECRET,
            role_arn=p.db_bootstrap_role_arn,
            databases=[p.mlflow_db_name, registry_auth.AUTH_DATABASE],
        )

    def registry_auth_manifests(self) -> list[dict[str, Any]]:
        return registry_auth.auth_external_secrets(
            self.props.mlflow_registry_secret_name, self.props.charts["mlflow"].namespace
        )

    def mlflow_values(self) -> dict[str, Any]:
        p = self.props
        return {
            # The basic-auth app: anonymous requests refused, users from Secrets Manager (docs/security-registry.md)
            **registry_auth.auth_chart_values(db_host=p.mlflow_db_host, db_secret=MLFLOW_DB_SECRET),
            "serviceAccount": {
                "create": True,
                "name": MLFLOW.service_account,
                "annotations": {"eks.amazonaws.com/role-arn": p.mlflow_role_arn},
            },
            "backendStore": {
                "databaseMigration": True,
                "databaseConnectionCheck": True,
                "postgres": {
                    "enabled": True,
                    "host": p.mlflow_db_host,
                    "port": 5432,
                    "database": p.mlflow_db_name,
                    "driver": "psycopg2",
                },
                "existingDatabaseSecret": {
                    "name": MLFLOW_DB_SECRET,
                    "usernameKey": "username",
                    "passwordKey": "password",
                },
            },
            "artifactRoot": {
                "proxiedArtifactStorage": True,
                "s3": {"enabled": True, "bucket": p.artifact_bucket, "path": ARTIFACT_PREFIX.rstrip("/")},
            },
            "extraEnvVars": {
                "AWS_DEFAULT_REGION": p.region,
                "MLFLOW_S3_UPLOAD_EXTRA_ARGS": '{"ServerSideEncryption": "aws:kms"}',
                # Every connection to RDS verifies its certificate and host name (decision 0144).
                **database_bootstrap.tls_env(),
            },
            "initContainers": [database_bootstrap.fetch_ca_container(registry_auth.MLFLOW_IMAGE)],
            "extraVolumes": [{"name": database_bootstrap.CA_VOLUME, "emptyDir": {"sizeLimit": "1Mi"}}],
            "extraVolumeMounts": [
                {"name": database_bootstrap.CA_VOLUME, "mountPath": database_bootstrap.CA_DIR, "readOnly": True}
            ],
            "serviceMonitor": {"enabled": True, "labels": {"release": PROMETHEUS_RELEASE}},
            # Reachable inside the cluster only (decision 0143): the release and drift jobs run on in-cluster
            # runners, so nothing outside the VPC needs MLflow. No Ingress, no load balancer.
            "service": {"type": "ClusterIP", "port": MLFLOW_PORT},
            "ingress": {"enabled": False},
            "nodeSelector": SYSTEM_POOL,
        }

    def _release(
        self,
        key: str,
        values: dict[str, Any],
        *,
        release_name: str | None = None,
        construct_id: str | None = None,
        depends_on: list[Release] | None = None,
    ) -> Release:
        c = self.props.charts[key]
        owned = c.namespace in {ns.name for ns in self.owned_namespaces}
        release = Release(
            self,
            construct_id or key.replace("_", "-"),
            name=release_name or key.replace("_", "-"),
            repository=c.repository,
            chart=c.chart,
            version=c.version,
            namespace=c.namespace,
            # An owned namespace comes from platform-guardrails, labelled and default-deny before any pod starts.
            create_namespace=not owned,
            atomic=True,  # a failed upgrade rolls back to the previous release (runbooks/deploy-failed-halfway.md)
            cleanup_on_fail=True,
            timeout=900,
            # The chart's images by digest (versions.yaml), a second values document: Helm merges it over the first.
            values=[_yaml(v) for v in (values, c.image_values) if v] or None,
            depends_on=[*(depends_on or []), *([self.guardrails] if owned else [])],
        )
        self.releases[construct_id or key] = release
        return release

    def _local_chart(self, name: str, *, namespace: str, values: dict[str, Any], depends_on: list[Release]) -> Release:
        # Copied into cdktf.out next to the stack, so `terraform apply` finds it without the repo checkout layout.
        asset = TerraformAsset(self, f"{name}-chart", path=str(CHARTS_DIR / name), type=AssetType.DIRECTORY)
        release = Release(
            self,
            name,
            name=name,
            chart=asset.path,
            namespace=namespace,
            create_namespace=False,  # kube-system, or an owned namespace that platform-guardrails creates
            atomic=True,
            values=[_yaml(values)],
            depends_on=depends_on or None,
        )
        self.releases[name] = release
        return release
