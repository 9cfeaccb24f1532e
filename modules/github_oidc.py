"""GitHub Actions' OIDC identity in AWS: the provider and one role per job kind, each trusting exactly one subject.

- `<prefix>-github-deploy` trusts `repo:<owner>/<name>:environment:<env>` (the deploy job; reviewers gate staging
  and prod): manages the platform's AWS resources, its own IAM roles (`<prefix>-*` only) and the Terraform state.
- `<prefix>-github-plan` trusts `repo:<owner>/<name>:pull_request`: reads what a plan reads and takes the state
  lock; an explicit deny keeps it from any secret value and any KMS decrypt.
- `<prefix>-github-release` trusts `repo:<owner>/<name>:environment:<env>` (model-release.yml): pushes to the
  platform's ECR repositories and describes the cluster; in Kubernetes it edits the serving namespace only (access
  entry in modules/cluster.py).

`aud` is always `sts.amazonaws.com`, compared with StringEquals (never StringLike, never a wildcard), so a fork,
another repository, a branch outside the environment or a pull request cannot assume the deploy role
(decision 0130). The repository and environment names come from infra/config/<env>.yaml.
"""

from __future__ import annotations

from cdktn_provider_aws.iam_openid_connect_provider import IamOpenidConnectProvider
from cdktn_provider_aws.iam_role import IamRole
from cdktn_provider_aws.iam_role_policy import IamRolePolicy
from cdktn_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from constructs import Construct
from pydantic import Field

from modules.common import Props, Statement, policy_json

ISSUER = "token.actions.githubusercontent.com"
AUDIENCE = "sts.amazonaws.com"
REPOSITORY = r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"


def environment_subject(repository: str, environment: str) -> str:
    return f"repo:{repository}:environment:{environment}"


def pull_request_subject(repository: str) -> str:
    return f"repo:{repository}:pull_request"


def trust_policy(provider_arn: str, subject: str) -> str:
    if "*" in subject or "?" in subject:
        raise ValueError(f"OIDC subject {subject!r}: exact subjects only, no wildcards")
    condition = {"StringEquals": {f"{ISSUER}:sub": subject, f"{ISSUER}:aud": AUDIENCE}}
    return policy_json(
        [
            {
                "Sid": "GithubActionsExactSubject",
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": condition,
            }
        ]
    )


class GithubOidcProps(Props):
    prefix: str = Field(description="Resource name prefix of the environment, e.g. mlp-dev")
    repository: str = Field(pattern=REPOSITORY, description="owner/name of the GitHub repository")
    environment: str = Field(description="The GitHub environment whose jobs deploy and release this environment")
    account_id: str
    region: str
    state_bucket: str
    state_region: str
    state_key_prefix: str
    create_provider: bool = Field(
        default=True, description="False when another environment in the same account already created it"
    )


class GithubOidc(Construct):
    def __init__(self, scope: Construct, id_: str, props: GithubOidcProps) -> None:
        super().__init__(scope, id_)
        p = props
        self._prefix = p.prefix
        provider_arn = f"arn:aws:iam::{p.account_id}:oidc-provider/{ISSUER}"
        if p.create_provider:
            # IAM validates GitHub's certificate against its own trust store: no thumbprint to pin or rotate.
            provider = IamOpenidConnectProvider(
                self, "provider", url=f"https://{ISSUER}", client_id_list=[AUDIENCE], tags={"Name": "github-actions"}
            )
            provider_arn = provider.arn
        self.provider_arn = provider_arn
        state = f"arn:aws:s3:::{p.state_bucket}"
        state_objects = f"{state}/{p.state_key_prefix}/*"
        deploy_subject = environment_subject(p.repository, p.environment)
        self.deploy = self._role(
            "deploy",
            deploy_subject,
            managed=["arn:aws:iam::aws:policy/PowerUserAccess"],
            statements=[
                {
                    # PowerUserAccess excludes IAM: only the platform's own roles, policies and instance profiles.
                    "Sid": "OwnIamOnly",
                    "Effect": "Allow",
                    "Action": ["iam:*"],
                    "Resource": [
                        f"arn:aws:iam::{p.account_id}:role/{p.prefix}-*",
                        f"arn:aws:iam::{p.account_id}:policy/{p.prefix}-*",
                        f"arn:aws:iam::{p.account_id}:instance-profile/{p.prefix}-*",
                        f"arn:aws:iam::{p.account_id}:oidc-provider/*",
                    ],
                },
                {"Sid": "StateList", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": state},
                {
                    "Sid": "StateReadWrite",
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                    "Resource": state_objects,
                },
            ],
        )
        self.plan = self._role(
            "plan",
            pull_request_subject(p.repository),
            managed=["arn:aws:iam::aws:policy/ReadOnlyAccess"],
            statements=[
                {"Sid": "StateList", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": state},
                {"Sid": "StateRead", "Effect": "Allow", "Action": "s3:GetObject", "Resource": state_objects},
                {
                    # `plan` takes the S3 native lock: it writes and removes `<key>.tflock`, never the state itself.
                    "Sid": "StateLock",
                    "Effect": "Allow",
                    "Action": ["s3:PutObject", "s3:DeleteObject"],
                    "Resource": f"{state}/{p.state_key_prefix}/*.tflock",
                },
                {
                    # The state bucket is SSE-KMS: reading state decrypts through S3, for that bucket only.
                    "Sid": "StateDecryptThroughS3",
                    "Effect": "Allow",
                    "Action": "kms:Decrypt",
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {"kms:ViaService": f"s3.{p.state_region}.amazonaws.com"},
                        "StringLike": {"kms:EncryptionContext:aws:s3:arn": [state, f"{state}/*"]},
                    },
                },
                {
                    # Explicit denies win over any allow (ReadOnlyAccess, a policy added later): code from a pull
                    # request never sees a secret value, and decrypts nothing but the Terraform state (no data key:
                    # artifacts, inference logs, database snapshots stay ciphertext to it).
                    "Sid": "NeverSecrets",
                    "Effect": "Deny",
                    "Action": ["secretsmanager:GetSecretValue", "ssm:GetParameter*"],
                    "Resource": "*",
                },
                {
                    "Sid": "NeverDecryptOutsideTheState",
                    "Effect": "Deny",
                    "Action": "kms:Decrypt",
                    "Resource": "*",
                    "Condition": {"StringNotLike": {"kms:EncryptionContext:aws:s3:arn": [state, f"{state}/*"]}},
                },
            ],
        )
        self.release = self._role(
            "release",
            deploy_subject,
            managed=[],
            statements=[
                {"Sid": "EcrLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
                {
                    "Sid": "PushPlatformImages",
                    "Effect": "Allow",
                    "Action": [
                        "ecr:BatchCheckLayerAvailability",
                        "ecr:BatchGetImage",
                        "ecr:CompleteLayerUpload",
                        "ecr:DescribeImages",
                        "ecr:InitiateLayerUpload",
                        "ecr:PutImage",
                        "ecr:UploadLayerPart",
                    ],
                    "Resource": f"arn:aws:ecr:{p.region}:{p.account_id}:repository/{p.prefix}/*",
                },
                {
                    "Sid": "Kubeconfig",
                    "Effect": "Allow",
                    "Action": "eks:DescribeCluster",
                    "Resource": f"arn:aws:eks:{p.region}:{p.account_id}:cluster/{p.prefix}",
                },
            ],
        )

    def _role(self, kind: str, subject: str, *, managed: list[str], statements: list[Statement]) -> IamRole:
        role = IamRole(
            self,
            kind,
            name=f"{self._prefix}-github-{kind}",
            assume_role_policy=trust_policy(self.provider_arn, subject),
            max_session_duration=3600,
            tags={"github-oidc-subject": subject},
        )
        for i, arn in enumerate(managed):
            IamRolePolicyAttachment(self, f"{kind}-managed-{i}", role=role.name, policy_arn=arn)
        if statements:
            IamRolePolicy(self, f"{kind}-policy", role=role.id, name="github-actions", policy=policy_json(statements))
        return role
