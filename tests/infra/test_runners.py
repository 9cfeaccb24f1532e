"""The release runs inside the VPC (decision 0143), read from the synthesized stacks: the runner scale sets are
installed pinned with their identities and secrets, every Secret a pod reads exists, and MLflow has no public path."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from core import contracts, images
from core.policy import policy as policy_of_the_repo
from core.promql import SERVING_NAMESPACE
from infra.config import EnvConfig, load_versions
from modules import runners
from modules.cluster_services import (
    MLFLOW_NAMESPACE,
    MLFLOW_PODS,
    MLFLOW_PORT,
    MLFLOW_RELEASE,
    QDRANT_API_KEY_SECRET,
    QDRANT_NAMESPACE,
)
from modules.k8s import RenderProps, render_all
from modules.k8s.platform import RUNNER_NAMESPACE
from modules.k8s.props import WebhookProps
from modules.operator_secrets import github_app_secret_name, webhook_secret_name
from modules.qdrant import api_key_secret_name as qdrant_api_key_secret_name
from modules.registry_auth import secret_name as registry_secret_name
from tests.infra.conftest import Synth, policy
from tests.modules.k8s.conftest import props as render_props


def _releases(synth: Synth, env: EnvConfig) -> list[dict[str, Any]]:
    return list(synth.resources(env.name, "addons", "helm_release").values())


def _values(release: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(release["values"][0])
    return values


def _local(synth: Synth, env: EnvConfig, name: str) -> dict[str, Any]:
    (release,) = [r for r in _releases(synth, env) if r["name"] == name]
    return _values(release)


def test_the_runner_scale_sets_are_installed_pinned_one_per_kind(synth: Synth, env: EnvConfig) -> None:
    versions = load_versions()
    releases = _releases(synth, env)
    (controller,) = [r for r in releases if r["chart"] == versions.charts["arc_controller"].chart]
    sets = [r for r in releases if r["chart"] == versions.charts["arc_runner_set"].chart]
    assert controller["version"] == versions.charts["arc_controller"].version
    # The two charts of one ARC release go together.
    assert {r["version"] for r in sets} == {versions.charts["arc_runner_set"].version, controller["version"]}
    names = {_values(r)["runnerScaleSetName"] for r in sets}
    assert names == {contracts.runner_scale_set(rk.kind, env.name) for rk in runners.KINDS}
    controller_sa = _values(controller)["serviceAccount"]["name"]
    for r in sets:
        values = _values(r)
        assert r["namespace"] == RUNNER_NAMESPACE
        assert values["githubConfigUrl"] == f"https://github.com/{env.github.repository}"
        assert isinstance(values["githubConfigSecret"], str), "credentials never in values"
        assert values["controllerServiceAccount"] == {"namespace": controller["namespace"], "name": controller_sa}
        assert values["template"]["spec"]["containers"][0]["image"] == versions.arc_runner_image
        assert any("platform-access" in d for d in r["depends_on"])


def test_each_runner_runs_as_its_own_irsa_role(synth: Synth, env: EnvConfig) -> None:
    access = _local(synth, env, "platform-access")["manifests"]
    accounts = {(m["metadata"]["namespace"], m["metadata"]["name"]): m for m in access if m["kind"] == "ServiceAccount"}
    roles = synth.resources(env.name, "data", "aws_iam_role")
    for rk in runners.KINDS:
        sa = accounts[(RUNNER_NAMESPACE, rk.identity.service_account)]
        arn = sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
        assert "aws_iam_role" in arn and rk.identity.role_suffix in arn  # a cross-stack reference, not a literal
        (role,) = [r for r in roles.values() if r["name"] == f"{env.prefix}-{rk.identity.role_suffix}"]
        trust = policy(role["assume_role_policy"])["Statement"][0]
        subject = f"system:serviceaccount:{RUNNER_NAMESPACE}:{rk.identity.service_account}"
        assert subject in str(trust["Condition"]["StringEquals"])


def test_the_release_runners_role_reads_image_digests_only(synth: Synth, env: EnvConfig) -> None:
    policies = synth.resources(env.name, "data", "aws_iam_role_policy")
    (doc,) = [p for k, p in policies.items() if runners.RELEASE.identity.role_suffix in k]
    (statement,) = policy(doc["policy"])["Statement"]
    assert statement["Action"] == ["ecr:DescribeImages"]
    # The account is a cross-stack token; region, prefix and the repositories of the platform's images are exact.
    suffixes = sorted(r.rpartition(":repository/")[2] for r in statement["Resource"])
    assert suffixes == sorted(f"{env.prefix}/{name}" for name in images.REPOSITORIES)
    assert all(r.startswith(f"arn:aws:ecr:{env.region}:") for r in statement["Resource"])


def test_the_platform_store_reads_exactly_the_secrets_it_copies(synth: Synth, env: EnvConfig) -> None:
    policies = synth.resources(env.name, "data", "aws_iam_role_policy")
    (doc,) = [p for k, p in policies.items() if "platform-secrets" in k]
    (read,) = [s for s in policy(doc["policy"])["Statement"] if "secretsmanager:GetSecretValue" in s["Action"]]
    secrets = synth.resources(env.name, "data", "aws_secretsmanager_secret")
    copied = {
        registry_secret_name(env.prefix),
        github_app_secret_name(env.prefix),
        webhook_secret_name(env.prefix),
        qdrant_api_key_secret_name(env.prefix),  # the RAG servers' copy (modules/k8s/rag.py)
    }
    wanted = {k for k, s in secrets.items() if s["name"] in copied}
    assert len(wanted) == len(copied)
    assert {r.split(".")[1] for r in read["Resource"]} == wanted
    # ...and the ExternalSecrets of the serving and runner namespaces use that store, and only those namespaces.
    access = _local(synth, env, "platform-access")["manifests"]
    (store,) = [m for m in access if m["kind"] == "ClusterSecretStore"]
    assert store["spec"]["conditions"] == [{"namespaces": [SERVING_NAMESPACE, RUNNER_NAMESPACE]}]
    for m in access:
        if m["kind"] == "ExternalSecret":
            assert m["metadata"]["namespace"] in {SERVING_NAMESPACE, RUNNER_NAMESPACE}


# ---------------------------------------------------------------- every Secret a pod reads exists


def _secret_refs(node: Any) -> Iterator[str]:
    """Names of Secrets a pod spec (or a chart's values) reads: env secretKeyRef, envFrom secretRef, volumes."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "secretKeyRef" or (key == "secretRef" and isinstance(value, dict)):
                yield value["name"]
            elif key == "secret" and isinstance(value, dict) and "secretName" in value:
                yield value["secretName"]
            else:
                yield from _secret_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _secret_refs(item)


def _rendered_pods() -> list[dict[str, Any]]:
    out = []
    for mode in ("deployments", "rollout"):
        for gpu in (False, True):
            base: RenderProps = render_props(mode, gpu)
            p = base.model_copy(update={"webhook": WebhookProps(github_repository="example-org/ml-platform")})
            out.extend(m for ms in render_all(p).values() for m in ms)
    for m in policy_of_the_repo().models:  # every other catalogue model's pods (the RAG server reads Qdrant's key)
        if m.task != "classify":
            out.extend(x for ms in render_all(render_props(model=m.name, weights={1: 100})).values() for x in ms)
    return [m for m in out if m["kind"] in {"Deployment", "Rollout", "CronJob", "Job", "StatefulSet", "DaemonSet"}]


def _users(synth: Synth, env: EnvConfig) -> list[dict[str, Any]]:
    manifests: list[dict[str, Any]] = _local(synth, env, "mlflow-registry-users")["manifests"]
    return manifests


def test_the_registry_users_are_provisioned_after_mlflow(synth: Synth, env: EnvConfig) -> None:
    (release,) = [r for r in _releases(synth, env) if r["name"] == "mlflow-registry-users"]
    assert any("helm_release.platform_mlflow" in d for d in release["depends_on"]), release["depends_on"]
    (job,) = [m for m in _users(synth, env) if m["kind"] == "Job"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    (secret,) = [m for m in _users(synth, env) if m["kind"] == "ExternalSecret"]
    assert all("registry-users" in str(d["remoteRef"]["key"]) for d in secret["spec"]["data"])


def test_every_secret_a_pod_reads_is_rendered_or_created_by_an_external_secret(synth: Synth, env: EnvConfig) -> None:
    """Serving pods, the runners and MLflow: each Secret they name exists in their namespace, made by an
    ExternalSecret (from Secrets Manager) or rendered by the platform, so no pod waits on a hand-made Secret."""
    provided: set[tuple[str, str]] = set()
    db = _local(synth, env, "mlflow-db-secret")
    provided.add((MLFLOW_NAMESPACE, db["targetSecret"]))  # the chart's own ExternalSecret of the RDS secret
    qdrant_secrets = _local(synth, env, "qdrant-secrets")["manifests"]
    for m in db["manifests"] + _local(synth, env, "platform-access")["manifests"] + _users(synth, env) + qdrant_secrets:
        if m["kind"] == "ExternalSecret":
            provided.add((m["metadata"]["namespace"], m["spec"]["target"]["name"]))
        if m["kind"] == "Secret":
            provided.add((m["metadata"]["namespace"], m["metadata"]["name"]))

    wanted: set[tuple[str, str]] = set()
    local_workloads = [
        m
        for name in ("mlflow-db-secret", "platform-access", "platform-guardrails", "mlflow-registry-users")
        for m in _local(synth, env, name)["manifests"]
        if m["kind"] in {"Job", "Deployment", "CronJob"}
    ]
    assert local_workloads, "the database bootstrap Job is a pod of the platform's own charts"
    for pod_owner in [*_rendered_pods(), *local_workloads]:
        wanted |= {(pod_owner["metadata"]["namespace"], name) for name in _secret_refs(pod_owner)}
    for r in _releases(synth, env):
        if r["chart"] == load_versions().charts["arc_runner_set"].chart:
            wanted |= {(RUNNER_NAMESPACE, n) for n in _secret_refs(_values(r)["template"])}
            wanted.add((RUNNER_NAMESPACE, _values(r)["githubConfigSecret"]))
    (mlflow,) = [_values(r) for r in _releases(synth, env) if r["chart"] == "mlflow"]
    wanted |= {(MLFLOW_NAMESPACE, n) for n in _secret_refs(mlflow["initContainers"])}
    wanted |= {(MLFLOW_NAMESPACE, n) for n in mlflow["extraSecretNamesForEnvFrom"]}
    wanted.add((MLFLOW_NAMESPACE, mlflow["backendStore"]["existingDatabaseSecret"]["name"]))
    wanted.add((MLFLOW_NAMESPACE, mlflow["auth"]["existingAdminSecret"]["name"]))
    wanted.add((MLFLOW_NAMESPACE, mlflow["auth"]["postgres"]["existingSecret"]["name"]))
    (qdrant,) = [_values(r) for r in _releases(synth, env) if r["chart"] == "qdrant"]
    wanted |= {(QDRANT_NAMESPACE, n) for n in _secret_refs(qdrant["env"])}

    assert {
        (SERVING_NAMESPACE, "registry-mlp-model-server"),
        (RUNNER_NAMESPACE, "registry-mlp-release-bot"),
        (SERVING_NAMESPACE, QDRANT_API_KEY_SECRET),  # the RAG server's
        (QDRANT_NAMESPACE, QDRANT_API_KEY_SECRET),  # Qdrant's own
    } <= wanted
    assert wanted - provided == set(), "read by a pod but made by nothing"


def test_the_secret_check_finds_a_missing_secret() -> None:
    pod = {"spec": {"containers": [{"env": [{"valueFrom": {"secretKeyRef": {"name": "nowhere", "key": "k"}}}]}]}}
    assert list(_secret_refs(pod)) == ["nowhere"]


# ---------------------------------------------------------------- MLflow is exposed by nothing public


def _everything(synth: Synth, env: EnvConfig) -> list[dict[str, Any]]:
    manifests: list[dict[str, Any]] = []
    for mode in ("deployments", "rollout"):
        p = render_props(mode).model_copy(update={"webhook": WebhookProps(github_repository="example-org/ml-platform")})
        manifests.extend(m for ms in render_all(p).values() for m in ms)
    for r in _releases(synth, env):
        if "repository" not in r:
            manifests.extend(_values(r)["manifests"])
    return manifests


def _selects_mlflow(selector: dict[str, str] | None) -> bool:
    return bool(selector) and all(MLFLOW_PODS.get(k) == v for k, v in (selector or {}).items())


def test_mlflow_is_exposed_by_nothing_public(synth: Synth, env: EnvConfig) -> None:
    """No LoadBalancer or NodePort Service, Ingress or route leads to MLflow; its chart makes a ClusterIP Service and
    no Ingress; its pods admit only named pods (no address block)."""
    manifests = _everything(synth, env)
    assert not [m for m in manifests if m["kind"] == "Ingress"]
    for m in manifests:
        if m["kind"] == "Service":
            exposed = m["spec"].get("type", "ClusterIP") in {"LoadBalancer", "NodePort"}
            assert not (exposed and _selects_mlflow(m["spec"].get("selector"))), m["metadata"]["name"]
        if m["kind"] in {"HTTPRoute", "GRPCRoute", "TCPRoute", "TLSRoute"}:
            for rule in m["spec"]["rules"]:
                for ref in rule.get("backendRefs", []):
                    assert ref.get("namespace", m["metadata"]["namespace"]) != MLFLOW_NAMESPACE
                    assert ref["name"] != MLFLOW_RELEASE
        if m["kind"] == "ReferenceGrant":
            assert m["metadata"]["namespace"] != MLFLOW_NAMESPACE, "no route may point into MLflow's namespace"
    (mlflow,) = [_values(r) for r in _releases(synth, env) if r["chart"] == "mlflow"]
    assert mlflow["service"] == {"type": "ClusterIP", "port": MLFLOW_PORT}
    assert mlflow["ingress"] == {"enabled": False}
    (allow,) = [
        m
        for m in manifests
        if m["kind"] == "NetworkPolicy"
        and m["metadata"]["namespace"] == MLFLOW_NAMESPACE
        and m["metadata"]["name"] == "allow-platform"
    ]
    for rule in allow["spec"]["ingress"]:
        assert all("ipBlock" not in peer for peer in rule["from"]), "only pods reach MLflow, no address range"
    runner_peers = [peer for rule in allow["spec"]["ingress"] for peer in rule["from"] if "mlp.io/runner" in str(peer)]
    assert len(runner_peers) == len(runners.KINDS)


@pytest.mark.parametrize("service_type", ["LoadBalancer", "NodePort"])
def test_the_exposure_check_catches_a_public_mlflow_service(service_type: str) -> None:
    svc = {"kind": "Service", "spec": {"type": service_type, "selector": dict(MLFLOW_PODS)}}
    assert svc["spec"]["type"] in {"LoadBalancer", "NodePort"} and _selects_mlflow(svc["spec"]["selector"])
