"""Cluster Autoscaler's AWS permissions, least privilege: read-only describes (which AWS does not scope by
resource), and scaling writes only on this cluster's node-group ASGs, tagged as owned by this cluster.

Why Cluster Autoscaler rather than Karpenter: docs/decisions/0061-cluster-autoscaler-over-karpenter.md.
"""

from __future__ import annotations

from modules.common import Statement

SERVICE_ACCOUNT = "cluster-autoscaler"
NAMESPACE = "kube-system"


def cluster_autoscaler_statements(cluster_name: str, region: str, account_id: str) -> list[Statement]:
    asg_arn = f"arn:aws:autoscaling:{region}:{account_id}:autoScalingGroup:*:autoScalingGroupName/eks-{cluster_name}-*"
    return [
        {
            "Sid": "DescribeIsNotResourceScoped",
            "Effect": "Allow",
            "Action": [
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:DescribeAutoScalingInstances",
                "autoscaling:DescribeLaunchConfigurations",
                "autoscaling:DescribeScalingActivities",
                "autoscaling:DescribeTags",
                "ec2:DescribeImages",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplateVersions",
                "ec2:GetInstanceTypesFromInstanceRequirements",
            ],
            "Resource": "*",
        },
        {
            "Sid": "ReadNodeGroupTemplatesForScaleFromZero",
            "Effect": "Allow",
            "Action": ["eks:DescribeNodegroup"],
            "Resource": f"arn:aws:eks:{region}:{account_id}:nodegroup/{cluster_name}/*/*",
        },
        {
            "Sid": "ScaleOnlyThisClustersGroups",
            "Effect": "Allow",
            "Action": ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
            "Resource": asg_arn,
            "Condition": {"StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"}},
        },
    ]
