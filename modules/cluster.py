"""The EKS control plane: pinned version, KMS-encrypted secrets, every control-plane log, private endpoint plus a
public endpoint restricted to configured CIDRs, API-mode access entries, and the IRSA OIDC provider."""

from __future__ import annotations

from cdktn import Fn, TerraformResourceLifecycle
from cdktn_provider_aws.eks_access_entry import EksAccessEntry
from cdktn_provider_aws.eks_access_policy_association import (
    EksAccessPolicyAssociation,
    EksAccessPolicyAssociationAccessScope,
)
from cdktn_provider_aws.eks_cluster import (
    EksCluster,
    EksClusterAccessConfig,
    EksClusterEncryptionConfig,
    EksClusterEncryptionConfigProvider,
    EksClusterUpgradePolicy,
    EksClusterVpcConfig,
)
from cdktn_provider_aws.iam_openid_connect_provider import IamOpenidConnectProvider
from cdktn_provider_aws.iam_role import IamRole
from cdktn_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from constructs import Construct
from pydantic import Field

from modules.common import Props, account_id_from_arn, encrypted_log_group, policy_json

CONTROL_PLANE_LOGS = ("api", "audit", "authenticator", "controllerManager", "scheduler")
ACCESS_POLICY = "arn:aws:eks::aws:cluster-access-policy/"
CLUSTER_ADMIN = ACCESS_POLICY + "AmazonEKSClusterAdminPolicy"
NAMESPACE_EDIT = ACCESS_POLICY + "AmazonEKSEditPolicy"


class ClusterProps(Props):
    name: str
    region: str
    kubernetes_version: str = Field(pattern=r"^1\.\d{2}$")
    private_subnet_ids: list[str] = Field(min_length=2)
    public_access_cidrs: list[str] = Field(min_length=1)
    log_retention_days: int
    admin_principal_arns: list[str] = Field(
        min_length=1, description="Cluster admins: the CI deploy role (Helm add-ons), then named operator roles"
    )
    namespace_editors: dict[str, list[str]] = Field(
        default_factory=dict, description="Namespace -> principals that may edit only that namespace (release role)"
    )


class Cluster(Construct):
    def __init__(self, scope: Construct, id_: str, props: ClusterProps) -> None:
        super().__init__(scope, id_)
        if "0.0.0.0/0" in props.public_access_cidrs:
            raise ValueError("the public API endpoint must be restricted: 0.0.0.0/0 is not allowed")
        n = props.name
        self.role = IamRole(
            self,
            "cluster-role",
            name=f"{n}-eks-cluster",
            assume_role_policy=policy_json(
                [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "eks.amazonaws.com"},
                        "Action": ["sts:AssumeRole", "sts:TagSession"],
                    }
                ]
            ),
        )
        IamRolePolicyAttachment(
            self,
            "cluster-policy",
            role=self.role.name,
            policy_arn="arn:aws:iam::aws:policy/AmazonEKSClusterPolicy",
        )
        self.account_id = account_id_from_arn(self.role.arn)
        # EKS writes control-plane logs to this exact group name; creating it first sets retention and the key.
        self.key, self.log_group = encrypted_log_group(
            self,
            key_id="cluster-key",
            group_id="control-plane-logs",
            group_name=f"/aws/eks/{n}/cluster",
            alias=f"{n}-eks",
            description=f"{n}: EKS secrets envelope encryption and control-plane logs",
            account_id=self.account_id,
            region=props.region,
            retention_in_days=props.log_retention_days,
        )
        self.cluster = EksCluster(
            self,
            "cluster",
            name=n,
            version=props.kubernetes_version,
            role_arn=self.role.arn,
            vpc_config=EksClusterVpcConfig(
                subnet_ids=props.private_subnet_ids,
                endpoint_private_access=True,
                endpoint_public_access=True,
                public_access_cidrs=props.public_access_cidrs,
            ),
            encryption_config=EksClusterEncryptionConfig(
                resources=["secrets"], provider=EksClusterEncryptionConfigProvider(key_arn=self.key.arn)
            ),
            enabled_cluster_log_types=list(CONTROL_PLANE_LOGS),
            # Access entries only (no aws-auth ConfigMap), and no hidden permanent admin: whoever creates the cluster
            # gets nothing by that; every principal is an explicit access entry below (decision 0132).
            access_config=EksClusterAccessConfig(
                authentication_mode="API", bootstrap_cluster_creator_admin_permissions=False
            ),
            # Standard support only: extended support costs 6x the control-plane price (docs/cluster.md).
            upgrade_policy=EksClusterUpgradePolicy(support_type="STANDARD"),
            depends_on=[self.log_group],
            # The flag only acts at creation and changing it replaces the cluster: an existing cluster keeps its
            # value, and its creator entry is removed by hand (docs/upgrade-security-by-default.md).
            lifecycle=TerraformResourceLifecycle(
                ignore_changes=["access_config[0].bootstrap_cluster_creator_admin_permissions"]
            ),
        )
        self.cluster_security_group_id = self.cluster.vpc_config.cluster_security_group_id
        issuer = self.cluster.identity.get(0).oidc.get(0).issuer
        self.oidc_provider = IamOpenidConnectProvider(
            self, "oidc", url=issuer, client_id_list=["sts.amazonaws.com"], tags={"Name": f"{n}-irsa"}
        )
        # Trust-policy condition keys use the issuer without its scheme.
        self.oidc_issuer_host = Fn.replace(issuer, "https://", "")
        self.access_entries: list[EksAccessEntry] = []
        for i, arn in enumerate(props.admin_principal_arns):
            self._access(f"admin-{i}", arn, CLUSTER_ADMIN, EksAccessPolicyAssociationAccessScope(type="cluster"))
        for namespace, arns in sorted(props.namespace_editors.items()):
            in_namespace = EksAccessPolicyAssociationAccessScope(type="namespace", namespaces=[namespace])
            for i, arn in enumerate(arns):
                self._access(f"edit-{namespace}-{i}", arn, NAMESPACE_EDIT, in_namespace)

    def _access(self, id_: str, principal: str, policy: str, scope: EksAccessPolicyAssociationAccessScope) -> None:
        entry = EksAccessEntry(self, f"{id_}-entry", cluster_name=self.cluster.name, principal_arn=principal)
        EksAccessPolicyAssociation(
            self,
            f"{id_}-policy",
            cluster_name=self.cluster.name,
            principal_arn=entry.principal_arn,
            policy_arn=policy,
            access_scope=scope,
        )
        self.access_entries.append(entry)
