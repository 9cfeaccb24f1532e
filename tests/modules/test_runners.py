"""The in-cluster GitHub runners (modules/runners.py): where the jobs that talk to MLflow run, with which identity and
which rights. The workflows are read as files; the manifests are schema-checked like every other one."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from core import contracts
from core.promql import SERVING_NAMESPACE
from infra.config import ENVIRONMENTS
from modules import runners
from modules.k8s import validate
from modules.k8s.platform import RUNNER_NAMESPACE

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
IMAGE = "ghcr.io/actions/actions-runner:2.329.0"
# Commands that talk to MLflow: a job running one of them must run inside the VPC.
MLFLOW_COMMANDS = ("mlp model gate", "mlp release record", "services.registry.client", "mlp drift check")
ENV_EXPR = re.compile(r"^\$\{\{ inputs\.environment \|\| '([a-z]+)' \}\}$")


def _jobs(workflow: str) -> dict[str, dict[str, Any]]:
    jobs: dict[str, dict[str, Any]] = yaml.safe_load((WORKFLOWS / workflow).read_text())["jobs"]
    return jobs


def _talks_to_mlflow(job: dict[str, Any]) -> bool:
    return any(cmd in str(step.get("run", "")) for step in job["steps"] for cmd in MLFLOW_COMMANDS)


@pytest.mark.parametrize(
    ("workflow", "kind"),
    [("model-release.yml", contracts.RELEASE_RUNNERS), ("drift.yml", contracts.DRIFT_RUNNERS)],
)
def test_every_job_that_talks_to_mlflow_runs_on_its_environments_scale_set(workflow: str, kind: str) -> None:
    """`runs-on` is the scale set `core.contracts.runner_scale_set(kind, <the job's environment>)` registers: the
    same expression as the job's `environment`, so a prod job can only land on prod's runners."""
    mlflow_jobs = {name: job for name, job in _jobs(workflow).items() if _talks_to_mlflow(job)}
    assert mlflow_jobs, f"{workflow}: no job runs an MLflow command; the command list is stale"
    for name, job in mlflow_jobs.items():
        env_default = ENV_EXPR.match(job["environment"])
        assert env_default, f"{workflow} {name}: environment {job['environment']!r}"
        prefix, sep, expr = str(job["runs-on"]).partition("-${{")
        assert sep and f"${{{{{expr}" == job["environment"], f"{workflow} {name}: runs-on {job['runs-on']!r}"
        for environment in (env_default.group(1), *ENVIRONMENTS):
            assert f"{prefix}-{environment}" == contracts.runner_scale_set(kind, environment)


def test_the_github_hosted_jobs_never_touch_mlflow() -> None:
    """Image builds stay on GitHub-hosted runners (Docker there, none in the cluster's runners); they hold no
    registry credential and run no MLflow command."""
    for workflow in ("model-release.yml", "drift.yml"):
        for name, job in _jobs(workflow).items():
            if str(job["runs-on"]).startswith("ubuntu-"):
                assert not _talks_to_mlflow(job), f"{workflow} {name}"
                assert "MLFLOW_TRACKING" not in yaml.safe_dump(job), f"{workflow} {name}"


def test_no_job_on_the_cluster_runners_assumes_a_role_through_oidc() -> None:
    """AWS access there is the runner pod's IRSA role; an OIDC role in such a job would be a second identity."""
    for workflow in ("model-release.yml", "drift.yml"):
        for name, job in _jobs(workflow).items():
            if str(job["runs-on"]).startswith("mlp-"):
                uses = [str(s.get("uses", "")) for s in job["steps"]]
                assert not any("configure-aws-credentials" in u for u in uses), f"{workflow} {name}"


def test_the_checker_refuses_a_job_on_a_hosted_runner() -> None:
    job = copy.deepcopy(_jobs("model-release.yml")["gate"])
    job["runs-on"] = "ubuntu-24.04"
    assert _talks_to_mlflow(job) and not str(job["runs-on"]).partition("-${{")[1]


@pytest.mark.parametrize("rk", runners.KINDS, ids=lambda rk: rk.kind)
def test_runner_pods_are_restricted_and_read_the_registry_as_their_own_user(rk: runners.RunnerKind) -> None:
    template = runners.runner_template(rk, image=IMAGE)
    wrapped = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": rk.kind}, "template": template}
    assert validate.validate_manifest(wrapped) == []
    spec = template["spec"]
    (runner,) = spec["containers"]
    sc = runner["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["privileged"] is False and sc["runAsNonRoot"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["seccompProfile"]["type"] == "RuntimeDefault"
    assert not any(k.startswith("host") for k in spec), "no host namespaces"
    assert all("hostPath" not in v for v in spec["volumes"])
    assert spec["serviceAccountName"] == rk.identity.service_account
    assert spec["automountServiceAccountToken"] is rk.kube_api
    env = {e["name"]: e for e in runner["env"]}
    assert env[contracts.MLFLOW_USERNAME_VAR]["value"] == rk.registry_user
    password = env[contracts.MLFLOW_PASSWORD_VAR]
    assert "value" not in password
    assert password["valueFrom"]["secretKeyRef"]["name"] == f"registry-{rk.registry_user}"
    assert env["MLFLOW_TRACKING_URI"]["value"].startswith("http://mlflow.mlflow.svc.cluster.local:")
    assert rk.registry_user != contracts.REGISTRY_ADMIN
    assert template["metadata"]["labels"]["mlp.io/runner"] == rk.kind


def test_only_the_release_runner_acts_as_the_release_bot() -> None:
    assert runners.RELEASE.registry_user == contracts.REGISTRY_RELEASE_BOT
    assert runners.DRIFT.registry_user == contracts.REGISTRY_READER  # the drift check only reads


def test_scale_set_values_name_the_pre_defined_secret_and_no_credential() -> None:
    values = runners.scale_set_values(
        runners.RELEASE, environment="prod", github_repository="example-org/ml-platform", image=IMAGE
    )
    assert values["runnerScaleSetName"] == "mlp-release-prod"
    assert values["githubConfigSecret"] == runners.GITHUB_APP_SECRET  # a Secret name, not a map of credentials
    assert values["githubConfigUrl"] == "https://github.com/example-org/ml-platform"
    assert values["minRunners"] == 0 and values["maxRunners"] >= 1
    assert values["controllerServiceAccount"] == {
        "namespace": runners.CONTROLLER_NAMESPACE,
        "name": runners.controller_values()["serviceAccount"]["name"],
    }
    assert "containerMode" not in values  # no Docker-in-Docker, no privileged sidecar
    assert runners.controller_values()["flags"]["watchSingleNamespace"] == RUNNER_NAMESPACE


@pytest.mark.parametrize(
    ("kind", "plural"),
    [
        ("NetworkPolicy", "networkpolicies"),
        ("Gateway", "gateways"),
        ("GatewayClass", "gatewayclasses"),
        ("PodDisruptionBudget", "poddisruptionbudgets"),
        ("Ingress", "ingresses"),
        ("ConfigMap", "configmaps"),
    ],
)
def test_resource_names_follow_kubernetes_pluralisation(kind: str, plural: str) -> None:
    assert runners.resource(kind) == plural


def _allowed(rbac: list[dict[str, Any]], group: str, res: str, ns: str | None, name: str, verb: str) -> bool:
    roles = [m for m in rbac if m["kind"] == ("Role" if ns else "ClusterRole")]
    for role in roles:
        if ns and role["metadata"]["namespace"] != ns:
            continue
        for r in role["rules"]:
            names = r.get("resourceNames")
            if (
                group in r["apiGroups"]
                and res in r["resources"]
                and verb in r["verbs"]
                and (not names or name in names)
            ):
                return True
    return False


def test_the_release_runner_may_apply_exactly_what_a_release_renders() -> None:
    shapes = runners.release_shapes()
    rbac = runners.serving_rbac(shapes)
    for m in shapes:
        group, res = m["apiVersion"].rpartition("/")[0], runners.resource(m["kind"])
        ns, name = m["metadata"].get("namespace"), m["metadata"]["name"]
        assert _allowed(rbac, group, res, ns, name, "patch"), f"cannot apply {m['kind']} {ns}/{name}"
        assert _allowed(rbac, group, res, ns, name, "get")
    rendered = {(m["apiVersion"].rpartition("/")[0], runners.resource(m["kind"])) for m in shapes}
    for role in (m for m in rbac if m["kind"] in ("Role", "ClusterRole")):
        for r in role["rules"]:
            assert "*" not in r["apiGroups"] + r["resources"] + r["verbs"]
            assert not {"delete", "deletecollection", "escalate", "bind", "impersonate"} & set(r["verbs"])
            for res in r["resources"]:
                key = (r["apiGroups"][0], res)
                assert key in rendered or (key in runners.ROLLOUT_PROGRESS and set(r["verbs"]) == set(runners.READ))
                assert res != "secrets", "the release never reads a Secret"
    # The serving namespace exists before the first release: the runner patches it, never creates a namespace.
    assert _allowed(rbac, "", "namespaces", None, SERVING_NAMESPACE, "patch")
    assert not _allowed(rbac, "", "namespaces", None, "kube-system", "patch")
    assert not _allowed(rbac, "", "namespaces", None, SERVING_NAMESPACE, "create")
    bindings = [m for m in rbac if m["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    assert {(s["namespace"], s["name"]) for b in bindings for s in b["subjects"]} == {
        (RUNNER_NAMESPACE, runners.RELEASE.identity.service_account)
    }


def test_the_rights_follow_the_render() -> None:
    """A new kind in the release's render is a new rule, not a forgotten one."""
    extra = {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "x", "namespace": SERVING_NAMESPACE}}
    rbac = runners.serving_rbac([*runners.release_shapes(), extra])
    assert _allowed(rbac, "", "limitranges", SERVING_NAMESPACE, "x", "create")
    assert not _allowed(
        runners.serving_rbac(runners.release_shapes()), "", "limitranges", SERVING_NAMESPACE, "x", "get"
    )


def _secrets() -> list[dict[str, Any]]:
    return runners.external_secrets(
        registry_key="mlp-dev/mlflow/registry-users",
        github_app_key="mlp-dev/github/runner-app",
        webhook_key="mlp-dev/release/webhook-receiver",
        webhook_secret="mlp-webhook-receiver",
    )


def test_the_platform_store_and_its_external_secrets_are_schema_valid() -> None:
    manifests = [runners.platform_store("us-east-1"), *_secrets()]
    assert [p for m in manifests for p in validate.validate_manifest(m)] == []
    broken = copy.deepcopy(manifests[0])
    broken["spec"]["provider"]["aws"]["auth"]["jwt"]["serviceAcountRef"] = broken["spec"]["provider"]["aws"]["auth"][
        "jwt"
    ].pop("serviceAccountRef")
    assert validate.validate_manifest(broken), "a misspelt field must be refused"


def test_each_namespace_gets_only_the_registry_users_its_pods_use() -> None:
    secrets = _secrets()
    registry = {
        (m["metadata"]["namespace"], m["metadata"]["name"]) for m in secrets if "registry-" in m["metadata"]["name"]
    }
    assert registry == {
        (SERVING_NAMESPACE, "registry-mlp-model-server"),
        (SERVING_NAMESPACE, "registry-mlp-reader"),
        (RUNNER_NAMESPACE, "registry-mlp-release-bot"),
        (RUNNER_NAMESPACE, "registry-mlp-reader"),
    }
    for m in secrets:
        assert m["spec"]["secretStoreRef"] == {"name": runners.PLATFORM_STORE, "kind": "ClusterSecretStore"}
        if m["metadata"]["name"].startswith("registry-"):
            (item,) = m["spec"]["data"]  # one password per Secret, never the admin's
            assert item["remoteRef"]["property"] != contracts.REGISTRY_USERS[contracts.REGISTRY_ADMIN]
    store = runners.platform_store("us-east-1")
    assert store["spec"]["conditions"] == [{"namespaces": [SERVING_NAMESPACE, RUNNER_NAMESPACE]}]
