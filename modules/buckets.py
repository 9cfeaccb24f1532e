"""S3 buckets: versioned, SSE-KMS with a bucket key, public access blocked, owner-enforced, TLS-only, lifecycle."""

from __future__ import annotations

from cdktn_provider_aws.s3_bucket import S3Bucket
from cdktn_provider_aws.s3_bucket_lifecycle_configuration import (
    S3BucketLifecycleConfiguration,
    S3BucketLifecycleConfigurationRule,
    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload,
    S3BucketLifecycleConfigurationRuleExpiration,
    S3BucketLifecycleConfigurationRuleFilter,
    S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration,
    S3BucketLifecycleConfigurationRuleTransition,
)
from cdktn_provider_aws.s3_bucket_object_lock_configuration import (
    S3BucketObjectLockConfigurationA,
    S3BucketObjectLockConfigurationRuleA,
    S3BucketObjectLockConfigurationRuleDefaultRetentionA,
)
from cdktn_provider_aws.s3_bucket_ownership_controls import S3BucketOwnershipControls, S3BucketOwnershipControlsRule
from cdktn_provider_aws.s3_bucket_policy import S3BucketPolicy
from cdktn_provider_aws.s3_bucket_public_access_block import S3BucketPublicAccessBlock
from cdktn_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA,
    S3BucketServerSideEncryptionConfigurationRuleA,
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA,
)
from cdktn_provider_aws.s3_bucket_versioning import S3BucketVersioningA, S3BucketVersioningVersioningConfiguration
from constructs import Construct
from pydantic import Field

from modules.common import Props, policy_json


class BucketProps(Props):
    bucket_name: str = Field(min_length=3, description="May contain a token (the account ID suffix)")
    kms_key_arn: str
    noncurrent_expire_days: int = Field(ge=1)
    transition_ia_days: int | None = Field(default=None, ge=30)
    expire_days: int | None = Field(default=None, ge=1)
    force_destroy: bool = False
    object_lock_days: int | None = Field(
        default=None,
        ge=1,
        description="S3 Object Lock, COMPLIANCE mode, default retention in days: no object version can be deleted "
        "or overwritten in place by anyone (root included) until it expires; an overwrite only adds a newer version",
    )
    write_once_prefix: str | None = Field(
        default=None, description="Key prefix (e.g. `mlflow/`) whose objects only `writer_role_arns` may create"
    )
    writer_role_arns: list[str] = Field(
        default_factory=list, description="The only principals that may put objects under `write_once_prefix`"
    )


class Bucket(Construct):
    def __init__(self, scope: Construct, id_: str, props: BucketProps) -> None:
        super().__init__(scope, id_)
        self.bucket = S3Bucket(
            self,
            "bucket",
            bucket=props.bucket_name,
            force_destroy=props.force_destroy,
            object_lock_enabled=True if props.object_lock_days else None,
        )
        b = self.bucket.id
        S3BucketPublicAccessBlock(
            self,
            "public-access-block",
            bucket=b,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
        )
        S3BucketOwnershipControls(
            self, "ownership", bucket=b, rule=S3BucketOwnershipControlsRule(object_ownership="BucketOwnerEnforced")
        )
        S3BucketVersioningA(
            self,
            "versioning",
            bucket=b,
            versioning_configuration=S3BucketVersioningVersioningConfiguration(status="Enabled"),
        )
        S3BucketServerSideEncryptionConfigurationA(
            self,
            "sse",
            bucket=b,
            rule=[
                S3BucketServerSideEncryptionConfigurationRuleA(
                    apply_server_side_encryption_by_default=S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                        sse_algorithm="aws:kms", kms_master_key_id=props.kms_key_arn
                    ),
                    bucket_key_enabled=True,  # one KMS call per bucket key, not per object: cheaper
                )
            ],
        )
        if props.object_lock_days:
            S3BucketObjectLockConfigurationA(
                self,
                "object-lock",
                bucket=b,
                rule=S3BucketObjectLockConfigurationRuleA(
                    default_retention=S3BucketObjectLockConfigurationRuleDefaultRetentionA(
                        mode="COMPLIANCE", days=props.object_lock_days
                    )
                ),
            )
        statements: list[dict[str, object]] = [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [self.bucket.arn, f"{self.bucket.arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ]
        if props.write_once_prefix:
            if not props.writer_role_arns:
                raise ValueError(f"{props.bucket_name}: write_once_prefix needs writer_role_arns (the only writers)")
            prefix = f"{self.bucket.arn}/{props.write_once_prefix}*"
            statements += [
                {
                    # Only the registry's own server writes model artifacts; any other role, however broad its IAM
                    # policy (an admin's, CI's), is refused by the bucket itself.
                    "Sid": "WriteOnceOnlyTheRegistryWrites",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": ["s3:PutObject", "s3:PutObjectAcl"],
                    "Resource": prefix,
                    "Condition": {"ArnNotEquals": {"aws:PrincipalArn": props.writer_role_arns}},
                },
                {
                    # Nobody deletes a stored artifact or shortens its lock: a registered version stays what it was.
                    "Sid": "WriteOnceNoDeleteNoUnlock",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": [
                        "s3:DeleteObject",
                        "s3:DeleteObjectVersion",
                        "s3:PutObjectRetention",
                        "s3:PutObjectLegalHold",
                        "s3:BypassGovernanceRetention",
                    ],
                    "Resource": prefix,
                },
            ]
        S3BucketPolicy(self, "tls-only", bucket=b, policy=policy_json(statements))
        rule = S3BucketLifecycleConfigurationRule(
            id="retention",
            status="Enabled",
            filter=[S3BucketLifecycleConfigurationRuleFilter(prefix="")],
            abort_incomplete_multipart_upload=[
                S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(days_after_initiation=7)
            ],
            noncurrent_version_expiration=[
                S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(
                    noncurrent_days=props.noncurrent_expire_days
                )
            ],
            transition=[
                S3BucketLifecycleConfigurationRuleTransition(days=props.transition_ia_days, storage_class="STANDARD_IA")
            ]
            if props.transition_ia_days
            else None,
            expiration=[S3BucketLifecycleConfigurationRuleExpiration(days=props.expire_days)]
            if props.expire_days
            else None,
        )
        S3BucketLifecycleConfiguration(self, "lifecycle", bucket=b, rule=[rule])
        self.arn = self.bucket.arn
        self.name = self.bucket.bucket
