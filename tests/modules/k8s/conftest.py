"""Rendered manifests for the k8s tests: both modes, CPU and GPU, from the repo's policy."""

from __future__ import annotations

from typing import Any

import pytest

from core import images
from core.policy import Policy, policy
from modules.k8s import RenderProps, ServingProps, render_all

MODEL = "review-polarity-classifier"
WEIGHTS = {3: 90, 4: 10}


def props(mode: str = "deployments", gpu: bool = False, weights: dict[int, int] | None = None) -> RenderProps:
    return RenderProps(
        model_name=MODEL,
        weights=weights or WEIGHTS,
        mode=mode,  # type: ignore[arg-type]
        serving=ServingProps(
            image_repository=f"123456789012.dkr.ecr.us-east-1.amazonaws.com/mlp-dev/{images.model_server(gpu)}",
            image_tag="0a1b2c3",
            mlflow_tracking_uri="http://mlflow.mlflow.svc:5000",
            irsa_role_arn="arn:aws:iam::123456789012:role/mlp-model-server",
            inference_log_bucket="mlp-dev-inference-logs-123456789012",
            gpu=gpu,
        ),
    )


def by_kind(rendered: dict[str, list[dict[str, Any]]], kind: str) -> list[dict[str, Any]]:
    return [m for ms in rendered.values() for m in ms if m["kind"] == kind]


def named(manifests: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (found,) = [m for m in manifests if m["metadata"]["name"] == name]
    return found


@pytest.fixture(scope="session")
def pol() -> Policy:
    return policy()


@pytest.fixture(scope="session")
def deployments() -> dict[str, list[dict[str, Any]]]:
    return render_all(props())


@pytest.fixture(scope="session")
def rollout() -> dict[str, list[dict[str, Any]]]:
    return render_all(props("rollout"))


@pytest.fixture(scope="session")
def gpu() -> dict[str, list[dict[str, Any]]]:
    return render_all(props(gpu=True))


ALL_VARIANTS = [("deployments", False), ("deployments", True), ("rollout", False), ("rollout", True)]
