"""The VPC: public and private subnets per AZ, NAT (one, or one per AZ), VPC endpoints, flow logs.

Nodes, pods and the database live in private subnets; public subnets hold only NAT gateways and load balancers.
The S3 gateway endpoint (free) keeps model/artifact traffic off NAT; interface endpoints for ECR (api, dkr) and STS
let nodes pull images and pods assume IRSA roles without crossing NAT.
"""

from __future__ import annotations

from typing import Literal

from cdktn_provider_aws.default_security_group import DefaultSecurityGroup
from cdktn_provider_aws.eip import Eip
from cdktn_provider_aws.flow_log import FlowLog
from cdktn_provider_aws.iam_role import IamRole
from cdktn_provider_aws.iam_role_policy import IamRolePolicy
from cdktn_provider_aws.internet_gateway import InternetGateway
from cdktn_provider_aws.nat_gateway import NatGateway
from cdktn_provider_aws.route import Route
from cdktn_provider_aws.route_table import RouteTable
from cdktn_provider_aws.route_table_association import RouteTableAssociation
from cdktn_provider_aws.security_group import SecurityGroup, SecurityGroupEgress, SecurityGroupIngress
from cdktn_provider_aws.subnet import Subnet
from cdktn_provider_aws.vpc import Vpc
from cdktn_provider_aws.vpc_endpoint import VpcEndpoint
from constructs import Construct
from pydantic import Field

from modules.common import Props, account_id_from_arn, encrypted_log_group, policy_json


class NetworkProps(Props):
    name: str = Field(description="Prefix of every resource name, e.g. mlp-dev")
    cluster_name: str
    region: str
    cidr: str
    azs: list[str] = Field(min_length=2, max_length=3)
    public_subnet_cidrs: list[str]
    private_subnet_cidrs: list[str]
    nat_gateways: Literal["single", "per_az"]
    interface_endpoints: list[str]
    flow_log_retention_days: int


class Network(Construct):
    def __init__(self, scope: Construct, id_: str, props: NetworkProps) -> None:
        super().__init__(scope, id_)
        if not len(props.azs) == len(props.public_subnet_cidrs) == len(props.private_subnet_cidrs):
            raise ValueError("one public and one private subnet CIDR per AZ")
        self.props = props
        n = props.name
        self.vpc = Vpc(
            self, "vpc", cidr_block=props.cidr, enable_dns_hostnames=True, enable_dns_support=True, tags={"Name": n}
        )
        # The default SG is a trap (allow-all within itself): take every rule away from it.
        DefaultSecurityGroup(self, "default-sg", vpc_id=self.vpc.id, tags={"Name": f"{n}-default-unused"})
        igw = InternetGateway(self, "igw", vpc_id=self.vpc.id, tags={"Name": n})

        public_rt = RouteTable(self, "public-rt", vpc_id=self.vpc.id, tags={"Name": f"{n}-public"})
        Route(
            self, "public-default", route_table_id=public_rt.id, destination_cidr_block="0.0.0.0/0", gateway_id=igw.id
        )

        self.public_subnets: list[Subnet] = []
        self.private_subnets: list[Subnet] = []
        self.private_route_tables: list[RouteTable] = []
        self.nat_gateways: list[NatGateway] = []
        for i, az in enumerate(props.azs):
            public = Subnet(
                self,
                f"public-{az}",
                vpc_id=self.vpc.id,
                cidr_block=props.public_subnet_cidrs[i],
                availability_zone=az,
                map_public_ip_on_launch=False,
                tags={"Name": f"{n}-public-{az}", "kubernetes.io/role/elb": "1"},
            )
            RouteTableAssociation(self, f"public-rta-{az}", subnet_id=public.id, route_table_id=public_rt.id)
            self.public_subnets.append(public)
            private = Subnet(
                self,
                f"private-{az}",
                vpc_id=self.vpc.id,
                cidr_block=props.private_subnet_cidrs[i],
                availability_zone=az,
                tags={
                    "Name": f"{n}-private-{az}",
                    "kubernetes.io/role/internal-elb": "1",
                    f"kubernetes.io/cluster/{props.cluster_name}": "shared",
                },
            )
            self.private_subnets.append(private)

        nat_count = len(props.azs) if props.nat_gateways == "per_az" else 1
        for i in range(nat_count):
            az = props.azs[i]
            eip = Eip(self, f"nat-eip-{az}", domain="vpc", tags={"Name": f"{n}-nat-{az}"}, depends_on=[igw])
            self.nat_gateways.append(
                NatGateway(
                    self,
                    f"nat-{az}",
                    allocation_id=eip.id,
                    subnet_id=self.public_subnets[i].id,
                    tags={"Name": f"{n}-nat-{az}"},
                    depends_on=[igw],
                )
            )
        for i, az in enumerate(props.azs):
            rt = RouteTable(self, f"private-rt-{az}", vpc_id=self.vpc.id, tags={"Name": f"{n}-private-{az}"})
            nat = self.nat_gateways[i if nat_count > 1 else 0]
            Route(
                self,
                f"private-default-{az}",
                route_table_id=rt.id,
                destination_cidr_block="0.0.0.0/0",
                nat_gateway_id=nat.id,
            )
            RouteTableAssociation(self, f"private-rta-{az}", subnet_id=self.private_subnets[i].id, route_table_id=rt.id)
            self.private_route_tables.append(rt)

        self._endpoints()
        self._flow_logs()

    def _endpoints(self) -> None:
        p, n = self.props, self.props.name
        self.s3_endpoint = VpcEndpoint(
            self,
            "s3-endpoint",
            vpc_id=self.vpc.id,
            service_name=f"com.amazonaws.{p.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[rt.id for rt in self.private_route_tables],
            tags={"Name": f"{n}-s3"},
        )
        self.endpoint_sg = SecurityGroup(
            self,
            "endpoints-sg",
            name=f"{n}-vpc-endpoints",
            description="HTTPS from inside the VPC to the interface endpoints",
            vpc_id=self.vpc.id,
            ingress=[
                SecurityGroupIngress(
                    description="HTTPS from the VPC",
                    from_port=443,
                    to_port=443,
                    protocol="tcp",
                    cidr_blocks=[p.cidr],
                )
            ],
            egress=[
                SecurityGroupEgress(
                    description="Responses stay in the VPC",
                    from_port=0,
                    to_port=0,
                    protocol="-1",
                    cidr_blocks=[p.cidr],
                )
            ],
            tags={"Name": f"{n}-vpc-endpoints"},
        )
        self.interface_endpoints: dict[str, VpcEndpoint] = {}
        for service in p.interface_endpoints:
            self.interface_endpoints[service] = VpcEndpoint(
                self,
                f"{service.replace('.', '-')}-endpoint",
                vpc_id=self.vpc.id,
                service_name=f"com.amazonaws.{p.region}.{service}",
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=[s.id for s in self.private_subnets],
                security_group_ids=[self.endpoint_sg.id],
                tags={"Name": f"{n}-{service}"},
            )

    def _flow_logs(self) -> None:
        p, n = self.props, self.props.name
        role = IamRole(
            self,
            "flow-logs-role",
            name=f"{n}-vpc-flow-logs",
            assume_role_policy=policy_json(
                [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ]
            ),
        )
        # The flow-log role is the first thing with the account in its ARN: other layers read the ID from it.
        self.account_id = account_id_from_arn(role.arn)
        group_name = f"/aws/vpc/flow-logs/{n}"
        self.logs_key, self.flow_log_group = encrypted_log_group(
            self,
            key_id="logs-key",
            group_id="flow-logs",
            group_name=group_name,
            alias=f"{n}-network-logs",
            description=f"{n}: VPC flow logs",
            account_id=self.account_id,
            region=p.region,
            retention_in_days=p.flow_log_retention_days,
        )
        IamRolePolicy(
            self,
            "flow-logs-policy",
            role=role.id,
            name="write-flow-logs",
            policy=policy_json(
                [
                    {
                        "Effect": "Allow",
                        "Action": [
                            "logs:CreateLogStream",
                            "logs:PutLogEvents",
                            "logs:DescribeLogGroups",
                            "logs:DescribeLogStreams",
                        ],
                        "Resource": [self.flow_log_group.arn, f"{self.flow_log_group.arn}:*"],
                    }
                ]
            ),
        )
        FlowLog(
            self,
            "flow-log",
            vpc_id=self.vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=self.flow_log_group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
        )
