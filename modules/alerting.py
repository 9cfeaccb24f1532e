"""Alert delivery in the cluster: kube-prometheus-stack's Alertmanager runs the routes of `core/alertmanager.py`
(the same tree, grouping, intervals and inhibition as the local one), pages through PagerDuty and files tickets in
Slack. Their credentials live in one Secrets Manager secret (`AlertReceiversSecret`, value set by the operator, never
by Terraform), synced by an `ExternalSecret` into the Kubernetes Secret the Alertmanager pods mount
(`alertmanagerSpec.secrets`); the config names only the mounted files (`routing_key_file`, `api_url_file`), so no
credential is in a value, a manifest, Terraform state or the repository.
"""

from __future__ import annotations

from typing import Any

from cdktn_provider_aws.secretsmanager_secret import SecretsmanagerSecret
from constructs import Construct

from core import alertmanager, contracts
from modules.cluster_services import ALERTMANAGER_LIMITS, ALERTMANAGER_REQUESTS, MONITORING_NAMESPACE
from modules.common import Props, Statement
from modules.k8s import webhook
from modules.registry_auth import external_secret

RECEIVERS_SECRET = "alertmanager-receivers"  # the Kubernetes Secret in the monitoring namespace
SECRETS_MOUNT = "/etc/alertmanager/secrets"  # where the operator mounts `alertmanagerSpec.secrets` (by name)
PAGERDUTY_KEY, SLACK_KEY = "pagerduty-routing-key", "slack-webhook-url"  # keys of that Secret
ACT_TOKEN_KEY = "act-webhook-token"  # the bearer token Alertmanager presents to the platform's receiver
SECRET_KEYS = {
    PAGERDUTY_KEY: contracts.PAGERDUTY_ROUTING_KEY_SECRET,
    SLACK_KEY: contracts.SLACK_WEBHOOK_URL_SECRET,
    ACT_TOKEN_KEY: contracts.ALERT_WEBHOOK_TOKEN_SECRET,
}
# Each alert's summary and runbook in the notification (Go templates, passed through Helm untouched: tplConfig off).
SUMMARY = "{{ range .Alerts }}{{ .Annotations.summary }} (runbook: {{ .Annotations.runbook_url }})\n{{ end }}"


def secret_name(prefix: str) -> str:
    """The Secrets Manager secret holding the receivers' credentials (JSON, one property per credential)."""
    return f"{prefix}/alertmanager/receivers"


class AlertReceiversSecretProps(Props):
    prefix: str
    kms_key_arn: str


class AlertReceiversSecret(Construct):
    """The receivers' Secrets Manager secret, encrypted with the data layer's secrets key; its value is set by the
    operator (PagerDuty Events v2 routing key, Slack incoming-webhook URL), so it never enters Terraform state."""

    def __init__(self, scope: Construct, id_: str, props: AlertReceiversSecretProps) -> None:
        super().__init__(scope, id_)
        self.secret = SecretsmanagerSecret(
            self,
            "secret",
            name=secret_name(props.prefix),
            description="Alertmanager receivers: PagerDuty routing key (pages), Slack webhook URL (tickets)",
            kms_key_id=props.kms_key_arn,
            recovery_window_in_days=7,
        )
        self.arn = self.secret.arn


def reader_statements(secret_arn: str, secret_key_arn: str, region: str) -> list[Statement]:
    """What the monitoring namespace's SecretStore identity may do: read this one secret, nothing else."""
    return [
        {
            "Sid": "AlertReceiversSecret",
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
            "Resource": secret_arn,
        },
        {
            "Sid": "SecretKeyThroughSecretsManager",
            "Effect": "Allow",
            "Action": ["kms:Decrypt"],
            "Resource": secret_key_arn,
            "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}},
        },
    ]


def _file(key: str) -> str:
    return f"{SECRETS_MOUNT}/{RECEIVERS_SECRET}/{key}"


def credential_file(notifier: dict[str, Any]) -> str | None:
    """The mounted file a notifier config reads its credential from (None: it names none)."""
    auth = notifier.get("http_config", {}).get("authorization", {})
    found = notifier.get("routing_key_file") or notifier.get("api_url_file") or auth.get("credentials_file")
    return str(found) if found else None


def cluster_receivers() -> dict[str, dict[str, Any]]:
    return {
        # The alerts the platform acts on (drift -> retraining) go to the in-cluster receiver, which dispatches
        # the retraining workflow; it checks this bearer token (its own copy: modules/k8s/webhook.py).
        contracts.RECEIVER_ACT: {
            "webhook_configs": [
                {
                    "url": webhook.alerts_url(),
                    "send_resolved": False,  # only a firing alert acts
                    "http_config": {
                        "authorization": {"type": contracts.BEARER_SCHEME, "credentials_file": _file(ACT_TOKEN_KEY)}
                    },
                }
            ]
        },
        contracts.RECEIVER_PAGE: {
            "pagerduty_configs": [
                {"routing_key_file": _file(PAGERDUTY_KEY), "send_resolved": True, "description": SUMMARY},
            ]
        },
        contracts.RECEIVER_TICKET: {
            "slack_configs": [{"api_url_file": _file(SLACK_KEY), "send_resolved": True, "text": SUMMARY}],
        },
    }


def alertmanager_config() -> dict[str, Any]:
    return alertmanager.config(cluster_receivers())


def alertmanager_values(node_selector: dict[str, str]) -> dict[str, Any]:
    """kube-prometheus-stack's `alertmanager` values: the config and the receivers' Secret mounted."""
    return {
        "config": {**alertmanager_config(), "templates": []},  # no template files: the chart's default glob is unused
        "alertmanagerSpec": {
            "secrets": [RECEIVERS_SECRET],
            "nodeSelector": node_selector,
            "resources": {"requests": dict(ALERTMANAGER_REQUESTS), "limits": dict(ALERTMANAGER_LIMITS)},
        },
    }


def receivers_external_secret(remote_key: str, namespace: str = MONITORING_NAMESPACE) -> dict[str, Any]:
    """The ExternalSecret copying the receivers' credentials into `RECEIVERS_SECRET` (the SecretStore of the
    namespace is the `alertmanager-secrets` chart's)."""
    return external_secret(name=RECEIVERS_SECRET, namespace=namespace, remote_key=remote_key, data=dict(SECRET_KEYS))
