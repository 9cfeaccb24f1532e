"""Canary analysis: is the candidate worse than stable, judged from Prometheus?

The queries come from `core.promql.AnalysisQueries` (the same expressions the Argo Rollouts
AnalysisTemplate renders) and the thresholds from `policy.canary.analysis`. The rules, per measurement:

- canary server `up == 0` at any scrape since the last measurement -> FAIL at once (a dead canary is not "noisy");
- canary server restarted during the analysis (its start time changed) -> FAIL at once: a crash that was
  restarted between two scrapes never shows as `up == 0`;
- canary error rate > `max_error_rate` -> failed measurement;
- canary requests < `min_requests` -> INCONCLUSIVE (never a pass): too few samples to judge latency;
- canary p95 > `max_latency_ratio` x stable p95 -> failed measurement;
- any value missing (no series, NaN, Prometheus not answering) -> INCONCLUSIVE, as Argo Rollouts does.

Over a window: a measurement every `interval`; `failure_limit` failed measurements roll back at once; otherwise
the last measurement (its range covers the whole window) decides. An inconclusive window is extended up to
`max_extensions` times (`on_inconclusive: extend`) or aborted; an inconclusive release never promotes.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from core.clock import Clock, utcnow
from core.policy import CanaryAnalysis
from core.promql import PREDICT_ENDPOINT, AnalysisQueries


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    ABORTED = "aborted"  # an operator asked for it while the analysis ran


class MetricSource(Protocol):
    """Evaluates one instant PromQL query to a single number, or None when there is no data."""

    def query(self, promql: str) -> float | None: ...


class PrometheusSource:
    """The Prometheus HTTP API (`/api/v1/query`). Unreachable or empty answers are missing data, not zero."""

    def __init__(self, base_url: str, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.last_error: str | None = None

    def query(self, promql: str) -> float | None:
        url = f"{self.base_url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as resp:
                body = json.loads(resp.read())
        except (urllib.error.URLError, OSError, json.JSONDecodeError) as exc:
            self.last_error = f"Prometheus at {self.base_url} did not answer: {getattr(exc, 'reason', exc)}"
            return None
        if body.get("status") != "success":
            self.last_error = f"Prometheus rejected the query: {body.get('error', body)}"
            return None
        self.last_error = None
        result = body["data"]["result"]
        if body["data"]["resultType"] == "scalar":
            return _number(result[1])
        if not result:
            return None
        return _number(result[0]["value"][1])


def _number(text: Any) -> float | None:
    value = float(text)
    return None if math.isnan(value) or math.isinf(value) else value


@dataclass(frozen=True)
class Thresholds:
    max_latency_ratio: float
    max_error_rate: float
    min_requests: int

    @classmethod
    def from_policy(cls, analysis: CanaryAnalysis) -> Thresholds:
        return cls(analysis.max_latency_ratio, analysis.max_error_rate, analysis.min_requests)


@dataclass
class Measurement:
    """One measurement: the raw numbers, the verdict and the reasons, as recorded in the release log."""

    range_seconds: int
    canary_up_min: float | None
    canary_requests: float | None
    canary_error_rate: float | None
    canary_p95_seconds: float | None
    stable_p95_seconds: float | None
    stable_requests: float | None
    canary_restarts: float | None = None
    verdict: Verdict = Verdict.INCONCLUSIVE
    hard_failure: bool = False
    reasons: list[str] = field(default_factory=list)
    at: str = field(default_factory=utcnow)

    @property
    def latency_ratio(self) -> float | None:
        if self.canary_p95_seconds is None or not self.stable_p95_seconds:
            return None
        return self.canary_p95_seconds / self.stable_p95_seconds

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data["verdict"] = self.verdict.value
        data["latency_ratio"] = self.latency_ratio
        return data


def judge(m: Measurement, t: Thresholds) -> Measurement:
    """Apply the rules to one measurement's numbers; sets verdict, hard_failure and reasons."""
    fails: list[str] = []
    unknown: list[str] = []
    if m.canary_up_min is None:
        unknown.append("no `up` series for the canary (not scraped yet?)")
    elif m.canary_up_min < 1:
        m.verdict, m.hard_failure = Verdict.FAIL, True
        m.reasons = ["canary server was down (up == 0) during the measurement"]
        return m
    if m.canary_restarts:
        m.verdict, m.hard_failure = Verdict.FAIL, True
        m.reasons = [f"canary server restarted {m.canary_restarts:.0f} time(s) during the analysis (it crashed)"]
        return m
    if m.canary_error_rate is None:
        unknown.append("no canary error rate (no requests recorded)")
    elif m.canary_error_rate > t.max_error_rate:
        fails.append(f"canary error rate {m.canary_error_rate:.3f} > max {t.max_error_rate}")
    if m.canary_requests is None or m.canary_requests < t.min_requests:
        got = "none" if m.canary_requests is None else f"{m.canary_requests:.0f}"
        unknown.append(f"canary served {got} requests < min {t.min_requests}: too few to judge latency")
    elif m.canary_p95_seconds is None or not m.stable_p95_seconds:
        unknown.append("no p95 latency for canary or stable")
    else:
        ratio = m.canary_p95_seconds / m.stable_p95_seconds
        if ratio > t.max_latency_ratio:
            fails.append(
                f"canary p95 {m.canary_p95_seconds * 1000:.1f} ms > {t.max_latency_ratio} x stable p95 "
                f"{m.stable_p95_seconds * 1000:.1f} ms (ratio {ratio:.2f})"
            )
    if fails:
        m.verdict, m.reasons = Verdict.FAIL, fails + unknown
    elif unknown:
        m.verdict, m.reasons = Verdict.INCONCLUSIVE, unknown
    else:
        ratio_text = f"{m.latency_ratio:.2f}" if m.latency_ratio is not None else "?"
        m.verdict, m.reasons = Verdict.PASS, [f"latency ratio {ratio_text}, error rate {m.canary_error_rate}"]
    return m


def up_since(queries: AnalysisQueries, version: str, seconds: int) -> str:
    """min over the last `seconds` of the promql `up` query: a canary that died and was restarted in between
    still counts as down (an instant `up` would miss it)."""
    return f"min_over_time(({queries.up(version)})[{seconds}s:])"


def measure(
    source: MetricSource,
    model_name: str,
    canary: int,
    stable: int,
    range_seconds: int,
    up_seconds: int,
    endpoint: str = PREDICT_ENDPOINT,
) -> Measurement:
    q = AnalysisQueries(model_name=model_name, window=f"{range_seconds}s", endpoint=endpoint)
    c, s = str(canary), str(stable)
    return Measurement(
        range_seconds=range_seconds,
        canary_up_min=source.query(up_since(q, c, up_seconds)),
        canary_requests=source.query(q.request_count(c)),
        canary_error_rate=source.query(q.error_rate(c)),
        canary_p95_seconds=source.query(q.latency_p95_seconds(c)),
        stable_p95_seconds=source.query(q.latency_p95_seconds(s)),
        stable_requests=source.query(q.request_count(s)),
        canary_restarts=source.query(q.restarts(c, range_seconds)),
    )


@dataclass(frozen=True)
class AnalysisSettings:
    window_seconds: int
    interval_seconds: int
    thresholds: Thresholds
    failure_limit: int
    on_inconclusive: str  # "extend" | "abort"
    max_extensions: int

    @classmethod
    def from_policy(cls, analysis: CanaryAnalysis, window_seconds: int, interval_seconds: int) -> AnalysisSettings:
        return cls(
            window_seconds=window_seconds,
            interval_seconds=interval_seconds,
            thresholds=Thresholds.from_policy(analysis),
            failure_limit=analysis.failure_limit,
            on_inconclusive=analysis.on_inconclusive,
            max_extensions=analysis.max_extensions,
        )


@dataclass
class AnalysisResult:
    verdict: Verdict
    reason: str
    measurements: list[Measurement]
    extensions_used: int

    @property
    def last(self) -> Measurement | None:
        return self.measurements[-1] if self.measurements else None

    def numbers(self) -> dict[str, float | None]:
        """The decisive measurement's numbers, for tags and the log."""
        m = self.last
        if m is None:
            return {}
        return {
            "canary_p95_ms": None if m.canary_p95_seconds is None else round(m.canary_p95_seconds * 1000, 2),
            "stable_p95_ms": None if m.stable_p95_seconds is None else round(m.stable_p95_seconds * 1000, 2),
            "latency_ratio": None if m.latency_ratio is None else round(m.latency_ratio, 3),
            "canary_error_rate": m.canary_error_rate,
            "canary_requests": m.canary_requests,
            "stable_requests": m.stable_requests,
        }


OnMeasurement = Callable[[Measurement], None]
AbortCheck = Callable[[], str | None]


def run_analysis(
    source: MetricSource,
    settings: AnalysisSettings,
    *,
    model_name: str,
    canary: int,
    stable: int,
    clock: Clock,
    extensions_used: int = 0,
    on_measurement: OnMeasurement | None = None,
    abort_requested: AbortCheck | None = None,
    endpoint: str = PREDICT_ENDPOINT,
) -> AnalysisResult:
    """Measure every interval for a window (plus extensions) and decide. Pure apart from the source and clock.
    `endpoint`: the route the model's servers answer its task on (`contracts.server_route(task)`)."""
    per_window = max(1, math.ceil(settings.window_seconds / settings.interval_seconds))
    started = clock.monotonic()
    measurements: list[Measurement] = []
    failures = 0
    tick = 0
    extensions = extensions_used
    while True:
        for _ in range(per_window):
            tick += 1
            clock.sleep(started + tick * settings.interval_seconds - clock.monotonic())
            if abort_requested is not None and (why := abort_requested()):
                return AnalysisResult(Verdict.ABORTED, why, measurements, extensions)
            elapsed = math.ceil(clock.monotonic() - started)
            # The range grows with the analysis up to one window, then rolls: canary and stable are always
            # compared over the same period, and never over time before the canary took traffic.
            range_seconds = max(settings.interval_seconds, min(settings.window_seconds, elapsed))
            m = judge(
                measure(source, model_name, canary, stable, range_seconds, settings.interval_seconds, endpoint),
                settings.thresholds,
            )
            measurements.append(m)
            if on_measurement is not None:
                on_measurement(m)
            if m.verdict is Verdict.FAIL:
                failures += 1
                if m.hard_failure or failures >= settings.failure_limit:
                    return AnalysisResult(Verdict.FAIL, "; ".join(m.reasons), measurements, extensions)
        last = measurements[-1]
        if last.verdict is Verdict.PASS:
            return AnalysisResult(Verdict.PASS, "; ".join(last.reasons), measurements, extensions)
        # The window ended on a failed measurement below the failure limit, or without enough data.
        if settings.on_inconclusive == "extend" and extensions < settings.max_extensions:
            extensions += 1
            continue
        why = "; ".join(last.reasons)
        if last.verdict is Verdict.FAIL:
            return AnalysisResult(Verdict.FAIL, why, measurements, extensions)
        limit = f"after {extensions} extension(s)" if settings.on_inconclusive == "extend" else "on_inconclusive=abort"
        return AnalysisResult(Verdict.INCONCLUSIVE, f"inconclusive {limit}: {why}", measurements, extensions)


def argo_failure_limit(analysis: CanaryAnalysis) -> int:
    """Argo Rollouts fails an AnalysisRun when failed measurements *exceed* failureLimit; the policy counts the
    failed measurements that roll back. Render `failureLimit` with this so both runtimes roll back alike."""
    return analysis.failure_limit - 1
