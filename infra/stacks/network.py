"""Network layer: the VPC of one environment."""

from __future__ import annotations

from dataclasses import dataclass

from cdktn import TerraformOutput
from constructs import Construct

from infra.config import EnvConfig
from infra.stacks.base import LayerStack
from modules.network import Network, NetworkProps


@dataclass(frozen=True)
class NetworkOutputs:
    vpc_id: str
    private_subnet_ids: list[str]
    account_id: str


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
        TerraformOutput(self, "vpc_id", value=self.network.vpc.id)
        self.outputs = NetworkOutputs(
            vpc_id=self.network.vpc.id,
            private_subnet_ids=[s.id for s in self.network.private_subnets],
            account_id=self.network.account_id,
        )
