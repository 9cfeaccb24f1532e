"""cert-manager's AWS side: the IRSA role that answers ACME DNS-01 challenges in one Route53 hosted zone.

The controller writes only TXT records (`_acme-challenge.<name>`) and only in the environment's zone, named by id
(so `route53:ListHostedZonesByName` is not needed); `GetChange` has no resource scope in Route53 and is read-only.
The ClusterIssuer that uses it is modules/k8s/certificates.py:cluster_issuer; decision 0135.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modules.cluster_services import CERT_MANAGER_NAMESPACE

if TYPE_CHECKING:  # modules.common loads the CDK bindings (seconds); the manifests renderer reads CLUSTER_ISSUER
    from modules.common import Statement

NAMESPACE = CERT_MANAGER_NAMESPACE  # infra/config/versions.yaml charts.cert_manager.namespace
SERVICE_ACCOUNT = "cert-manager"  # the chart's controller service account (its default name)
CLUSTER_ISSUER = "letsencrypt-dns01"  # modules/k8s/props.py GatewayProps.cluster_issuer


def dns01_statements(hosted_zone_id: str) -> list[Statement]:
    return [
        {
            "Sid": "ChallengeRecordsInTheZone",
            "Effect": "Allow",
            "Action": ["route53:ChangeResourceRecordSets", "route53:ListResourceRecordSets"],
            "Resource": f"arn:aws:route53:::hostedzone/{hosted_zone_id}",
            "Condition": {"ForAllValues:StringEquals": {"route53:ChangeResourceRecordSetsRecordTypes": ["TXT"]}},
        },
        {
            "Sid": "ChangePropagation",
            "Effect": "Allow",
            "Action": "route53:GetChange",
            "Resource": "arn:aws:route53:::change/*",
        },
    ]
