"""Secrets Manager secrets whose value the operator puts, never Terraform (so no credential enters the state): the
GitHub App the in-cluster runners register with, and the registry-webhook receiver's HMAC secret and GitHub token.

External Secrets copies them into the namespaces that use them (modules/runners.py); each is encrypted with the
data layer's secrets key. How to fill them: docs/platform-addons.md, "Before the first deploy".
"""

from __future__ import annotations

from cdktn_provider_aws.secretsmanager_secret import SecretsmanagerSecret
from constructs import Construct

from modules.common import Props
from modules.k8s import webhook

# JSON properties of the GitHub App secret: the names the gha-runner-scale-set chart reads from its config Secret.
GITHUB_APP_PROPERTIES = ("github_app_id", "github_app_installation_id", "github_app_private_key")
# JSON properties of the webhook receiver's secret: the keys of its Kubernetes Secret (modules/k8s/webhook.py).
WEBHOOK_PROPERTIES = (webhook.SECRET_KEY_WEBHOOK, webhook.SECRET_KEY_GITHUB, webhook.SECRET_KEY_ALERTMANAGER)


def github_app_secret_name(prefix: str) -> str:
    return f"{prefix}/github/runner-app"


def webhook_secret_name(prefix: str) -> str:
    return f"{prefix}/release/webhook-receiver"


class OperatorSecretProps(Props):
    name: str
    description: str
    kms_key_arn: str


class OperatorSecret(Construct):
    def __init__(self, scope: Construct, id_: str, props: OperatorSecretProps) -> None:
        super().__init__(scope, id_)
        self.secret = SecretsmanagerSecret(
            self,
            "secret",
            name=props.name,
            description=props.description,
            kms_key_id=props.kms_key_arn,
            recovery_window_in_days=7,
        )
        self.arn = self.secret.arn
