"""The admission policy that refuses images without a digest: its CEL evaluated (cel-python, RE2 like the API
server) on pods the platform renders and on pods it must refuse."""

from __future__ import annotations

from typing import Any

import celpy
import pytest

from core import images
from modules.k8s import image_policy, render_all
from modules.k8s.props import WebhookProps
from modules.k8s.validate import check
from tests.modules.k8s.conftest import props

DIGEST = "sha256:" + "ab" * 32


def admit(pod_spec: dict[str, Any]) -> str | None:
    """None when the policy admits the pod, else its message: the API server's order (variables, then the
    validation, then the message only for a failed validation)."""
    (policy,) = [m for m in image_policy.manifests(enforced=["x"], audited=[]) if m["kind"].endswith("Policy")]
    env = celpy.Environment()
    activation: dict[str, Any] = {"object": celpy.json_to_cel({"spec": pod_spec}), "variables": {}}
    for variable in policy["spec"]["variables"]:
        value = env.program(env.compile(variable["expression"])).evaluate(activation)
        activation["variables"] = celpy.json_to_cel({**activation["variables"], variable["name"]: value})
    (validation,) = policy["spec"]["validations"]
    if env.program(env.compile(validation["expression"])).evaluate(activation):
        return None
    return str(env.program(env.compile(validation["messageExpression"])).evaluate(activation))


def test_a_pod_with_every_image_pinned_is_admitted() -> None:
    spec = {"containers": [{"name": "a", "image": f"r/a:1@{DIGEST}"}, {"name": "b", "image": f"r/b@{DIGEST}"}]}
    assert admit(spec) is None


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ({"containers": [{"name": "a", "image": "r/a:1"}]}, "r/a:1"),
        ({"containers": [{"name": "a", "image": "r/a:latest@sha256:ab"}]}, "r/a:latest@sha256:ab"),
        (
            {
                "containers": [{"name": "a", "image": f"r/a:1@{DIGEST}"}],
                "initContainers": [{"name": "i", "image": "busybox:1.36"}],
            },
            "busybox:1.36",
        ),
        (
            {
                "containers": [{"name": "a", "image": f"r/a:1@{DIGEST}"}],
                "ephemeralContainers": [{"name": "debug", "image": "debian:12"}],
            },
            "debian:12",
        ),
    ],
    ids=["tag", "short-digest", "init-container", "kubectl-debug"],
)
def test_an_image_without_a_full_digest_is_refused_by_name(spec: dict[str, Any], named: str) -> None:
    message = admit(spec)
    assert message is not None and message.startswith(f"image not pinned by digest: {named} (1 unpinned")
    assert "runbooks/image-not-pinned.md" in message


def test_every_pod_a_release_renders_is_admitted_and_without_the_digests_refused() -> None:
    base = props(mode="rollout")
    siblings = {images.DRIFT_JOB: DIGEST, images.WEBHOOK_RECEIVER: DIGEST}
    release = base.model_copy(
        update={
            "serving": base.serving.model_copy(update={"image_digest": DIGEST, "sibling_digests": siblings}),
            "webhook": WebhookProps(github_repository="acme/models"),
        }
    )

    def pod_specs(rendered: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
        found = []
        for m in (m for ms in rendered.values() for m in ms):
            spec = m.get("spec", {})
            template = spec.get("jobTemplate", {}).get("spec", spec).get("template")
            if template:
                found.append(template["spec"])
        return found

    pinned = pod_specs(render_all(release))
    assert len(pinned) >= 3  # the Rollout, the drift CronJob, the webhook receiver
    assert [admit(spec) for spec in pinned] == [None] * len(pinned)
    unpinned = pod_specs(render_all(base.model_copy(update={"webhook": release.webhook})))
    assert all(admit(spec) for spec in unpinned)


def test_deny_where_enforced_warn_and_audit_elsewhere_and_schema_valid() -> None:
    found = image_policy.manifests(enforced=["model-serving", "arc-runners"], audited=["keda", "mlflow"])
    check({"image-policy": found})
    bindings = {m["metadata"]["name"]: m["spec"] for m in found if m["kind"].endswith("Binding")}

    def namespaces(spec: dict[str, Any]) -> list[str]:
        (expression,) = spec["matchResources"]["namespaceSelector"]["matchExpressions"]
        assert expression["key"] == "kubernetes.io/metadata.name" and expression["operator"] == "In"
        return list(expression["values"])

    assert bindings[f"{image_policy.NAME}-deny"]["validationActions"] == ["Deny"]
    assert namespaces(bindings[f"{image_policy.NAME}-deny"]) == ["arc-runners", "model-serving"]
    assert bindings[f"{image_policy.NAME}-audit"]["validationActions"] == ["Warn", "Audit"]
    assert namespaces(bindings[f"{image_policy.NAME}-audit"]) == ["keda", "mlflow"]


def test_a_namespace_both_enforced_and_audited_or_none_enforced_is_refused() -> None:
    with pytest.raises(ValueError, match="both enforced and audited"):
        image_policy.manifests(enforced=["model-serving"], audited=["model-serving"])
    with pytest.raises(ValueError, match="no namespace enforces"):
        image_policy.manifests(enforced=[], audited=["keda"])


def test_is_pinned_needs_the_whole_digest() -> None:
    assert image_policy.is_pinned(f"ghcr.io/actions/actions-runner:2.329.0@{DIGEST}")
    assert not image_policy.is_pinned("ghcr.io/actions/actions-runner:2.329.0")
    assert not image_policy.is_pinned(f"ghcr.io/actions/actions-runner:2.329.0@{DIGEST[:-1]}")
