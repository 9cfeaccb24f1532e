"""What every stack shares: the S3 state backend with native locking, and providers with default tags."""

from __future__ import annotations

from cdktn import S3Backend, TerraformStack
from cdktn_provider_aws.provider import AwsProvider, AwsProviderDefaultTags
from constructs import Construct

from infra.config import EnvConfig
from infra.stacks import AWS_LAYERS, LAYERS

__all__ = ["AWS_LAYERS", "LAYERS", "LayerStack", "stack_name"]


def stack_name(env: EnvConfig, layer: str) -> str:
    return f"{env.prefix}-{layer}"


class LayerStack(TerraformStack):
    """A stack for one layer of one environment, with its own state file `<prefix>/<env>/<layer>.tfstate`."""

    layer: str = ""

    def __init__(self, scope: Construct, env: EnvConfig, *, aws: bool = True) -> None:
        super().__init__(scope, stack_name(env, self.layer))
        self.env = env
        S3Backend(
            self,
            bucket=env.state.bucket,
            key=f"{env.state.key_prefix}/{env.name}/{self.layer}.tfstate",
            region=env.state.region,
            encrypt=True,
            use_lockfile=env.state.use_lockfile,  # S3 native lock object: no DynamoDB table to manage
        )
        if aws:
            # Credentials come from the environment (GitHub OIDC in CI); nothing account-specific in code.
            AwsProvider(
                self,
                "aws",
                region=env.region,
                default_tags=[AwsProviderDefaultTags(tags={**env.default_tags(), "layer": self.layer})],
            )
