"""Small helpers shared by the AWS constructs: IAM policy JSON, the account ID without a data source, KMS keys.

Why no `aws_caller_identity` / `aws_iam_policy_document` data sources: the stacks must `terraform plan` offline
(CI proves every stack with fake credentials), and a data source would call AWS. Policies are plain JSON strings
with Terraform interpolations inside; the account ID is read from the ARN of a resource the stack creates anyway.
"""

from __future__ import annotations

import json
from typing import Any

from cdktn import Fn
from cdktn_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktn_provider_aws.kms_alias import KmsAlias
from cdktn_provider_aws.kms_key import KmsKey
from constructs import Construct
from pydantic import BaseModel, ConfigDict

Statement = dict[str, Any]


class Props(BaseModel):
    """Base of every construct's props: unknown fields are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def policy_json(statements: list[Statement]) -> str:
    """An IAM policy document. Token strings inside (ARNs of other resources) resolve at synth time."""
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=False)


def account_id_from_arn(arn: str) -> str:
    """The account ID (5th field) of an ARN the stack already has, e.g. an IAM role it creates."""
    return Fn.element(Fn.split(":", arn), 4)


def partition_from_arn(arn: str) -> str:
    return Fn.element(Fn.split(":", arn), 1)


def kms_key(
    scope: Construct,
    id_: str,
    *,
    alias: str,
    description: str,
    account_id: str,
    region: str,
    log_group_arns: list[str] | None = None,
) -> KmsKey:
    """A customer-managed key with rotation and an explicit key policy.

    The account root statement delegates to IAM (roles still need a kms: grant in their own policy). When
    `log_group_arns` is given, CloudWatch Logs in `region` may use the key for exactly those log groups.
    """
    statements: list[Statement] = [
        {
            "Sid": "AccountAdministersThroughIam",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    ]
    if log_group_arns:
        statements.append(
            {
                "Sid": "CloudWatchLogsForTheseGroups",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{region}.amazonaws.com"},
                "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                "Resource": "*",
                "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_group_arns}},
            }
        )
    key = KmsKey(
        scope,
        id_,
        description=description,
        enable_key_rotation=True,
        deletion_window_in_days=30,
        policy=policy_json(statements),
    )
    KmsAlias(scope, f"{id_}-alias", name=f"alias/{alias}", target_key_id=key.key_id)
    return key


def encrypted_log_group(
    scope: Construct,
    *,
    key_id: str,
    group_id: str,
    group_name: str,
    alias: str,
    description: str,
    account_id: str,
    region: str,
    retention_in_days: int,
) -> tuple[KmsKey, CloudwatchLogGroup]:
    """A CloudWatch log group created before AWS writes to it, so that it has a retention and its own KMS key
    (whose policy lets CloudWatch Logs use it for exactly this group)."""
    group_arn = f"arn:aws:logs:{region}:{account_id}:log-group:{group_name}"
    key = kms_key(
        scope,
        key_id,
        alias=alias,
        description=description,
        account_id=account_id,
        region=region,
        log_group_arns=[group_arn, f"{group_arn}:*"],
    )
    group = CloudwatchLogGroup(
        scope, group_id, name=group_name, retention_in_days=retention_in_days, kms_key_id=key.arn
    )
    return key, group
