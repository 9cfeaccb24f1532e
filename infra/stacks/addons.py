"""Add-ons layer: the platform's Helm releases on the cluster."""

from __future__ import annotations

from cdktn import Fn
from cdktn_provider_helm.provider import HelmProvider, HelmProviderKubernetes, HelmProviderKubernetesExec
from constructs import Construct

from infra.config import EnvConfig, load_versions
from infra.stacks.base import LayerStack
from infra.stacks.cluster import ClusterOutputs
from infra.stacks.data import DataOutputs
from modules.addons import SYSTEM_POOL, AddonsProps, ChartProps, PlatformAddons
from modules.qdrant import QdrantProps


class AddonsStack(LayerStack):
    layer = "addons"

    def __init__(self, scope: Construct, env: EnvConfig, cluster: ClusterOutputs, data: DataOutputs) -> None:
        super().__init__(scope, env, aws=False)
        # A short-lived token from the deploy role's own credentials (no kubeconfig file, no stored token).
        HelmProvider(
            self,
            "helm",
            kubernetes=HelmProviderKubernetes(
                host=cluster.endpoint,
                cluster_ca_certificate=Fn.base64decode(cluster.certificate_authority),
                exec=HelmProviderKubernetesExec(
                    api_version="client.authentication.k8s.io/v1beta1",
                    command="aws",
                    args=["eks", "get-token", "--cluster-name", env.cluster_name, "--region", env.region],
                ),
            ),
        )
        versions = load_versions()
        self.addons = PlatformAddons(
            self,
            "platform",
            AddonsProps(
                cluster_name=env.cluster_name,
                region=env.region,
                charts={
                    k: ChartProps(
                        repository=v.repository,
                        chart=v.chart,
                        version=v.version,
                        namespace=v.namespace,
                        image_values=v.image_values(),
                    )
                    for k, v in versions.charts.items()
                },
                argo_rollouts_gateway_plugin=versions.argo_rollouts_gateway_plugin,
                argo_rollouts_gateway_plugin_sha256=versions.argo_rollouts_gateway_plugin_sha256,
                cluster_autoscaler_role_arn=cluster.cluster_autoscaler_role_arn,
                cert_manager_role_arn=cluster.cert_manager_role_arn,
                hosted_zone_id=env.edge.hosted_zone_id,
                dns_zone=env.edge.dns_zone,
                acme_email=env.edge.acme_email,
                mlflow_role_arn=data.mlflow_role_arn,
                mlflow_db_host=data.db_host,
                mlflow_db_name=data.db_name,
                mlflow_db_secret_arn=data.db_app_secret_arn,
                mlflow_db_master_secret_arn=data.db_secret_arn,
                db_bootstrap_role_arn=data.db_bootstrap_role_arn,
                mlflow_registry_secret_name=data.registry_secret_name,
                alert_receivers_secret_name=data.alert_receivers_secret_name,
                alert_secrets_role_arn=data.alert_secrets_role_arn,
                artifact_bucket=data.artifact_bucket,
                gpu_time_slicing_replicas=env.cluster.gpu_time_slicing_replicas,
                vpc_cidr=env.network.cidr,
                environment=env.name,
                github_repository=env.github.repository,
                arc_runner_image=versions.arc_runner_image,
                release_runner_role_arn=data.release_runner_role_arn,
                drift_runner_role_arn=data.drift_runner_role_arn,
                platform_secrets_role_arn=data.platform_secrets_role_arn,
                github_app_secret_name=data.github_app_secret_name,
                webhook_secret_name=data.webhook_secret_name,
                qdrant=QdrantProps(
                    region=env.region,
                    snapshot_bucket=data.qdrant_snapshot_bucket,
                    role_arn=data.qdrant_role_arn,
                    volume_gib=env.qdrant.volume_gib,
                    cpu_request=env.qdrant.cpu_request,
                    cpu_limit=env.qdrant.cpu_limit,
                    memory_request=env.qdrant.memory_request,
                    memory_limit=env.qdrant.memory_limit,
                    node_selector=SYSTEM_POOL,
                ),
                qdrant_api_key_secret_name=data.qdrant_api_key_secret_name,
                qdrant_secrets_role_arn=data.qdrant_secrets_role_arn,
            ),
        )
