"""Rendered manifests for the k8s tests: both modes, CPU and GPU, from the repo's policy."""

from __future__ import annotations

from typing import Any

import pytest

from core import images
from core.policy import CatalogueModel, Policy, policy
from modules.k8s import RenderProps, ServingProps, render_all

MODEL = "review-polarity-classifier"
WEIGHTS = {3: 90, 4: 10}
# A non-critical model beside the repository's catalogue: it scales to zero behind the KEDA HTTP interceptor.
IDLE_MODEL = "review-topic-classifier"
IDLE_VERSION = 5


def with_models(base: Policy, *models: CatalogueModel) -> Policy:
    """The policy with `models` added to its catalogue, validated as policy.yaml would be."""
    raw = base.model_dump()
    raw["models"] += [m.model_dump() for m in models]
    return Policy.model_validate(raw)


def catalogue_policy() -> Policy:
    idle = CatalogueModel(
        name=IDLE_MODEL,
        task="classify",
        runtime="onnxruntime",
        criticality="non-critical",
        description="Topic of a review, asked for a few times a day",
        overrides={"slo": {"latency_p95_ms": 4000, "latency_p99_ms": 8000}},
    )
    return with_models(policy(), idle)


def props(
    mode: str = "deployments", gpu: bool = False, weights: dict[int, int] | None = None, model: str = MODEL
) -> RenderProps:
    return RenderProps(
        model_name=model,
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


@pytest.fixture(scope="session")
def scale_to_zero() -> dict[str, list[dict[str, Any]]]:
    """The non-critical model of `catalogue_policy()`, one live version."""
    return render_all(props(model=IDLE_MODEL, weights={IDLE_VERSION: 100}), catalogue_policy())


ALL_VARIANTS = [("deployments", False), ("deployments", True), ("rollout", False), ("rollout", True)]
