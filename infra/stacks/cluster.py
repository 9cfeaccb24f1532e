"""Cluster layer: EKS, node groups, core add-ons, IRSA provider and the node autoscaler's role."""

from __future__ import annotations

from dataclasses import dataclass

from cdktn import TerraformOutput
from constructs import Construct

from core.promql import SERVING_NAMESPACE
from infra.config import EnvConfig, NodeGroupConfig, load_versions
from infra.stacks.base import LayerStack
from infra.stacks.network import NetworkOutputs
from modules import cert_manager
from modules.cluster import Cluster, ClusterProps
from modules.eks_addons import EksAddons, EksAddonsProps
from modules.irsa import IrsaProps, IrsaRole
from modules.node_autoscaling import NAMESPACE, SERVICE_ACCOUNT, cluster_autoscaler_statements
from modules.node_groups import NodeGroupProps, NodeGroups, NodeGroupsProps, TaintProps

NODE_GROUPS = ("system", "cpu_inference", "gpu_inference")


@dataclass(frozen=True)
class ClusterOutputs:
    cluster_name: str
    endpoint: str
    certificate_authority: str
    cluster_security_group_id: str
    oidc_provider_arn: str
    oidc_issuer_host: str
    cluster_autoscaler_role_arn: str
    cert_manager_role_arn: str


def node_group_props(name: str, g: NodeGroupConfig) -> NodeGroupProps:
    return NodeGroupProps(
        name=name.replace("_", "-"),
        instance_types=g.instance_types,
        ami_type=g.ami_type,
        capacity_type=g.capacity_type,
        min_size=g.min_size,
        desired_size=g.desired_size,
        max_size=g.max_size,
        disk_gib=g.disk_gib,
        labels=g.labels,
        taints=[TaintProps(key=t.key, value=t.value, effect=t.effect) for t in g.taints],
    )


class ClusterStack(LayerStack):
    layer = "cluster"

    def __init__(self, scope: Construct, env: EnvConfig, network: NetworkOutputs) -> None:
        super().__init__(scope, env)
        cfg = env.cluster
        self.cluster = Cluster(
            self,
            "eks",
            ClusterProps(
                name=env.cluster_name,
                region=env.region,
                kubernetes_version=cfg.kubernetes_version,
                private_subnet_ids=network.private_subnet_ids,
                public_access_cidrs=cfg.public_access_cidrs,
                log_retention_days=cfg.log_retention_days,
                admin_principal_arns=[network.deploy_role_arn, *cfg.admin_role_arns],
                namespace_editors={SERVING_NAMESPACE: [network.release_role_arn]},
            ),
        )
        eks = self.cluster.cluster
        self.node_groups = NodeGroups(
            self,
            "nodes",
            NodeGroupsProps(
                # The cluster's name attribute (not the string) so node groups wait for the control plane.
                cluster_name=eks.name,
                name_prefix=env.cluster_name,
                kubernetes_version=cfg.kubernetes_version,
                subnet_ids=network.private_subnet_ids,
                groups=[node_group_props(name, getattr(cfg, name)) for name in NODE_GROUPS],
            ),
        )
        EksAddons(
            self,
            "core-addons",
            EksAddonsProps(
                cluster_name=eks.name,
                oidc_provider_arn=self.cluster.oidc_provider.arn,
                oidc_issuer_host=self.cluster.oidc_issuer_host,
                versions=load_versions().eks_addons,
                enable_pod_identity_agent=cfg.enable_pod_identity_agent,
            ),
            depends_on_nodes=list(self.node_groups.groups.values()),
        )
        autoscaler = IrsaRole(
            self,
            "cluster-autoscaler-irsa",
            IrsaProps(
                role_name=f"{env.prefix}-cluster-autoscaler",
                oidc_provider_arn=self.cluster.oidc_provider.arn,
                oidc_issuer_host=self.cluster.oidc_issuer_host,
                namespace=NAMESPACE,
                service_account=SERVICE_ACCOUNT,
                statements=cluster_autoscaler_statements(env.cluster_name, env.region, self.cluster.account_id),
            ),
        )
        # cert-manager answers ACME DNS-01 challenges in the environment's hosted zone only (decision 0135).
        dns01_role = IrsaRole(
            self,
            "cert-manager-irsa",
            IrsaProps(
                role_name=f"{env.prefix}-cert-manager",
                oidc_provider_arn=self.cluster.oidc_provider.arn,
                oidc_issuer_host=self.cluster.oidc_issuer_host,
                namespace=cert_manager.NAMESPACE,
                service_account=cert_manager.SERVICE_ACCOUNT,
                statements=cert_manager.dns01_statements(env.edge.hosted_zone_id),
            ),
        )
        TerraformOutput(self, "cluster_name", value=eks.name)
        TerraformOutput(self, "cluster_endpoint", value=eks.endpoint)
        self.outputs = ClusterOutputs(
            cluster_name=eks.name,
            endpoint=eks.endpoint,
            certificate_authority=eks.certificate_authority.get(0).data,
            cluster_security_group_id=self.cluster.cluster_security_group_id,
            oidc_provider_arn=self.cluster.oidc_provider.arn,
            oidc_issuer_host=self.cluster.oidc_issuer_host,
            cluster_autoscaler_role_arn=autoscaler.arn,
            cert_manager_role_arn=dns01_role.arn,
        )
