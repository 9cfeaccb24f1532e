"""Managed node groups: one node IAM role, one launch template per group (IMDSv2 only, encrypted gp3 root volume),
labels and taints from config. The GPU group uses the NVIDIA AL2023 AMI, carries the `nvidia.com/gpu` NoSchedule
taint and scales from zero: Cluster Autoscaler reads its labels, taints and GPU count from the EKS API
(`eks:DescribeNodegroup`), so a pending GPU pod can bring up the first node."""

from __future__ import annotations

from typing import Literal

from cdktn import TerraformResourceLifecycle, Token
from cdktn_provider_aws.eks_node_group import (
    EksNodeGroup,
    EksNodeGroupLaunchTemplate,
    EksNodeGroupScalingConfig,
    EksNodeGroupTaint,
    EksNodeGroupUpdateConfig,
)
from cdktn_provider_aws.iam_role import IamRole
from cdktn_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from cdktn_provider_aws.launch_template import (
    LaunchTemplate,
    LaunchTemplateBlockDeviceMappings,
    LaunchTemplateBlockDeviceMappingsEbs,
    LaunchTemplateMetadataOptions,
    LaunchTemplateTagSpecifications,
)
from constructs import Construct
from pydantic import Field

from modules.common import Props, policy_json

# The VPC CNI gets its own IRSA role (modules/eks_addons.py), so nodes do not carry AmazonEKS_CNI_Policy.
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryReadOnly")


class TaintProps(Props):
    key: str
    value: str
    effect: Literal["NO_SCHEDULE", "NO_EXECUTE", "PREFER_NO_SCHEDULE"]


class NodeGroupProps(Props):
    name: str = Field(description="Short role of the group: system, cpu-inference, gpu-inference")
    instance_types: list[str] = Field(min_length=1)
    ami_type: str
    capacity_type: Literal["ON_DEMAND", "SPOT"]
    min_size: int = Field(ge=0)
    desired_size: int = Field(ge=0)
    max_size: int = Field(ge=1)
    disk_gib: int = Field(ge=20)
    labels: dict[str, str]
    taints: list[TaintProps]


class NodeGroupsProps(Props):
    cluster_name: str = Field(description="The cluster resource's name attribute, so groups wait for the cluster")
    name_prefix: str = Field(description="The same name as a plain string, for names and tag keys")
    kubernetes_version: str
    subnet_ids: list[str] = Field(min_length=1)
    groups: list[NodeGroupProps] = Field(min_length=1)


class NodeGroups(Construct):
    def __init__(self, scope: Construct, id_: str, props: NodeGroupsProps) -> None:
        super().__init__(scope, id_)
        c = props.name_prefix
        self.role = IamRole(
            self,
            "node-role",
            name=f"{c}-node",
            assume_role_policy=policy_json(
                [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]
            ),
        )
        for policy in NODE_POLICIES:
            IamRolePolicyAttachment(
                self, f"node-{policy}", role=self.role.name, policy_arn=f"arn:aws:iam::aws:policy/{policy}"
            )
        self.groups: dict[str, EksNodeGroup] = {}
        for group in props.groups:
            self.groups[group.name] = self._group(props, group)

    def _group(self, props: NodeGroupsProps, g: NodeGroupProps) -> EksNodeGroup:
        c = props.name_prefix
        template = LaunchTemplate(
            self,
            f"{g.name}-lt",
            name=f"{c}-{g.name}",
            update_default_version=True,
            # IMDSv2 only, one hop: pods cannot reach the node's credentials; they use IRSA instead.
            metadata_options=LaunchTemplateMetadataOptions(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1
            ),
            block_device_mappings=[
                LaunchTemplateBlockDeviceMappings(
                    device_name="/dev/xvda",
                    ebs=LaunchTemplateBlockDeviceMappingsEbs(
                        volume_size=g.disk_gib, volume_type="gp3", encrypted="true", delete_on_termination="true"
                    ),
                )
            ],
            tag_specifications=[
                LaunchTemplateTagSpecifications(
                    resource_type="instance", tags={"Name": f"{c}-{g.name}", "mlp.io/pool": g.name}
                ),
                LaunchTemplateTagSpecifications(resource_type="volume", tags={"Name": f"{c}-{g.name}"}),
            ],
        )
        return EksNodeGroup(
            self,
            g.name,
            cluster_name=props.cluster_name,
            node_group_name=f"{c}-{g.name}",
            node_role_arn=self.role.arn,
            subnet_ids=props.subnet_ids,
            version=props.kubernetes_version,
            ami_type=g.ami_type,
            capacity_type=g.capacity_type,
            instance_types=g.instance_types,
            scaling_config=EksNodeGroupScalingConfig(
                min_size=g.min_size, desired_size=g.desired_size, max_size=g.max_size
            ),
            update_config=EksNodeGroupUpdateConfig(max_unavailable_percentage=33),
            labels=g.labels,
            taint=[EksNodeGroupTaint(key=t.key, value=t.value, effect=t.effect) for t in g.taints] or None,
            launch_template=EksNodeGroupLaunchTemplate(
                name=template.name, version=Token.as_string(template.latest_version)
            ),
            # Cluster Autoscaler owns desired_size after creation; Terraform must not fight it.
            lifecycle=TerraformResourceLifecycle(ignore_changes=["scaling_config[0].desired_size"]),
            tags={
                "k8s.io/cluster-autoscaler/enabled": "true",
                f"k8s.io/cluster-autoscaler/{c}": "owned",
            },
        )
