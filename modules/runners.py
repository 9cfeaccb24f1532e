"""GitHub Actions runners inside the cluster for the workflow jobs that talk to MLflow: actions-runner-controller
(ARC) runner scale sets, one per kind and environment (`core.contracts.runner_scale_set`). The gate, the rollout
and the drift check reach MLflow on its ClusterIP Service, so MLflow has no public endpoint
(docs/decisions/0143-release-jobs-on-in-cluster-runners.md).

Least privilege, per kind of runner:
- its own ServiceAccount with its own IRSA role (modules/workload_roles.py): the release runner may read image
  digests in ECR, the drift runner what the drift job may; no stored AWS key;
- its own registry identity, by `secretKeyRef` to `registry-<user>` (the release bot, the reader), copied from
  Secrets Manager by External Secrets into the runners' namespace;
- Kubernetes rights only for the release runner, computed from what `mlp render k8s` renders (`serving_rbac`): it
  can apply exactly those kinds in those namespaces and read the rollout's progress, nothing else;
- the runners' namespace is default-deny both ways (modules/k8s/platform.py); egress is DNS, MLflow, the API server
  (release), the Pushgateway (drift) and HTTPS (GitHub, STS, ECR, PyPI).

The GitHub App the scale sets register with lives in Secrets Manager (modules/operator_secrets.py); External
Secrets copies it into the Secret the chart reads (`githubConfigSecret`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from core import contracts, images
from core.policy import policy
from core.promql import SERVING_NAMESPACE
from modules import cluster_services as cs
from modules import operator_secrets, registry_auth
from modules.k8s import common as c
from modules.k8s.platform import ARC_CONTROLLER_NAMESPACE, RUNNER_LABEL
from modules.k8s.props import RenderProps, ServingProps, WebhookProps
from modules.k8s.render import render_all
from modules.workload_roles import DRIFT_RUNNER, PLATFORM_SECRETS, RELEASE_RUNNER, RUNNER_NAMESPACE, WorkloadIdentity

CONTROLLER_NAMESPACE = ARC_CONTROLLER_NAMESPACE  # infra/config/versions.yaml arc_controller
CONTROLLER_SERVICE_ACCOUNT = "arc-controller"
GITHUB_APP_SECRET = "github-app"  # the Secret in the runners' namespace the scale sets' `githubConfigSecret` names
PLATFORM_STORE = "platform-secrets"  # the ClusterSecretStore of the serving and runner namespaces
RUNNER_UID = 1001  # the `runner` user of the actions-runner image
WORK_DIR = "/home/runner/_work"
SYSTEM_POOL = c.SYSTEM_NODE_SELECTOR


def mlflow_service_url() -> str:
    """MLflow's in-cluster address (its chart's Service: the release name, in its namespace)."""
    return f"http://{cs.MLFLOW_RELEASE}.{cs.MLFLOW_NAMESPACE}.svc.cluster.local:{cs.MLFLOW_PORT}"


@dataclass(frozen=True)
class RunnerKind:
    kind: str  # core.contracts.RELEASE_RUNNERS | DRIFT_RUNNERS
    registry_user: str
    identity: WorkloadIdentity
    max_runners: int  # jobs of this kind at once; more wait in GitHub's queue
    kube_api: bool  # whether its jobs call the Kubernetes API (only the rollout does)
    cpu: str
    memory: str


# The release: gate (loads and scores the model: the CPU and memory), rollout and record. Two at once: one release
# per model runs at a time (the workflow's concurrency group), so two is one release and one other model's gate.
RELEASE = RunnerKind(contracts.RELEASE_RUNNERS, contracts.REGISTRY_RELEASE_BOT, RELEASE_RUNNER, 2, True, "1", "4Gi")
DRIFT = RunnerKind(contracts.DRIFT_RUNNERS, contracts.REGISTRY_READER, DRIFT_RUNNER, 1, False, "500m", "2Gi")
KINDS = (RELEASE, DRIFT)


def _restricted_container() -> dict[str, Any]:
    # The runner image runs as `runner` (1001). Its root filesystem stays writable: the runner updates itself and
    # actions unpack tools under the home directory; `restricted` Pod Security does not require a read-only root.
    return {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "runAsNonRoot": True,
        "runAsUser": RUNNER_UID,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def runner_template(rk: RunnerKind, *, image: str) -> dict[str, Any]:
    """The runner pods' PodTemplateSpec (the chart's `template`): no Docker (image builds stay on GitHub-hosted
    runners), the kind's identity, MLflow's in-cluster address and the key that verifies downloaded versions."""
    artifact_key = c.artifact_key_env()
    artifact_key["valueFrom"]["configMapKeyRef"]["optional"] = True  # absent: the gate refuses, naming it
    return {
        "metadata": {"labels": {RUNNER_LABEL: rk.kind, "app.kubernetes.io/part-of": c.PART_OF}},
        "spec": {
            "serviceAccountName": rk.identity.service_account,
            # The pod's Kubernetes token only where a job uses it; IRSA's token is mounted either way.
            "automountServiceAccountToken": rk.kube_api,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": RUNNER_UID,
                "fsGroup": RUNNER_UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "nodeSelector": SYSTEM_POOL,
            "containers": [
                {
                    "name": "runner",
                    "image": image,
                    "imagePullPolicy": "Always",
                    "command": ["/home/runner/run.sh"],
                    "env": [
                        {"name": "MLFLOW_TRACKING_URI", "value": mlflow_service_url()},
                        *c.registry_credential_env(rk.registry_user),
                        artifact_key,
                    ],
                    "resources": {
                        "requests": {"cpu": rk.cpu, "memory": rk.memory},
                        "limits": {"cpu": rk.cpu, "memory": rk.memory},
                    },
                    "securityContext": _restricted_container(),
                    "volumeMounts": [{"name": "work", "mountPath": WORK_DIR}],
                }
            ],
            "volumes": [{"name": "work", "emptyDir": {"sizeLimit": "10Gi"}}],
        },
    }


def scale_set_values(rk: RunnerKind, *, environment: str, github_repository: str, image: str) -> dict[str, Any]:
    """Values of one `gha-runner-scale-set` release (keys from the chart's values.yaml, ARC 0.12)."""
    return {
        "githubConfigUrl": f"https://github.com/{github_repository}",
        "githubConfigSecret": GITHUB_APP_SECRET,  # a pre-defined Secret (External Secrets), never a value here
        "runnerScaleSetName": contracts.runner_scale_set(rk.kind, environment),
        "minRunners": 0,  # no idle runner: a pod exists only while a job runs
        "maxRunners": rk.max_runners,
        "controllerServiceAccount": {"namespace": CONTROLLER_NAMESPACE, "name": CONTROLLER_SERVICE_ACCOUNT},
        "template": runner_template(rk, image=image),
        # The listener pod (in the controller's namespace) long-polls GitHub for jobs of this scale set.
        "listenerTemplate": {
            "spec": {
                "nodeSelector": SYSTEM_POOL,
                "containers": [
                    {
                        "name": "listener",
                        "securityContext": _restricted_container(),
                        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
                    }
                ],
            }
        },
    }


def controller_values() -> dict[str, Any]:
    """Values of the `gha-runner-scale-set-controller` release: watches the runners' namespace only."""
    return {
        "serviceAccount": {"create": True, "name": CONTROLLER_SERVICE_ACCOUNT},
        "flags": {"logLevel": "info", "watchSingleNamespace": RUNNER_NAMESPACE},
        "podSecurityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "securityContext": {**_restricted_container(), "readOnlyRootFilesystem": True},
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        "nodeSelector": SYSTEM_POOL,
    }


# ---------------------------------------------------------------- Kubernetes rights of the release runner

APPLY = ["get", "list", "watch", "create", "patch"]  # server-side apply, `kubectl get -f`
READ = ["get", "list", "watch"]
# What `kubectl argo rollouts status/get` and the job summary read besides the applied objects.
ROLLOUT_PROGRESS = {
    ("", "pods"),
    ("apps", "replicasets"),
    ("argoproj.io", "analysisruns"),
    ("argoproj.io", "experiments"),
}
# Cluster-scoped objects the render writes that exist before the first release (created by the add-ons stack):
# patched by name only, never created by the runner.
PRE_CREATED = {("", "namespaces")}


def resource(kind: str) -> str:
    """The API resource of a kind (Kubernetes' own pluralisation): NetworkPolicy -> networkpolicies."""
    lower = kind.lower()
    if lower.endswith("y") and lower[-2:-1] not in "aeiou":
        return lower[:-1] + "ies"
    if lower.endswith("s"):
        return lower + "es"
    return lower + "s"


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def serving_rbac(rendered: Iterable[c.Manifest], identity: WorkloadIdentity = RELEASE_RUNNER) -> list[c.Manifest]:
    """Roles (per namespace) and a ClusterRole letting `identity` apply exactly the kinds in `rendered`, where they
    are rendered, and follow the rollout; bound to its ServiceAccount."""
    by_namespace: dict[str, set[tuple[str, str]]] = {}
    cluster: dict[tuple[str, str], set[str]] = {}
    for m in rendered:
        key = (_group(m["apiVersion"]), resource(m["kind"]))
        ns = m["metadata"].get("namespace")
        if ns is None:
            cluster.setdefault(key, set()).add(m["metadata"]["name"])
        else:
            by_namespace.setdefault(ns, set()).add(key)
    name = f"{identity.service_account}-apply"
    subject = {"kind": "ServiceAccount", "name": identity.service_account, "namespace": identity.namespace}
    labels = {"app.kubernetes.io/part-of": c.PART_OF}
    out: list[c.Manifest] = []
    for ns, keys in sorted(by_namespace.items()):
        rules = [_rule(group, [res], APPLY) for group, res in sorted(keys)]
        if ns == SERVING_NAMESPACE:
            rules += [_rule(group, [res], READ) for group, res in sorted(ROLLOUT_PROGRESS - keys)]
        out.append(c.manifest("rbac.authorization.k8s.io/v1", "Role", c.metadata(name, ns, labels), rules=rules))
        out.append(_binding("RoleBinding", name, ns, subject, "Role"))
    rules = []
    for (group, res), names in sorted(cluster.items()):
        rules.append(_rule(group, [res], ["get", "patch"], sorted(names)))
        if (group, res) not in PRE_CREATED:
            rules.append(_rule(group, [res], ["create"]))  # `create` cannot be limited by name (RBAC)
    out.append(c.manifest("rbac.authorization.k8s.io/v1", "ClusterRole", c.metadata(name, None, labels), rules=rules))
    out.append(_binding("ClusterRoleBinding", name, None, subject, "ClusterRole"))
    return out


RETRAIN_JOB_RIGHTS = (
    ("batch", "jobs", ["create", "get", "list", "watch"]),  # no delete: a finished Job goes by its TTL
    ("", "pods", READ),  # which pod the Job made, and how it ended (its exit code)
    ("", "pods/log", ["get"]),
)


def retrain_rbac(identity: WorkloadIdentity = RELEASE_RUNNER) -> list[c.Manifest]:
    """The release runner starts the retraining Job in its own namespace, follows it and reads its log
    (model-retrain.yml, modules/k8s/retrain.py); nothing else there."""
    name = f"{identity.service_account}-retrain"
    meta = c.metadata(name, identity.namespace, {"app.kubernetes.io/part-of": c.PART_OF})
    rules = [_rule(group, [res], list(verbs)) for group, res, verbs in RETRAIN_JOB_RIGHTS]
    subject = {"kind": "ServiceAccount", "name": identity.service_account, "namespace": identity.namespace}
    return [
        c.manifest("rbac.authorization.k8s.io/v1", "Role", meta, rules=rules),
        _binding("RoleBinding", name, identity.namespace, subject, "Role"),
    ]


def release_shapes() -> list[c.Manifest]:
    """Every object a release can apply: `mlp render k8s` in both modes, CPU and GPU, with the webhook receiver.
    Only kinds, names of cluster-scoped objects and namespaces matter here; the values are placeholders."""
    out: list[c.Manifest] = []
    for mode in ("deployments", "rollout"):
        for gpu in (False, True):
            serving = ServingProps(
                image_repository=f"000000000000.dkr.ecr.us-east-1.amazonaws.com/mlp/{images.model_server(gpu)}",
                image_tag="shape",
                mlflow_tracking_uri=mlflow_service_url(),
                irsa_role_arn="arn:aws:iam::000000000000:role/shape",
                inference_log_bucket="shape",
                gpu=gpu,
            )
            props = RenderProps(
                model_name=policy().release.default_model,
                weights={1: 90, 2: 10},
                mode=mode,
                serving=serving,
                webhook=WebhookProps(github_repository="owner/name"),
            )
            out.extend(m for ms in render_all(props).values() for m in ms)
    return out


def _rule(group: str, resources: list[str], verbs: list[str], names: list[str] | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"apiGroups": [group], "resources": list(resources), "verbs": list(verbs)}
    if names:
        rule["resourceNames"] = names
    return rule


def _binding(kind: str, name: str, namespace: str | None, subject: dict[str, str], role_kind: str) -> c.Manifest:
    ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": name}
    meta = c.metadata(name, namespace, {"app.kubernetes.io/part-of": c.PART_OF})
    return c.manifest("rbac.authorization.k8s.io/v1", kind, meta, subjects=[dict(subject)], roleRef=ref)


# ---------------------------------------------------------------- identities and secrets


def service_account(identity: WorkloadIdentity, role_arn: str) -> c.Manifest:
    meta = c.metadata(
        identity.service_account,
        identity.namespace,
        {"app.kubernetes.io/part-of": c.PART_OF},
        annotations={"eks.amazonaws.com/role-arn": role_arn},
    )
    return c.manifest("v1", "ServiceAccount", meta)


def platform_store(region: str) -> c.Manifest:
    """The ClusterSecretStore the serving and runner namespaces' ExternalSecrets read through: External Secrets
    authenticates as the `platform-secrets` ServiceAccount (IRSA), and only ExternalSecrets in those namespaces may
    use the store."""
    spec = {
        "conditions": [{"namespaces": [SERVING_NAMESPACE, RUNNER_NAMESPACE]}],
        "provider": {
            "aws": {
                "service": "SecretsManager",
                "region": region,
                "auth": {
                    "jwt": {
                        "serviceAccountRef": {
                            "name": PLATFORM_SECRETS.service_account,
                            "namespace": PLATFORM_SECRETS.namespace,
                        }
                    }
                },
            }
        },
    }
    meta = c.metadata(PLATFORM_STORE, None, {"app.kubernetes.io/part-of": c.PART_OF})
    return c.manifest("external-secrets.io/v1", "ClusterSecretStore", meta, spec=spec)


def registry_user_secret(user: str, namespace: str, remote_key: str) -> c.Manifest:
    """`registry-<user>` in `namespace`: the one password a pod of that namespace reads by secretKeyRef."""
    return registry_auth.external_secret(
        name=c.registry_secret_name(user),
        namespace=namespace,
        remote_key=remote_key,
        data={c.REGISTRY_PASSWORD_KEY: contracts.REGISTRY_USERS[user]},
        store=PLATFORM_STORE,
        store_kind="ClusterSecretStore",
    )


# Who reads the registry as whom, per namespace (the pods' `registry_credential_env`): the model servers and the drift
# CronJob in the serving namespace, the runners in theirs. Never the admin: it stays in MLflow's namespace.
REGISTRY_READERS: dict[str, tuple[str, ...]] = {
    SERVING_NAMESPACE: (contracts.REGISTRY_MODEL_SERVER, contracts.REGISTRY_READER),
    RUNNER_NAMESPACE: tuple(rk.registry_user for rk in KINDS),
}


def external_secrets(
    *, registry_key: str, github_app_key: str, webhook_key: str, webhook_secret: str
) -> list[c.Manifest]:
    """Every ExternalSecret of the serving and runner namespaces (the `*_key`s are Secrets Manager secret names)."""
    out = [registry_user_secret(u, ns, registry_key) for ns, users in REGISTRY_READERS.items() for u in users]
    out.append(
        registry_auth.external_secret(
            name=GITHUB_APP_SECRET,
            namespace=RUNNER_NAMESPACE,
            remote_key=github_app_key,
            data={p: p for p in operator_secrets.GITHUB_APP_PROPERTIES},
            store=PLATFORM_STORE,
            store_kind="ClusterSecretStore",
        )
    )
    out.append(
        registry_auth.external_secret(
            name=webhook_secret,
            namespace=SERVING_NAMESPACE,
            remote_key=webhook_key,
            data={p: p for p in operator_secrets.WEBHOOK_PROPERTIES},
            store=PLATFORM_STORE,
            store_kind="ClusterSecretStore",
        )
    )
    return out
