"""ECR repositories for the platform's images: immutable tags, scan on push, KMS encryption, untagged expiry."""

from __future__ import annotations

import json

from cdktn_provider_aws.ecr_lifecycle_policy import EcrLifecyclePolicy
from cdktn_provider_aws.ecr_repository import (
    EcrRepository,
    EcrRepositoryEncryptionConfiguration,
    EcrRepositoryImageScanningConfiguration,
)
from constructs import Construct
from pydantic import Field

from modules.common import Props


class RegistryProps(Props):
    prefix: str
    repositories: list[str] = Field(min_length=1)
    kms_key_arn: str
    keep_untagged_days: int = Field(ge=1)


class Registry(Construct):
    def __init__(self, scope: Construct, id_: str, props: RegistryProps) -> None:
        super().__init__(scope, id_)
        self.repositories: dict[str, EcrRepository] = {}
        for name in props.repositories:
            repo = EcrRepository(
                self,
                name,
                name=f"{props.prefix}/{name}",
                image_tag_mutability="IMMUTABLE",
                image_scanning_configuration=EcrRepositoryImageScanningConfiguration(scan_on_push=True),
                encryption_configuration=[
                    EcrRepositoryEncryptionConfiguration(encryption_type="KMS", kms_key=props.kms_key_arn)
                ],
            )
            EcrLifecyclePolicy(
                self,
                f"{name}-lifecycle",
                repository=repo.name,
                policy=json.dumps(
                    {
                        "rules": [
                            {
                                "rulePriority": 1,
                                "description": "expire untagged layers",
                                "selection": {
                                    "tagStatus": "untagged",
                                    "countType": "sinceImagePushed",
                                    "countUnit": "days",
                                    "countNumber": props.keep_untagged_days,
                                },
                                "action": {"type": "expire"},
                            }
                        ]
                    }
                ),
            )
            self.repositories[name] = repo
