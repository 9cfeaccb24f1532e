"""The key that signs registered model versions in the cluster's environments (docs/decisions/0150).

An asymmetric KMS key (`ECC_NIST_P256`, `SIGN_VERIFY`): its private half never leaves KMS, and `kms:Sign` is allowed
to the signer roles only, with an explicit deny for every other principal, so no IAM policy in the account can widen
it. The public half is not secret: the release renders it into the `mlp-artifact-signing` ConfigMap the model
servers and the drift job verify with. AWS does not rotate asymmetric keys: rotation is a new key, during which the
verifiers hold both public keys (runbooks/artifact-signing-key-rotation.md).
"""

from __future__ import annotations

from cdktn_provider_aws.kms_alias import KmsAlias
from cdktn_provider_aws.kms_key import KmsKey
from constructs import Construct
from pydantic import Field

from modules.common import Props, Statement, policy_json

KEY_SPEC = "ECC_NIST_P256"  # what KMS signs ECDSA P-256 with; the verifier accepts it (services/registry/manifest.py)
# Everything a key administrator does, without using the key: the account root delegates these to IAM.
ADMINISTRATION = [
    "kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*", "kms:Revoke*",
    "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
]  # fmt: skip


class ArtifactSigningKeyProps(Props):
    prefix: str
    account_id: str
    signer_role_arns: list[str] = Field(min_length=1, description="The only principals that may call kms:Sign")
    name: str = Field(default="artifact-signing", description="Alias `alias/<prefix>-<name>`; a rotation adds `-2`")


def key_policy(props: ArtifactSigningKeyProps) -> list[Statement]:
    root = f"arn:aws:iam::{props.account_id}:root"
    return [
        {"Sid": "AccountAdministersThroughIam", "Effect": "Allow", "Principal": {"AWS": root},
         "Action": ADMINISTRATION, "Resource": "*"},
        {"Sid": "SignersSign", "Effect": "Allow", "Principal": {"AWS": props.signer_role_arns},
         "Action": ["kms:Sign", "kms:GetPublicKey", "kms:DescribeKey"], "Resource": "*"},
        {"Sid": "NobodyElseSigns", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:Sign", "Resource": "*",
         "Condition": {"ArnNotEquals": {"aws:PrincipalArn": props.signer_role_arns}}},
    ]  # fmt: skip


class ArtifactSigningKey(Construct):
    def __init__(self, scope: Construct, id_: str, props: ArtifactSigningKeyProps) -> None:
        super().__init__(scope, id_)
        self.key = KmsKey(
            self,
            "key",
            description=f"{props.prefix}: signs registered model versions' artifact manifests",
            key_usage="SIGN_VERIFY",
            customer_master_key_spec=KEY_SPEC,
            deletion_window_in_days=30,
            policy=policy_json(key_policy(props)),
        )
        KmsAlias(self, "alias", name=f"alias/{props.prefix}-{props.name}", target_key_id=self.key.key_id)
        self.arn = self.key.arn
