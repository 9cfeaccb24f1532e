"""The Gateway's certificate: a cert-manager Certificate for `<hostname>` and `*.<hostname>`, issued by Let's Encrypt
through an ACME DNS-01 challenge in the environment's Route53 hosted zone (decision 0135).

- `certificate()` (rendered by `mlp render k8s` with the Gateway): the Secret the HTTPS listeners read. cert-manager
  renews it `gateway.tls.renew_before_days` before expiry (the same value the local gateway re-issues at) with a
  new key each time (`rotationPolicy: Always`).
- `cluster_issuer()` (installed by the add-on stack, modules/addons.py): DNS-01 against one hosted zone, named by
  id, with the controller's IRSA role (ambient credentials; no access key anywhere). DNS-01 rather than HTTP-01:
  it covers the wildcard listener and works for an internal load balancer that Let's Encrypt cannot reach.
"""

from __future__ import annotations

from core.policy import Policy
from modules.k8s import common as c
from modules.k8s.props import GatewayProps

CERT_MANAGER_API = "cert-manager.io/v1"
LETSENCRYPT_PRODUCTION = "https://acme-v02.api.letsencrypt.org/directory"


def certificate(props: GatewayProps, policy: Policy, namespace: str) -> c.Manifest:
    meta = c.metadata(props.tls_secret, namespace, {"app.kubernetes.io/part-of": c.PART_OF})
    return c.manifest(
        CERT_MANAGER_API,
        "Certificate",
        meta,
        spec={
            "secretName": props.tls_secret,
            "dnsNames": [props.hostname, f"*.{props.hostname}"],
            "issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": props.cluster_issuer},
            "renewBefore": f"{policy.gateway.tls.renew_before_days * 24}h",
            "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
        },
    )


def cluster_issuer(
    name: str, *, email: str, region: str, hosted_zone_id: str, dns_zone: str, server: str = LETSENCRYPT_PRODUCTION
) -> c.Manifest:
    """Let's Encrypt, DNS-01 in one Route53 zone. `email` receives Let's Encrypt's expiry and policy notices."""
    meta = c.metadata(name, None, {"app.kubernetes.io/part-of": c.PART_OF})
    return c.manifest(
        CERT_MANAGER_API,
        "ClusterIssuer",
        meta,
        spec={
            "acme": {
                "server": server,
                "email": email,
                # The ACME account key: created by cert-manager in its own namespace, never rendered.
                "privateKeySecretRef": {"name": f"{name}-account-key"},
                "solvers": [
                    {
                        "selector": {"dnsZones": [dns_zone]},
                        "dns01": {"route53": {"region": region, "hostedZoneID": hosted_zone_id}},
                    }
                ],
            }
        },
    )
