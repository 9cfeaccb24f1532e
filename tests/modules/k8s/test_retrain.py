"""The retraining Job as rendered: the retraining's own command with the alert's lineage, one Job per alert, the
release runner's identity without a Kubernetes token, restricted, no retry; it reaches MLflow and HTTPS only, and
the release runner may start and follow it, nothing more. Run in a container:
tests/integration/test_rehearsal_retrain.py."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core import contracts, env
from modules import runners
from modules.k8s import platform
from modules.k8s.retrain import RetrainJobProps, retrain_job
from modules.k8s.validate import validate_manifest
from modules.workload_roles import RELEASE_RUNNER
from pipelines.retrain.job import parse
from tests.modules.k8s.netpol_eval import Outside, Pod, allowed
from tests.modules.k8s.test_network import MLFLOW
from tests.modules.k8s.test_platform import MODEL_POD, POLICIES
from tests.modules.test_platform_checkov import RETRAIN_PROPS


def _container(props: RetrainJobProps = RETRAIN_PROPS) -> dict:
    return retrain_job(props)["spec"]["template"]["spec"]["containers"][0]


def test_schema_valid_and_runs_the_retraining_job_entry_with_the_alerts_lineage() -> None:
    job = retrain_job(RETRAIN_PROPS)
    assert validate_manifest(job) == []
    container = _container()
    assert container["command"] == ["python", "-m", "pipelines.retrain.job"]
    args = parse(container["args"])  # the entry point's own parser accepts what is rendered
    assert (args.parent, args.trigger, args.alert_fingerprint, args.drift_score, args.candidate) == (
        "3",
        "drift",
        "0123456789abcdef",
        "0.9",
        True,
    )
    assert str(args.scratch).startswith(container["volumeMounts"][0]["mountPath"]), "scratch on the emptyDir"


def test_one_job_per_alert_and_manual_jobs_by_their_inputs() -> None:
    again = retrain_job(RETRAIN_PROPS)["metadata"]["name"]
    assert again == retrain_job(RETRAIN_PROPS)["metadata"]["name"]  # a re-delivered alert names the same Job
    other = RETRAIN_PROPS.model_copy(update={"alert_fingerprint": "fedcba9876543210"})
    assert retrain_job(other)["metadata"]["name"] != again
    manual = RETRAIN_PROPS.model_copy(update={"trigger": "manual", "alert_fingerprint": "", "drift_score": ""})
    assert "--alert-fingerprint" not in _container(manual)["args"]
    assert len(retrain_job(manual)["metadata"]["name"]) <= 63


@pytest.mark.parametrize(
    ("update", "named"),
    [
        ({"alert_fingerprint": ""}, "alert_fingerprint"),
        ({"trigger": "manual"}, "use trigger drift"),
        ({"alert_fingerprint": "not-hex"}, "alert_fingerprint"),
        ({"parent_version": 0}, "parent_version"),
        ({"drift_score": "1; rm -rf /"}, "drift_score"),
    ],
)
def test_bad_inputs_are_refused_naming_the_field(update: dict, named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        RetrainJobProps(**{**RETRAIN_PROPS.model_dump(), **update})


def test_the_release_runners_identity_signs_with_kms_and_nothing_mounts_a_token() -> None:
    job = retrain_job(RETRAIN_PROPS)
    pod = job["spec"]["template"]["spec"]
    assert job["metadata"]["namespace"] == RELEASE_RUNNER.namespace
    assert pod["serviceAccountName"] == RELEASE_RUNNER.service_account
    assert pod["automountServiceAccountToken"] is False
    values = {e["name"]: e.get("value") for e in _container()["env"]}
    assert values[env.ARTIFACT_SIGNING_KMS_KEY.name] == RETRAIN_PROPS.signing_kms_key
    assert values[env.ARTIFACT_PUBLIC_KEY.name] == RETRAIN_PROPS.artifact_public_key
    assert values[contracts.MLFLOW_USERNAME_VAR] == contracts.REGISTRY_RELEASE_BOT
    password = next(e for e in _container()["env"] if e["name"] == contracts.MLFLOW_PASSWORD_VAR)
    assert "value" not in password and password["valueFrom"]["secretKeyRef"]["name"] == "registry-mlp-release-bot"
    assert job["spec"]["backoffLimit"] == 0, "a failed retraining is not retried: the next alert is"
    assert _container()["securityContext"]["readOnlyRootFilesystem"] is True


def test_the_job_reaches_mlflow_and_https_and_not_the_model_servers() -> None:
    labels = retrain_job(RETRAIN_PROPS)["spec"]["template"]["metadata"]["labels"]
    job = Pod(RELEASE_RUNNER.namespace, labels)
    assert allowed(POLICIES, job, MLFLOW, 5000)
    assert allowed(POLICIES, job, Outside("198.51.100.7"), 443)  # STS, KMS
    assert not allowed(POLICIES, job, MODEL_POD, 3000)
    assert labels["app.kubernetes.io/name"] == platform.RETRAIN_POD_NAME


def test_the_release_runner_may_start_and_follow_the_job_and_nothing_more() -> None:
    rbac = runners.retrain_rbac()
    (role,) = [m for m in rbac if m["kind"] == "Role"]
    assert role["metadata"]["namespace"] == RELEASE_RUNNER.namespace
    verbs = {(r["apiGroups"][0], res): set(r["verbs"]) for r in role["rules"] for res in r["resources"]}
    assert verbs == {
        ("batch", "jobs"): {"create", "get", "list", "watch"},
        ("", "pods"): {"get", "list", "watch"},
        ("", "pods/log"): {"get"},
    }
    (binding,) = [m for m in rbac if m["kind"] == "RoleBinding"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": RELEASE_RUNNER.service_account, "namespace": RELEASE_RUNNER.namespace}
    ]
