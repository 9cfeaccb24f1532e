"""Core EKS add-ons: vpc-cni (own IRSA role, network-policy enforcement on), coredns, kube-proxy,
aws-ebs-csi-driver (own IRSA role) and, optionally, eks-pod-identity-agent. Versions come from
`infra/config/versions.yaml` (null = EKS default for the cluster's minor version)."""

from __future__ import annotations

import json

from cdktn_provider_aws.eks_addon import EksAddon
from constructs import Construct
from pydantic import Field

from modules.common import Props
from modules.irsa import IrsaProps, IrsaRole

CORE_ADDONS = ("vpc-cni", "coredns", "kube-proxy", "aws-ebs-csi-driver")
POD_IDENTITY_ADDON = "eks-pod-identity-agent"
# Add-ons whose pods run on nodes: they must wait for the node groups or they stay degraded.
NEEDS_NODES = ("coredns", "aws-ebs-csi-driver")
# The VPC CNI's network-policy agent enforces NetworkPolicy objects (eBPF on each node); without it they are inert.
CONFIGURATION = {"vpc-cni": {"enableNetworkPolicy": "true"}}


class EksAddonsProps(Props):
    cluster_name: str
    oidc_provider_arn: str
    oidc_issuer_host: str
    versions: dict[str, str | None]
    enable_pod_identity_agent: bool = False
    node_group_ids: list[str] = Field(default_factory=list, description="Node groups the node-bound add-ons await")


class EksAddons(Construct):
    def __init__(self, scope: Construct, id_: str, props: EksAddonsProps, depends_on_nodes: list[object]) -> None:
        super().__init__(scope, id_)
        c = props.cluster_name
        roles = {
            "vpc-cni": IrsaRole(
                self,
                "vpc-cni-irsa",
                IrsaProps(
                    role_name=f"{c}-vpc-cni",
                    oidc_provider_arn=props.oidc_provider_arn,
                    oidc_issuer_host=props.oidc_issuer_host,
                    namespace="kube-system",
                    service_account="aws-node",
                    managed_policy_arns=["arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"],
                ),
            ),
            "aws-ebs-csi-driver": IrsaRole(
                self,
                "ebs-csi-irsa",
                IrsaProps(
                    role_name=f"{c}-ebs-csi",
                    oidc_provider_arn=props.oidc_provider_arn,
                    oidc_issuer_host=props.oidc_issuer_host,
                    namespace="kube-system",
                    service_account="ebs-csi-controller-sa",
                    managed_policy_arns=["arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"],
                ),
            ),
        }
        names = list(CORE_ADDONS) + ([POD_IDENTITY_ADDON] if props.enable_pod_identity_agent else [])
        self.addons: dict[str, EksAddon] = {}
        for name in names:
            role = roles.get(name)
            self.addons[name] = EksAddon(
                self,
                name,
                cluster_name=c,
                addon_name=name,
                addon_version=props.versions.get(name),
                service_account_role_arn=role.arn if role else None,
                configuration_values=json.dumps(CONFIGURATION[name]) if name in CONFIGURATION else None,
                resolve_conflicts_on_create="OVERWRITE",
                resolve_conflicts_on_update="OVERWRITE",
                depends_on=depends_on_nodes if name in NEEDS_NODES else None,  # type: ignore[arg-type]
            )
