"""The rehearsal edits only what `changes.for_this_machine` lists; the hardening, volumes, probes' timings,
resources and command stay as rendered."""

from __future__ import annotations

from typing import Any

from core import contracts
from core.policy import policy
from modules.k8s import MonitoringProps, RenderProps, ServingProps, WebhookProps, render_all
from modules.k8s import common as k8s_common
from pipelines.rehearsal.changes import (
    drift_job_for_this_machine,
    for_this_machine,
    webhook_receiver_for_this_machine,
)

KEPT = ("securityContext", "volumeMounts", "resources", "command", "args", "lifecycle", "image")


def rendered_with_platform() -> dict[str, list[dict[str, Any]]]:
    """Every concern as the rehearsal renders it: the images built here, the local servers, the receiver too."""
    props = RenderProps(
        model_name=policy().release.default_model,
        weights={3: 100},
        serving=ServingProps(
            image_repository="localhost/mlp/model-server",
            image_tag="abc",
            irsa_role_arn="arn:aws:iam::123456789012:role/x",
            inference_log_bucket="logs",
            mlflow_tracking_uri="http://127.0.0.1:15000",
        ),
        monitoring=MonitoringProps(drift_image="localhost/mlp/drift-job:def", pushgateway_url="http://127.0.0.1:2"),
        webhook=WebhookProps(github_repository="acme/platform"),
    )
    return render_all(props)


def rendered() -> dict[str, Any]:
    (deployment,) = [m for m in rendered_with_platform()["serving"] if m["kind"] == "Deployment"]
    return deployment


def registry_secret(user: str) -> dict[tuple[str, str], str]:
    return {
        (k8s_common.registry_secret_name(user), k8s_common.REGISTRY_PASSWORD_KEY): f"password-of-{user}",
        (contracts.ARTIFACT_KEY_CONFIGMAP, contracts.ARTIFACT_KEY_CONFIGMAP_KEY): "public-key-b64",
    }


def inlined(env: list[dict[str, Any]], secrets: dict[tuple[str, str], str]) -> list[dict[str, Any]]:
    """The rendered env with each secretKeyRef / configMapKeyRef replaced by its value, nothing else."""
    out = []
    for e in env:
        ref = e.get("valueFrom", {}).get("secretKeyRef") or e.get("valueFrom", {}).get("configMapKeyRef")
        out.append({"name": e["name"], "value": secrets[(ref["name"], ref["key"])]} if ref else e)
    return out


def test_each_change_has_a_reason_and_nothing_else_is_edited() -> None:
    before = rendered()
    secrets = registry_secret(contracts.REGISTRY_MODEL_SERVER)
    after, changes = for_this_machine(
        before, port=13100, s3_env={"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:1"}, secrets=secrets
    )
    assert changes and all(c.why for c in changes)
    pod_before, pod_after = before["spec"]["template"]["spec"], after["spec"]["template"]["spec"]
    assert pod_after.pop("hostNetwork") is True
    assert pod_after == pod_before | {"containers": pod_after["containers"]}
    (c_before,), (c_after,) = pod_before["containers"], pod_after["containers"]
    for key in KEPT:
        assert c_after.get(key) == c_before.get(key), key
    assert "ports" not in c_after and c_after["imagePullPolicy"] == "Never"
    kept = c_after["env"][: len(c_before["env"])]
    assert kept == inlined(c_before["env"], secrets), "rendered env kept, in order, first; secrets inlined only"
    assert any("valueFrom" in e for e in c_before["env"]), "the registry password is rendered by reference"
    added = {e["name"] for e in c_after["env"][len(c_before["env"]) :]}
    assert added == {"BENTOML_PORT", "AWS_ENDPOINT_URL_S3"}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c_after[probe]["httpGet"] == {**c_before[probe]["httpGet"], "port": 13100}
        assert {k: v for k, v in c_after[probe].items() if k != "httpGet"} == {
            k: v for k, v in c_before[probe].items() if k != "httpGet"
        }
    assert after["metadata"]["name"] == before["metadata"]["name"] + "-p13100"
    assert after["metadata"]["labels"] == before["metadata"]["labels"]
    assert before["spec"]["template"]["spec"]["containers"][0].get("ports"), "the input is not modified"


def test_the_drift_job_runs_its_rendered_pod_spec_with_only_the_listed_changes() -> None:
    (cronjob,) = [m for m in rendered_with_platform()["monitoring"] if m["kind"] == "CronJob"]
    secrets = registry_secret(contracts.REGISTRY_READER)
    pod, changes = drift_job_for_this_machine(
        cronjob, suffix="p1", s3_env={"AWS_ACCESS_KEY_ID": "k"}, args=["--x"], secrets=secrets
    )
    assert pod["kind"] == "Pod" and changes and all(c.why for c in changes)
    spec_before = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    spec_after = dict(pod["spec"])
    assert spec_after.pop("hostNetwork") is True
    assert spec_after == spec_before | {"containers": spec_after["containers"]}  # restartPolicy Never etc. kept
    (c_before,), (c_after,) = spec_before["containers"], spec_after["containers"]
    for key in ("securityContext", "volumeMounts", "resources", "command", "image"):
        assert c_after.get(key) == c_before.get(key), key
    assert c_after["args"] == ["--x"] and "args" not in c_before
    assert c_after["env"][: len(c_before["env"])] == inlined(c_before["env"], secrets)
    assert [e["name"] for e in c_after["env"][len(c_before["env"]) :]] == ["AWS_ACCESS_KEY_ID"]


def test_the_webhook_receiver_gets_secrets_inline_and_a_stand_in_for_github_only() -> None:
    (deployment,) = [m for m in rendered_with_platform()["webhook"] if m["kind"] == "Deployment"]
    secrets = {
        ("mlp-webhook-receiver", "webhook-secret"): "w",
        ("mlp-webhook-receiver", "github-token"): "g",
        ("mlp-webhook-receiver", "alertmanager-token"): "a",
    }
    after, changes = webhook_receiver_for_this_machine(
        deployment, port=13109, secrets=secrets, github_api_url="http://127.0.0.1:9"
    )
    assert changes and all(c.why for c in changes)
    (c_before,) = deployment["spec"]["template"]["spec"]["containers"]
    (c_after,) = after["spec"]["template"]["spec"]["containers"]
    for key in ("securityContext", "volumeMounts", "resources", "command", "image"):
        assert c_after.get(key) == c_before.get(key), key
    assert c_after["args"][c_after["args"].index("--port") + 1] == "13109"
    values = {e["name"]: e.get("value") for e in c_after["env"]}
    assert values["MLP_WEBHOOK_SECRET"] == "w" and values["GITHUB_TOKEN"] == "g"
    assert values["MLP_ALERTMANAGER_TOKEN"] == "a"
    assert values["MLP_GITHUB_API_URL"] == "http://127.0.0.1:9"
    assert not any("valueFrom" in e for e in c_after["env"])
    assert any("valueFrom" in e for e in c_before["env"]), "the input is not modified"
