"""A GPU model-server pod fits the GPU node group of every environment: each label it requires is a label the
group carries (so Cluster Autoscaler can scale the group up from zero for it), and it tolerates the group's taints."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import ENVIRONMENTS, load_env
from infra.config.models import NodeGroupConfig
from modules.k8s import render_all
from tests.modules.k8s.conftest import by_kind, props

EFFECTS = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}


def matches(expression: dict[str, Any], labels: dict[str, str]) -> bool:
    value = labels.get(expression["key"])
    op = expression["operator"]
    if op == "Exists":
        return value is not None
    if op == "In":
        return value in expression["values"]
    if op == "Gt":
        return value is not None and int(value) > int(expression["values"][0])
    raise AssertionError(f"operator {op} not handled by this test")


def gpu_pod() -> dict[str, Any]:
    deployment = by_kind(render_all(props(gpu=True)), "Deployment")[0]
    return deployment["spec"]["template"]["spec"]


def schedulable(pod: dict[str, Any], group: NodeGroupConfig) -> list[str]:
    """Why the pod cannot land on a node of the group (empty: it can)."""
    why = [f"nodeSelector {k}={v}" for k, v in pod.get("nodeSelector", {}).items() if group.labels.get(k) != v]
    terms = pod.get("affinity", {}).get("nodeAffinity", {})
    for term in terms.get("requiredDuringSchedulingIgnoredDuringExecution", {}).get("nodeSelectorTerms", []):
        why += [f"affinity {e}" for e in term["matchExpressions"] if not matches(e, group.labels)]
    tolerated = {(t["key"], t.get("effect")) for t in pod.get("tolerations", [])}
    why += [f"taint {t.key}" for t in group.taints if (t.key, EFFECTS[t.effect]) not in tolerated]
    return why


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_gpu_pods_fit_the_gpu_node_group(environment: str) -> None:
    cluster = load_env(environment).cluster
    pod = gpu_pod()
    assert schedulable(pod, cluster.gpu_inference) == []
    assert schedulable(pod, cluster.cpu_inference) != []  # the requirements do select GPU nodes only


def test_a_group_without_enough_gpu_memory_is_refused() -> None:
    group = load_env(ENVIRONMENTS[0]).cluster.gpu_inference
    small = group.model_copy(update={"labels": {**group.labels, "nvidia.com/gpu.memory": "1024"}})
    assert any("gpu.memory" in reason for reason in schedulable(gpu_pod(), small))


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_pods_sharing_one_gpu_fit_its_memory(environment: str) -> None:
    """Time-slicing advertises each GPU `gpu_time_slicing_replicas` times with no memory isolation: the pods that
    can land on one GPU, each capped at `serving.gpu_memory_limit` (MLP_GPU_MEMORY_LIMIT_BYTES), must fit the card."""
    from core.policy import policy
    from modules.k8s.serving import quantity_mib

    cluster = load_env(environment).cluster
    card_mib = int(cluster.gpu_inference.labels["nvidia.com/gpu.memory"])
    per_pod_mib = quantity_mib(policy().serving.gpu_memory_limit)
    assert cluster.gpu_time_slicing_replicas * per_pod_mib <= card_mib, (
        f"{environment}: {cluster.gpu_time_slicing_replicas} pods x {per_pod_mib} MiB > {card_mib} MiB on one GPU"
    )
