"""The registry-webhook receiver's objects: rendered only when asked for, secrets referenced (never inline), the
image beside the model server's, reachable only from MLflow's pods, one replica (its ledger is local)."""

from __future__ import annotations

from typing import Any

import pytest

from core import contracts, env
from modules.k8s import WebhookProps, render_all
from modules.k8s import webhook as receiver
from modules.k8s.validate import check
from tests.modules.k8s.conftest import by_kind, props

REPOSITORY = "acme/ml-platform"


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return render_all(props().model_copy(update={"webhook": WebhookProps(github_repository=REPOSITORY)}))


def container(rendered: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    (deployment,) = [m for m in rendered["webhook"] if m["kind"] == "Deployment"]
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(only)


def test_only_rendered_when_a_repository_is_given(rendered: dict[str, list[dict[str, Any]]]) -> None:
    assert "webhook" not in render_all(props())
    assert sorted(m["kind"] for m in rendered["webhook"]) == [
        "Deployment",
        "NetworkPolicy",
        "Service",
        "ServiceAccount",
    ]
    check({"webhook": rendered["webhook"]})  # schema-valid like every other manifest


def test_secrets_are_referenced_from_the_secret_never_written_inline(rendered: dict[str, list[dict[str, Any]]]) -> None:
    variables = {e["name"]: e for e in container(rendered)["env"]}
    for name in (env.WEBHOOK_SECRET.name, "GITHUB_TOKEN", env.ALERTMANAGER_TOKEN.name):
        assert "value" not in variables[name], f"{name} must come from a Secret"
        assert variables[name]["valueFrom"]["secretKeyRef"]["name"] == "mlp-webhook-receiver"
    assert variables[env.WEBHOOK_DISPATCH.name]["value"] == "github"
    assert variables[env.GITHUB_REPOSITORY.name]["value"] == REPOSITORY


def test_runs_the_receiver_image_of_the_same_build_restricted(rendered: dict[str, list[dict[str, Any]]]) -> None:
    c = container(rendered)
    server_image = props().serving.image
    assert c["image"] == server_image.replace("/model-server:", "/webhook-receiver:")
    assert c["securityContext"]["readOnlyRootFilesystem"] and c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    mounted = {m["mountPath"] for m in c["volumeMounts"]}
    assert receiver.STATE_DIR in mounted and c["args"][c["args"].index("--state-dir") + 1] == receiver.STATE_DIR


def test_probes_ask_the_health_route(rendered: dict[str, list[dict[str, Any]]]) -> None:
    """The receiver answers it: tests/integration/test_rehearsal_platform.py runs this Deployment."""
    c = container(rendered)
    assert c["livenessProbe"]["httpGet"]["path"] == c["readinessProbe"]["httpGet"]["path"] == contracts.HEALTH_ROUTE


def test_only_mlflow_and_alertmanager_pods_reach_it_on_its_port(rendered: dict[str, list[dict[str, Any]]]) -> None:
    (policy,) = by_kind({"webhook": rendered["webhook"]}, "NetworkPolicy")
    (rule,) = policy["spec"]["ingress"]
    mlflow, alertmanager = rule["from"]
    assert mlflow["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "mlflow"}
    assert alertmanager["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "monitoring"}
    assert alertmanager["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "alertmanager"}
    for peer in rule["from"]:
        assert peer["podSelector"]["matchLabels"], "a namespace-wide peer would admit every pod of the namespace"
    assert rule["ports"] == [{"protocol": "TCP", "port": receiver.CONTAINER_PORT}]


def test_one_replica_replaced_not_rolled(rendered: dict[str, list[dict[str, Any]]]) -> None:
    (deployment,) = by_kind({"webhook": rendered["webhook"]}, "Deployment")
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_mlflow_calls_the_service_on_the_receiver_route(rendered: dict[str, list[dict[str, Any]]]) -> None:
    (service,) = by_kind({"webhook": rendered["webhook"]}, "Service")
    assert receiver.url() == (
        f"http://{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local"
        f"{contracts.WEBHOOK_ROUTE}"
    )
    assert service["spec"]["ports"][0]["port"] == 80
