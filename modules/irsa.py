"""IAM Roles for Service Accounts: a role only one Kubernetes service account (namespace + name) can assume
through the cluster's OIDC provider, with an inline policy of exactly the statements its workload needs."""

from __future__ import annotations

from cdktn_provider_aws.iam_role import IamRole
from cdktn_provider_aws.iam_role_policy import IamRolePolicy
from cdktn_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from constructs import Construct
from pydantic import Field

from modules.common import Props, Statement, policy_json


class IrsaProps(Props):
    role_name: str
    oidc_provider_arn: str
    oidc_issuer_host: str = Field(description="Issuer URL without https://")
    namespace: str
    service_account: str
    statements: list[Statement] = Field(default_factory=list)
    managed_policy_arns: list[str] = Field(default_factory=list, description="Only AWS-managed, purpose-built ones")


def trust_policy(oidc_provider_arn: str, issuer_host: str, namespace: str, service_account: str) -> str:
    return policy_json(
        [
            {
                "Effect": "Allow",
                "Principal": {"Federated": oidc_provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{issuer_host}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                        f"{issuer_host}:aud": "sts.amazonaws.com",
                    }
                },
            }
        ]
    )


class IrsaRole(Construct):
    def __init__(self, scope: Construct, id_: str, props: IrsaProps) -> None:
        super().__init__(scope, id_)
        if not props.statements and not props.managed_policy_arns:
            raise ValueError(f"IRSA role {props.role_name} has no permissions: give it statements or a policy")
        self.role = IamRole(
            self,
            "role",
            name=props.role_name,
            assume_role_policy=trust_policy(
                props.oidc_provider_arn, props.oidc_issuer_host, props.namespace, props.service_account
            ),
            tags={"k8s-service-account": f"{props.namespace}/{props.service_account}"},
        )
        if props.statements:
            IamRolePolicy(self, "policy", role=self.role.id, name="workload", policy=policy_json(props.statements))
        for i, arn in enumerate(props.managed_policy_arns):
            IamRolePolicyAttachment(self, f"managed-{i}", role=self.role.name, policy_arn=arn)
        self.arn = self.role.arn
