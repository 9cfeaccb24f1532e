"""The local Alertmanager's config: Alertmanager's parser accepts it, both receivers post to the platform receiver's
alert route with the secret store's token file (never its value), and the Prometheus config sends to it."""

from __future__ import annotations

from pathlib import Path

import yaml

from core import contracts
from core.policy import policy
from infra.local import alertmanager, prometheus, webhook


def test_local_config_passes_amtool_and_names_the_token_file_only(tmp_path: Path) -> None:
    token = tmp_path / "alertmanager_webhook_token"
    token.write_text("s3cret-token-value")
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(alertmanager.local_config(token)))
    result = alertmanager.check_config(path)
    assert result.returncode == 0, result.stdout + result.stderr
    text = path.read_text()
    assert "s3cret-token-value" not in text and "&id" not in text  # no secret, no YAML anchors
    for receiver in yaml.safe_load(text)["receivers"]:
        [hook] = receiver["webhook_configs"]
        assert hook["url"] == webhook.alerts_url() and hook["url"].endswith(contracts.ALERTMANAGER_ROUTE)
        assert hook["http_config"]["authorization"] == {
            "type": contracts.BEARER_SCHEME,
            "credentials_file": str(token),
        }
    assert alertmanager.routes_test(path, {"alertname": "X", "severity": "page"}) == [contracts.RECEIVER_PAGE]


def test_prometheus_sends_its_alerts_to_the_local_alertmanager() -> None:
    [target] = prometheus.prometheus_config()["alerting"]["alertmanagers"]
    assert target["static_configs"] == [{"targets": [f"127.0.0.1:{policy().ports.alertmanager}"]}]
