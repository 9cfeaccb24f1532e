"""Network layer: the VPC of one environment."""

from __future__ import annotations

from dataclasses import dataclass

from cdktn import TerraformOutput
from constructs import Construct

from infra.config import EnvConfig
from infra.stacks.base import LayerStack
from modules.github_oidc import GithubOidc, GithubOidcProps
from modules.network import Network, NetworkProps


@dataclass(frozen=True)
class NetworkOutputs:
    vpc_id: str
    private_subnet_ids: list[str]
    account_id: str
    deploy_role_arn: str
    release_role_arn: str


class NetworkStack(LayerStack):
    layer = "network"

    def __init__(self, scope: Construct, env: EnvConfig) -> None:
        super().__init__(scope, env)
        public, private = env.network.subnet_cidrs()
        self.network = Network(
            self,
            "network",
            NetworkProps(
                name=env.prefix,
                cluster_name=env.cluster_name,
                region=env.region,
                cidr=env.network.cidr,
                azs=env.network.azs,
                public_subnet_cidrs=public,
                private_subnet_cidrs=private,
                nat_gateways=env.network.nat_gateways,
                interface_endpoints=env.network.interface_endpoints,
                flow_log_retention_days=env.network.flow_log_retention_days,
            ),
        )
        # The first layer applied: an administrator applies it once, then CI deploys with the roles it creates.
        self.github = GithubOidc(
            self,
            "github",
            GithubOidcProps(
                prefix=env.prefix,
                repository=env.github.repository,
                environment=env.name,
                account_id=self.network.account_id,
                region=env.region,
                state_bucket=env.state.bucket,
                state_region=env.state.region,
                state_key_prefix=env.state.key_prefix,
                create_provider=env.github.create_oidc_provider,
            ),
        )
        TerraformOutput(self, "vpc_id", value=self.network.vpc.id)
        for kind in ("deploy", "plan", "release"):
            TerraformOutput(self, f"github_{kind}_role_arn", value=getattr(self.github, kind).arn)
        self.outputs = NetworkOutputs(
            vpc_id=self.network.vpc.id,
            private_subnet_ids=[s.id for s in self.network.private_subnets],
            account_id=self.network.account_id,
            deploy_role_arn=self.github.deploy.arn,
            release_role_arn=self.github.release.arn,
        )
