"""Fakes of the executor's outside world, for the error paths and decisions unit tests pin down."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pipelines.release.deps import Deps, GateOutcome
from pipelines.release.state import Phase, ReleaseState, Trigger
from pipelines.shadow.compare import Answer

CANARY, STABLE = 7, 3
MODEL = "review-polarity-classifier"


def release_state(version: int = CANARY, phase: Phase = Phase.PENDING, kind: str = "manual") -> ReleaseState:
    """A release of `version` against STABLE with the local timings and steps [10, 100], at `phase`."""
    state = ReleaseState.new(
        MODEL, version, STABLE, Trigger(kind, "tester"), window_seconds=40, interval_seconds=10, drain_seconds=0,
        steps=[10, 100],
    )  # fmt: skip
    state.phase = phase
    return state


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)


@dataclass
class Sample:
    """One measurement's worth of numbers; None = no data for that query."""

    up: float | None = 1
    requests: float | None = 200
    error_rate: float | None = 0.0
    canary_p95: float | None = 0.020
    stable_p95: float | None = 0.020
    stable_requests: float | None = 1800
    restarts: float | None = 0


GOOD = Sample()
SLOW = Sample(canary_p95=0.050)  # 2.5 x stable
ERRORS = Sample(error_rate=0.2)
FEW = Sample(requests=5)
MISSING = Sample(up=None, requests=None, error_rate=None, canary_p95=None, stable_p95=None, stable_requests=None)
DOWN = Sample(up=0)
RESTARTED = Sample(restarts=1)  # crashed and came back between two scrapes: `up` never saw it


class ScriptedMetrics:
    """Answers the analysis queries from a script of samples, one sample per measurement (the last repeats)."""

    def __init__(self, samples: list[Sample], canary: int = CANARY, stable: int = STABLE) -> None:
        self.samples = samples
        self.canary, self.stable = canary, stable
        self.index = -1
        self.queries: list[str] = []

    def query(self, promql: str) -> float | None:
        self.queries.append(promql)
        if promql.startswith("min_over_time"):  # the first query of every measurement
            self.index += 1
        s = self.samples[min(max(self.index, 0), len(self.samples) - 1)]
        canary = f'model_version="{self.canary}"' in promql
        if promql.startswith("min_over_time"):
            return s.up
        if promql.startswith("sum(changes("):
            return s.restarts
        if promql.startswith("histogram_quantile"):
            return s.canary_p95 if canary else s.stable_p95
        if promql.startswith("("):
            return s.error_rate
        if promql.startswith("sum(increase("):
            return s.requests if canary else s.stable_requests
        raise AssertionError(f"unexpected query {promql}")

    @property
    def measurements(self) -> int:
        return self.index + 1


@dataclass
class FakeServing:
    live: set[int] = field(default_factory=lambda: {STABLE})
    weights: dict[int, int] = field(default_factory=lambda: {STABLE: 100})
    calls: list[tuple[str, Any]] = field(default_factory=list)
    fail_set_weights_to: dict[int, int] | None = None  # raise when asked for exactly this split

    def start(self, version: int) -> None:
        self.calls.append(("start", version))
        self.live.add(version)

    def stop(self, version: int, drain_seconds: float) -> None:
        self.calls.append(("stop", version))
        self.live.discard(version)

    def is_live(self, version: int) -> bool:
        return version in self.live

    def set_weights(self, weights: dict[int, int]) -> None:
        self.calls.append(("set_weights", dict(weights)))
        if self.fail_set_weights_to is not None and weights == self.fail_set_weights_to:
            raise RuntimeError("nginx reload failed (fake)")
        self.weights = dict(weights)

    def current_weights(self) -> dict[int, int]:
        return dict(self.weights)

    def stable_version(self) -> int | None:
        return max(self.weights, key=lambda v: self.weights[v]) if self.weights else None


@dataclass
class FakeRegistry:
    aliases: dict[str, int] = field(default_factory=lambda: {"champion": STABLE})
    tags: dict[int, dict[str, str]] = field(default_factory=dict)
    pulled: list[int] = field(default_factory=list)  # one entry per download
    resolved: list[str] = field(default_factory=list)  # one entry per registry lookup of a version

    def get_alias(self, alias: str) -> int | None:
        return self.aliases.get(alias)

    def set_alias(self, alias: str, version: int) -> None:
        self.aliases[alias] = version

    def tag(self, version: int, key: str, value: str) -> None:
        self.tags.setdefault(version, {})[key] = value

    def resolve(self, ref: str) -> int:
        self.resolved.append(ref)
        number = int(ref) if ref.isdigit() else self.aliases.get(ref)
        if number is None:
            raise LookupError(f"no version or alias {ref!r} (fake registry)")
        return number

    def pull(self, version: int) -> Path:
        self.pulled.append(version)
        return Path(f"/models/v{version}")


@dataclass
class FakeGate:
    passed: bool = True
    retrained: bool = False
    runs: list[int] = field(default_factory=list)
    model_dirs: list[Path] = field(default_factory=list)  # what the executor handed over (nothing fetched here)

    def run(self, version: int, model_dir: Path) -> GateOutcome:
        self.runs.append(version)
        self.model_dirs.append(model_dir)
        failures = [] if self.passed else ["accuracy above baseline (tfidf_logreg)"]
        return GateOutcome(self.passed, f"/tmp/gate-v{version}.json", failures, retrained=self.retrained)


@dataclass
class FakeNotifier:
    pushes: list[tuple[int, bool]] = field(default_factory=list)
    retrained_gates: list[tuple[int, bool]] = field(default_factory=list)
    quality: list[tuple[int, int, dict[str, float | None], bool]] = field(default_factory=list)

    def analysis_failed(self, model_name: str, version: int, failed: bool) -> None:
        self.pushes.append((version, failed))

    def retrained_gate_failed(self, model_name: str, version: int, failed: bool) -> None:
        self.retrained_gates.append((version, failed))

    def quality_measured(
        self, model_name: str, version: int, stable: int, measures: dict[str, float | None], failed: bool
    ) -> None:
        self.quality.append((version, stable, dict(measures), failed))


# What two agreeing versions log in a shadow phase: enough pairs (policy canary.quality.min_pairs), both labels.
AGREEING = [Answer(f"req-{i}", 0, "positive" if i % 2 else "negative", 0.9) for i in range(300)]


@dataclass
class FakeShadow:
    """Mirroring as a flag; each version's logged answers as given (default: STABLE and CANARY agree)."""

    answers_by_version: dict[int, list[Answer]] = field(default_factory=lambda: {STABLE: AGREEING, CANARY: AGREEING})
    mirroring: int | None = None  # the version mirrored to
    calls: list[tuple[str, Any]] = field(default_factory=list)
    fail_answers: bool = False

    def start(self, version: int, share_percent: int) -> None:
        self.calls.append(("start", version))
        self.mirroring = version

    def stop(self) -> None:
        self.calls.append(("stop", None))
        self.mirroring = None

    def answers(self, version: int, since: datetime, until: datetime) -> list[Answer]:
        assert since < until
        if self.fail_answers:
            raise RuntimeError("S3 unreachable (fake)")
        return list(self.answers_by_version.get(version, []))


def fake_deps(samples: list[Sample], gate_passes: bool = True) -> Deps:
    return Deps(
        serving=FakeServing(),
        registry=FakeRegistry(),
        gate=FakeGate(passed=gate_passes),
        metrics=ScriptedMetrics(samples),
        notifier=FakeNotifier(),
        clock=FakeClock(),
        shadow=FakeShadow(),
    )
