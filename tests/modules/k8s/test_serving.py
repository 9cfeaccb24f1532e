from __future__ import annotations

from typing import Any

import pytest

from modules.k8s import serving
from tests.modules.k8s.conftest import MODEL, WEIGHTS, by_kind


def _model_deployments(rendered: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [
        d
        for d in by_kind(rendered, "Deployment")
        if d["metadata"]["labels"]["app.kubernetes.io/component"] == "model-server"
    ]


def test_one_deployment_service_and_pdb_per_live_version(deployments):
    assert sorted(int(d["metadata"]["labels"]["model_version"]) for d in _model_deployments(deployments)) == sorted(
        WEIGHTS
    )
    services = {s["metadata"]["name"] for s in by_kind(deployments, "Service")}
    assert {f"{MODEL}-v{v}" for v in WEIGHTS} <= services
    pdbs = by_kind(deployments, "PodDisruptionBudget")
    assert {p["spec"]["selector"]["matchLabels"]["model_version"] for p in pdbs} == {str(v) for v in WEIGHTS}
    assert all(p["spec"]["maxUnavailable"] == 1 for p in pdbs)


def test_container_probes_port_env_and_resources_from_policy(deployments, pol):
    for d in _model_deployments(deployments):
        version = d["metadata"]["labels"]["model_version"]
        pod = d["spec"]["template"]
        assert pod["metadata"]["labels"]["model_version"] == version
        assert pod["metadata"]["labels"]["model_name"] == MODEL
        (c,) = pod["spec"]["containers"]
        assert c["ports"][0]["containerPort"] == 3000
        assert c["startupProbe"]["httpGet"]["path"] == "/readyz"
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert c["livenessProbe"]["httpGet"]["path"] == "/livez"
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env["MLP_MODEL_VERSION"] == version
        assert env["MLFLOW_TRACKING_URI"] == "http://mlflow.mlflow.svc:5000"
        assert c["resources"] == {
            "requests": {"cpu": pol.serving.cpu_request, "memory": pol.serving.memory_request},
            "limits": {"cpu": pol.serving.cpu_limit, "memory": pol.serving.memory_limit},
        }
        assert pod["spec"]["nodeSelector"] == serving.CPU_NODE_SELECTOR == {"mlp.io/pool": "cpu-inference"}


def test_security_context_is_restricted(deployments):
    for d in _model_deployments(deployments):
        spec = d["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == 10001
        assert spec["securityContext"]["fsGroup"] == 10001
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        sc = spec["containers"][0]["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        mounts = {m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
        assert {"/tmp", serving.MODEL_CACHE} == mounts
        assert all("emptyDir" in v for v in spec["volumes"])


def test_rolling_update_never_drops_capacity(deployments, pol):
    for d in _model_deployments(deployments):
        assert d["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
        assert "replicas" not in d["spec"]  # KEDA's (tests/modules/k8s/test_apply.py)


def test_service_account_carries_the_irsa_role(deployments):
    (sa,) = [m for m in by_kind(deployments, "ServiceAccount") if m["metadata"]["name"] == "model-server"]
    assert (
        sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == "arn:aws:iam::123456789012:role/mlp-model-server"
    )
    assert sa["automountServiceAccountToken"] is False


def test_gpu_variant_requests_one_gpu_on_gpu_nodes(gpu, pol):
    for d in _model_deployments(gpu):
        spec = d["spec"]["template"]["spec"]
        res = spec["containers"][0]["resources"]
        assert res["limits"]["nvidia.com/gpu"] == 1
        assert res["requests"]["nvidia.com/gpu"] == 1
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
        assert spec["nodeSelector"]["mlp.io/pool"] == "gpu-inference"
        expr = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][
            0
        ]["matchExpressions"][0]
        # Gt is strict: the floor admits a node with exactly the policy's GPU memory.
        assert expr["key"] == "nvidia.com/gpu.memory"
        assert int(expr["values"][0]) + 1 == serving.quantity_mib(pol.serving.gpu_memory_request)


def test_pod_monitor_relabels_to_the_local_labels(deployments):
    (pm,) = by_kind(deployments, "PodMonitor")
    (ep,) = pm["spec"]["podMetricsEndpoints"]
    assert ep["honorLabels"] is True  # keeps BentoML's endpoint="/classify"
    targets = {r["targetLabel"]: r for r in ep["relabelings"]}
    assert targets["model_name"]["sourceLabels"] == ["__meta_kubernetes_pod_label_model_name"]
    assert targets["model_version"]["sourceLabels"] == ["__meta_kubernetes_pod_label_model_version"]
    assert targets["job"]["replacement"] == "model-server"
    pods = _model_deployments(deployments)
    for pod in pods:
        labels = pod["spec"]["template"]["metadata"]["labels"]
        assert all(labels[k] == v for k, v in pm["spec"]["selector"]["matchLabels"].items())


def test_quantity_mib_rejects_decimal_units():
    assert serving.quantity_mib("2Gi") == 2048
    try:
        serving.quantity_mib("2G")
    except ValueError as exc:
        assert "binary quantity" in str(exc)
    else:
        raise AssertionError("2G must be rejected")


def test_a_pushed_digest_pins_every_model_server_pod_to_that_image():
    """The drift job's and the webhook receiver's images are other images: they keep the release's tag."""
    from modules.k8s import render_all
    from tests.modules.k8s.conftest import props

    digest = "sha256:" + "ab" * 32
    base = props()
    pinned = base.model_copy(update={"serving": base.serving.model_copy(update={"image_digest": digest})})
    images = [
        c["image"]
        for ms in render_all(pinned).values()
        for m in ms
        if m["kind"] in {"Deployment", "CronJob"}
        for c in (m["spec"].get("jobTemplate", {}).get("spec", m["spec"]))["template"]["spec"]["containers"]
        if c["name"] == "model-server"
    ]
    assert images and all(i.endswith("@" + digest) and ":0a1b2c3@" in i for i in images)
    unpinned = [m for ms in render_all(base).values() for m in ms if m["kind"] == "Deployment"]
    assert all("@" not in m["spec"]["template"]["spec"]["containers"][0]["image"] for m in unpinned)


def pod_images(rendered: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
    """Container name -> image, over every pod template rendered (Deployments, the CronJob, Rollouts)."""
    found: dict[str, str] = {}
    for m in (m for ms in rendered.values() for m in ms):
        spec = m.get("spec", {})
        template = spec.get("jobTemplate", {}).get("spec", spec).get("template")
        if template:
            found.update({c["name"]: c["image"] for c in template["spec"]["containers"]})
    return found


def test_the_other_pushed_images_run_by_their_own_digests():
    from core import images
    from modules.k8s import render_all
    from modules.k8s.props import WebhookProps
    from tests.modules.k8s.conftest import props

    base = props()
    digests = {images.DRIFT_JOB: "sha256:" + "cd" * 32, images.WEBHOOK_RECEIVER: "sha256:" + "ef" * 32}
    pinned = base.model_copy(
        update={
            "serving": base.serving.model_copy(update={"sibling_digests": digests}),
            "webhook": WebhookProps(github_repository="acme/models"),
        }
    )
    rendered = pod_images(render_all(pinned))
    for name, digest in digests.items():
        (image,) = [i for i in rendered.values() if f"/{name}:" in i]
        assert image.endswith(f"/{name}:0a1b2c3@{digest}")
    assert "@" not in rendered["model-server"]  # its own digest is image_digest, not set here


@pytest.mark.parametrize(
    ("digests", "named"),
    [({"drift": "sha256:" + "cd" * 32}, "unknown image 'drift'"), ({"drift-job": "sha256:cd"}, "not sha256:<64 hex>")],
)
def test_a_sibling_digest_for_an_unknown_image_or_not_a_digest_is_refused(digests: dict[str, str], named: str):
    from pydantic import ValidationError

    from modules.k8s.props import ServingProps
    from tests.modules.k8s.conftest import props

    fields = props().serving.model_dump() | {"sibling_digests": digests}
    with pytest.raises(ValidationError, match=named):
        ServingProps(**fields)


def test_pods_read_the_registry_as_their_least_privileged_user_with_the_password_by_reference(deployments):
    from core import contracts
    from modules.k8s import common as k8s_common

    expected = {"model-server": contracts.REGISTRY_MODEL_SERVER, "drift-check": contracts.REGISTRY_READER}
    seen = {}
    for m in (m for ms in deployments.values() for m in ms if m["kind"] in {"Deployment", "CronJob"}):
        spec = m["spec"].get("jobTemplate", {}).get("spec", m["spec"])
        for c in spec["template"]["spec"]["containers"]:
            if c["name"] in expected:
                env = {e["name"]: e for e in c["env"]}
                seen[c["name"]] = env[contracts.MLFLOW_USERNAME_VAR]["value"]
                ref = env[contracts.MLFLOW_PASSWORD_VAR]["valueFrom"]["secretKeyRef"]
                assert ref == {"name": k8s_common.registry_secret_name(seen[c["name"]]), "key": "password"}
                assert "value" not in env[contracts.MLFLOW_PASSWORD_VAR]
    assert seen == expected


def test_model_servers_and_the_drift_job_read_the_artifact_public_key_from_its_configmap(deployments):
    from core import contracts, env

    servers = [
        c
        for ms in deployments.values()
        for m in ms
        if m["kind"] in {"Deployment", "CronJob"}
        for c in m["spec"].get("jobTemplate", {}).get("spec", m["spec"])["template"]["spec"]["containers"]
        if c["name"] in {"model-server", "drift-check"}
    ]
    assert {c["name"] for c in servers} == {"model-server", "drift-check"}
    for c in servers:
        variables = {e["name"]: e for e in c["env"]}
        assert variables[env.ARTIFACT_PUBLIC_KEY.name] == {
            "name": env.ARTIFACT_PUBLIC_KEY.name,
            "valueFrom": {
                "configMapKeyRef": {
                    "name": contracts.ARTIFACT_KEY_CONFIGMAP,
                    "key": contracts.ARTIFACT_KEY_CONFIGMAP_KEY,
                }
            },
        }


def _p256_public_key() -> str:
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    der = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return base64.b64encode(der).decode()


@pytest.mark.parametrize("mode", ["deployments", "rollout"])
def test_the_signing_keys_public_half_is_rendered_where_every_pod_that_reads_it_runs(mode):
    from core import contracts
    from modules.k8s import render_all
    from tests.modules.k8s.conftest import props

    key = _p256_public_key()
    base = props(mode)
    keyed = base.model_copy(update={"serving": base.serving.model_copy(update={"artifact_public_key": key})})
    manifests = [m for ms in render_all(keyed).values() for m in ms]
    maps = {(m["metadata"]["namespace"], m["metadata"]["name"]): m for m in manifests if m["kind"] == "ConfigMap"}
    readers = set()
    for m in manifests:
        spec = m.get("spec", {})
        pod = spec.get("jobTemplate", {}).get("spec", spec).get("template", {}).get("spec", {})
        for c in pod.get("containers", []):
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("configMapKeyRef")
                if ref and ref["name"] == contracts.ARTIFACT_KEY_CONFIGMAP:
                    readers.add(m["metadata"]["namespace"])
                    data = maps[(m["metadata"]["namespace"], ref["name"])]["data"]
                    assert data[ref["key"]] == key
    assert readers, "the model servers and the drift job read the key"


def test_a_public_key_that_is_not_one_is_refused_by_name():
    from pydantic import ValidationError

    from tests.modules.k8s.conftest import props

    serving = props().serving
    rsa_like = "MAwGCCqGSM49BAMCBQA="  # base64, but not a public key
    for bad in ("not base64!", rsa_like):
        with pytest.raises(ValidationError, match="artifact_public_key"):
            serving.model_validate({**serving.model_dump(), "artifact_public_key": bad})
    two = f"{_p256_public_key()},{_p256_public_key()}"  # a rotation: both keys verify
    assert serving.model_validate({**serving.model_dump(), "artifact_public_key": two}).artifact_public_key == two
