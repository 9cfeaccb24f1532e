"""What the executor drives, as small protocols, and the wiring of their real implementations.

Unit tests pass fakes (tests/pipelines/release/fakes.py); `local_deps()` wires the real local runtime: serving through
`infra.local.serving` (start a version's server, then route to it), the MLflow registry, the promotion gate,
Prometheus, the Pushgateway, and the shadow phase's mirror and inference-log reader.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from core import contracts, endpoints, env
from core.canary import MetricSource, PrometheusSource
from core.clock import Clock, SystemClock
from infra.local.paths import model_cache
from infra.local.serving import LocalServing
from pipelines.shadow.compare import Answer


class Serving(Protocol):
    def start(self, version: int) -> None: ...  # idempotent; returns when the server is ready

    def stop(self, version: int, drain_seconds: float) -> None: ...  # idempotent

    def is_live(self, version: int) -> bool: ...

    def set_weights(self, weights: dict[int, int]) -> None: ...

    def current_weights(self) -> dict[int, int]: ...

    def stable_version(self) -> int | None: ...


class Registry(Protocol):
    def resolve(self, ref: str) -> int: ...  # a version number from a number or an alias; fails if absent

    def get_alias(self, alias: str) -> int | None: ...

    def set_alias(self, alias: str, version: int) -> None: ...

    def tag(self, version: int, key: str, value: str) -> None: ...

    def pull(self, version: int) -> Path: ...  # the version's model directory on local disk (fails if absent)


@dataclass(frozen=True)
class GateOutcome:
    passed: bool
    report_path: str | None
    failures: list[str]
    retrained: bool = False  # the version came from a retraining (its failure raises a ticket, not a retry)


class Gate(Protocol):
    def run(self, version: int, model_dir: Path) -> GateOutcome: ...  # model_dir: what `Registry.pull` fetched


class Notifier(Protocol):
    def analysis_failed(self, model_name: str, version: int, failed: bool) -> None: ...

    def retrained_gate_failed(self, model_name: str, version: int, failed: bool) -> None: ...

    # The shadow phase's measures and whether they failed the candidate (pushed once per candidate version).
    def quality_measured(
        self, model_name: str, version: int, stable: int, measures: dict[str, float | None], failed: bool
    ) -> None: ...


class Shadow(Protocol):
    """The shadow phase's two halves: mirror stable's traffic to the candidate, and read both versions' answers."""

    def start(self, version: int, share_percent: int) -> None: ...  # idempotent; mirroring once it returns

    def stop(self) -> None: ...  # idempotent

    def answers(self, version: int, since: datetime, until: datetime) -> list[Answer]: ...  # the version's logged


@dataclass
class Deps:
    serving: Serving
    registry: Registry
    gate: Gate
    metrics: MetricSource
    notifier: Notifier
    clock: Clock
    shadow: Shadow


# ---------------------------------------------------------------- local implementations (serving: LocalServing)


class MlflowRegistry:
    def __init__(self, model_name: str) -> None:
        self.model_name = model_name

    def get_alias(self, alias: str) -> int | None:
        from services.registry import client

        return client.get_alias(alias, self.model_name)

    def set_alias(self, alias: str, version: int) -> None:
        from services.registry import client

        client.set_alias(alias, version, self.model_name)

    def tag(self, version: int, key: str, value: str) -> None:
        from services.registry import client

        client.tag_version(version, key, value, self.model_name)

    def resolve(self, ref: str) -> int:
        from services.registry import client

        return client.resolve_version(ref, self.model_name)

    def pull(self, version: int) -> Path:
        from services.registry import client

        return client.download_version(version, self.model_name, cache_root=model_cache())


class LocalShadow:
    """Mirroring by the local gateway and its relay (`infra.local.serving.start_shadow`); answers from the inference
    log in the local S3 API, where every model server writes them."""

    def __init__(self, model_name: str) -> None:
        self.model_name = model_name

    def start(self, version: int, share_percent: int) -> None:
        from infra.local import serving

        serving.start_shadow(version, share_percent)

    def stop(self) -> None:
        from infra.local import serving

        serving.stop_shadow()

    def answers(self, version: int, since: datetime, until: datetime) -> list[Answer]:
        from infra.local.s3 import client
        from pipelines.drift.logs import Window
        from pipelines.shadow.logs import read_answers

        bucket = env.INFERENCE_LOG_BUCKET.get() or contracts.INFERENCE_LOG_BUCKET
        return read_answers(client(), bucket, self.model_name, version, Window(since, until))


class PromotionGate:
    def __init__(self, champion_alias: str) -> None:
        self.champion_alias = champion_alias

    def run(self, version: int, model_dir: Path) -> GateOutcome:
        from pipelines.gate import gate_version

        report = gate_version(version, model_dir, champion_alias=self.champion_alias)
        return GateOutcome(
            report.passed, report.report_path, [c.name for c in report.failures()], retrained=report.retrained
        )


class RagReleaseGate:
    """A RAG version's release gate: its quality was gated at registration; `pipelines.rag.release.check_release`
    checks the pulled build is that one and that its pins are the served models."""

    def __init__(self, tags: Callable[[int], dict[str, str]], served: Callable[[str], int | None]) -> None:
        self.tags = tags  # a version's registry tags
        self.served = served  # the version a catalogue model serves, None when none is

    def run(self, version: int, model_dir: Path) -> GateOutcome:
        from pipelines.rag.release import check_release
        from services.model_runtime.rag import RagConfig

        failures = check_release(RagConfig.read(model_dir), self.tags(version), self.served)
        return GateOutcome(passed=not failures, report_path=None, failures=failures)


class Pushgateway:
    """Pushes `mlp_release_analysis_failed{model_name,model_version}` (1 on a failed analysis, 0 at start) and
    `mlp_retrained_candidate_gate_failed{model_name,model_version}` (the last retrained candidate's gate)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def retrained_gate_failed(self, model_name: str, version: int, failed: bool) -> None:
        from core.promql import RETRAINED_GATE_FAILED

        # One group per model: the next retrained candidate's gate replaces this one's result.
        self._push(
            RETRAINED_GATE_FAILED,
            "1 when the last retrained candidate of the model failed the promotion gate",
            model_name,
            version,
            failed,
            job="retraining",
            grouping_key={"model_name": model_name},
        )

    def analysis_failed(self, model_name: str, version: int, failed: bool) -> None:
        from core.promql import RELEASE_ANALYSIS_FAILED

        # One group per version: a new release of another version never overwrites this one's result.
        self._push(
            RELEASE_ANALYSIS_FAILED,
            "1 when the last canary analysis of this version failed and the release rolled back",
            model_name,
            version,
            failed,
            job="release",
            grouping_key={"model_name": model_name, "model_version": str(version)},
        )

    def quality_measured(
        self, model_name: str, version: int, stable: int, measures: dict[str, float | None], failed: bool
    ) -> None:
        from pipelines.shadow.export import push_quality

        push_quality(self.url, model_name, version, stable, measures, failed)

    def _push(
        self, metric: str, doc: str, model_name: str, version: int, failed: bool, job: str, grouping_key: dict[str, str]
    ) -> None:
        from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

        reg = CollectorRegistry()
        gauge = Gauge(metric, doc, ["model_name", "model_version"], registry=reg)
        gauge.labels(model_name=model_name, model_version=str(version)).set(1 if failed else 0)
        push_to_gateway(self.url, job=job, registry=reg, grouping_key=grouping_key, timeout=10)


class NoShadow:
    """A model without a shadow phase (the policy refuses one for it): mirroring is never started."""

    def __init__(self, model_name: str) -> None:
        self.model_name = model_name

    def start(self, version: int, share_percent: int) -> None:
        raise RuntimeError(f"{self.model_name} has no shadow phase (policy canary.shadow.enabled is false for it)")

    def stop(self) -> None:
        return None

    def answers(self, version: int, since: datetime, until: datetime) -> list[Answer]:
        return []


def local_deps(model_name: str) -> Deps:
    """The executor's dependencies on this machine for the catalogue model `model_name`, by its task: the default
    classifier's versioned model servers, or a RAG model's own servers. Other tasks are released by replacement."""
    from core.policy import policy

    task = policy().model(model_name).task
    if task == "classify":
        return _classifier_deps(model_name)
    if task == "rag":
        return _rag_deps(model_name)
    raise ValueError(
        f"{model_name} is a {task} model: it is served one version at a time and replaced after its own gate "
        "(`mlp rag serve-embedder`, `mlp model register-generator`), not released through the canary"
    )


def _shared(model_name: str) -> dict[str, Any]:
    return {
        "registry": MlflowRegistry(model_name),
        "metrics": PrometheusSource(endpoints.prometheus_url()),
        "notifier": Pushgateway(endpoints.pushgateway_url()),
        "clock": SystemClock(),
    }


def _classifier_deps(model_name: str) -> Deps:
    from core.policy import policy

    return Deps(
        serving=LocalServing(),
        gate=PromotionGate(policy().release.champion_alias),
        shadow=LocalShadow(model_name),
        **_shared(model_name),
    )


def _rag_deps(model_name: str) -> Deps:
    from core.policy import policy
    from infra.local import generators
    from infra.local.serving import CatalogueServing
    from pipelines.rag.local import rag_env, version_folder
    from services.model_runtime.rag import RagConfig
    from services.registry import client

    def server_env(version: int) -> dict[str, str]:
        return rag_env(policy(), RagConfig.read(version_folder(model_name, version)))

    return Deps(
        serving=CatalogueServing(model_name, server_env),
        gate=RagReleaseGate(lambda v: dict(client.get_version(v, model_name).tags), generators.serving_version),
        shadow=NoShadow(model_name),
        **_shared(model_name),
    )
