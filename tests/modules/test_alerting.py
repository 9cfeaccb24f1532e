"""The cluster's alert delivery as rendered: Alertmanager accepts the config, it routes like the local one, its
credentials are files of the mounted Secret, and the ExternalSecret that fills it is valid against the CRD schema."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from core import alertmanager, contracts
from modules import alerting
from modules.k8s import webhook
from modules.k8s.validate import validate_manifest

AMTOOL = shutil.which("amtool") or "/usr/bin/amtool"
CHART = Path(alerting.__file__).parent / "charts" / "alertmanager-secrets"


def test_amtool_accepts_the_cluster_config(tmp_path: Path) -> None:
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(alerting.alertmanager_values({})["config"]))
    result = subprocess.run([AMTOOL, "check-config", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 receivers" in result.stdout and "1 inhibit rules" in result.stdout


def test_cluster_routes_are_the_local_ones_with_paging_and_chat_receivers() -> None:
    config = alerting.alertmanager_config()
    assert config["route"] == alertmanager.route()
    assert config["inhibit_rules"] == alertmanager.inhibit_rules()
    receivers = {r["name"]: r for r in config["receivers"]}
    assert set(receivers) == {contracts.RECEIVER_ACT, contracts.RECEIVER_PAGE, contracts.RECEIVER_TICKET}
    assert "pagerduty_configs" in receivers[contracts.RECEIVER_PAGE]
    assert "slack_configs" in receivers[contracts.RECEIVER_TICKET]
    [act] = receivers[contracts.RECEIVER_ACT]["webhook_configs"]
    assert act["url"] == webhook.alerts_url() and act["url"].endswith(contracts.ALERTMANAGER_ROUTE)


def test_credentials_are_files_of_the_synced_secret_never_values() -> None:
    values = alerting.alertmanager_values({"pool": "system"})
    external = alerting.receivers_external_secret(alerting.secret_name("mlp-dev"))
    synced = {d["secretKey"]: d["remoteRef"]["property"] for d in external["spec"]["data"]}
    text = yaml.safe_dump(values)
    assert "routing_key:" not in text and "api_url:" not in text and "service_key" not in text
    for receiver in values["config"]["receivers"]:
        for kind, configs in receiver.items():
            if not kind.endswith("_configs"):
                continue
            for c in configs:
                path = alerting.credential_file(c)
                assert path, f"{receiver['name']}: {kind} without a credentials file"
                mount, secret, key = path.rsplit("/", 2)
                assert mount == alerting.SECRETS_MOUNT
                assert secret in values["alertmanagerSpec"]["secrets"] and secret == external["spec"]["target"]["name"]
                assert key in synced
    assert set(synced.values()) == {
        contracts.PAGERDUTY_ROUTING_KEY_SECRET,
        contracts.SLACK_WEBHOOK_URL_SECRET,
        contracts.ALERT_WEBHOOK_TOKEN_SECRET,
    }


def test_the_external_secret_is_valid_and_reads_the_receivers_secret() -> None:
    manifest = alerting.receivers_external_secret(alerting.secret_name("mlp-dev"))
    assert validate_manifest(manifest) == []
    assert manifest["metadata"]["namespace"] == "monitoring"
    assert {d["remoteRef"]["key"] for d in manifest["spec"]["data"]} == {"mlp-dev/alertmanager/receivers"}
    broken = {**manifest, "spec": {**manifest["spec"], "target": {"name": "x", "creationPolicy": "Sometimes"}}}
    assert validate_manifest(broken) != []


def test_the_secret_store_reads_as_its_own_identity() -> None:
    template = (CHART / "templates" / "secret-store.yaml").read_text()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert "eks.amazonaws.com/role-arn" in template and "serviceAccountRef" in template
    assert "range .Values.manifests" in (CHART / "templates" / "external-secret.yaml").read_text()
    assert values["serviceAccount"] == "alertmanager-secrets"


def test_the_reader_role_may_read_only_the_receivers_secret() -> None:
    statements = alerting.reader_statements("arn:secret", "arn:key", "us-east-1")
    assert [s["Resource"] for s in statements] == ["arn:secret", "arn:key"]
    assert statements[1]["Condition"] == {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}
    assert all("*" not in str(s["Action"]) for s in statements)
