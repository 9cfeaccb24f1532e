"""Canary analysis decisions with scripted metric sources: pass, fail, inconclusive, missing data, extend, abort."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest

from core.canary import (
    AnalysisSettings,
    Measurement,
    PrometheusSource,
    Thresholds,
    Verdict,
    argo_failure_limit,
    judge,
    run_analysis,
)
from core.policy import policy
from tests.pipelines.release.fakes import (
    CANARY,
    DOWN,
    ERRORS,
    FEW,
    GOOD,
    MISSING,
    RESTARTED,
    SLOW,
    STABLE,
    FakeClock,
    Sample,
    ScriptedMetrics,
)

T = Thresholds(max_latency_ratio=1.3, max_error_rate=0.01, min_requests=30)


def m(s: Sample) -> Measurement:
    return Measurement(10, s.up, s.requests, s.error_rate, s.canary_p95, s.stable_p95, s.stable_requests, s.restarts)


@pytest.mark.parametrize(
    ("sample", "verdict"),
    [
        (GOOD, Verdict.PASS),
        (Sample(canary_p95=0.0259), Verdict.PASS),  # ratio 1.295: just inside
        (Sample(canary_p95=0.0261), Verdict.FAIL),  # ratio 1.305: just outside
        (SLOW, Verdict.FAIL),
        (ERRORS, Verdict.FAIL),
        (FEW, Verdict.INCONCLUSIVE),  # never a pass, however good the latency looks
        (Sample(requests=5, canary_p95=0.5), Verdict.INCONCLUSIVE),  # too few samples to judge latency either way
        (MISSING, Verdict.INCONCLUSIVE),
        (Sample(canary_p95=None), Verdict.INCONCLUSIVE),
        (Sample(stable_p95=None), Verdict.INCONCLUSIVE),
        (Sample(stable_p95=0.0), Verdict.INCONCLUSIVE),
        (DOWN, Verdict.FAIL),
        (RESTARTED, Verdict.FAIL),
        (Sample(restarts=None), Verdict.PASS),  # no start-time series yet: `up` still guards
    ],
)
def test_judge(sample: Sample, verdict: Verdict) -> None:
    result = judge(m(sample), T)
    assert result.verdict is verdict, result.reasons
    assert result.reasons


def test_down_canary_is_a_hard_failure_and_fewer_requests_never_pass() -> None:
    assert judge(m(DOWN), T).hard_failure
    assert judge(m(RESTARTED), T).hard_failure
    assert not judge(m(SLOW), T).hard_failure
    exactly_min = judge(m(Sample(requests=30)), T)
    assert exactly_min.verdict is Verdict.PASS


def settings(**overrides: object) -> AnalysisSettings:
    base: dict[str, object] = {
        "window_seconds": 40,
        "interval_seconds": 10,
        "thresholds": T,
        "failure_limit": 1,
        "on_inconclusive": "extend",
        "max_extensions": 2,
    }
    base.update(overrides)
    return AnalysisSettings(**base)  # type: ignore[arg-type]


def analyse(samples: list[Sample], **overrides: object) -> tuple[object, ScriptedMetrics, FakeClock]:
    source, clock = ScriptedMetrics(samples), FakeClock()
    result = run_analysis(source, settings(**overrides), model_name="m", canary=CANARY, stable=STABLE, clock=clock)
    return result, source, clock


def test_window_passes_on_its_last_measurement_after_warm_up() -> None:
    result, source, clock = analyse([FEW, FEW, GOOD, GOOD])
    assert result.verdict is Verdict.PASS  # type: ignore[attr-defined]
    assert source.measurements == 4  # 40 s window / 10 s interval
    assert clock.now == pytest.approx(1040.0)


def test_first_failure_rolls_back_at_once_with_failure_limit_1() -> None:
    result, source, _ = analyse([GOOD, SLOW, GOOD, GOOD])
    assert result.verdict is Verdict.FAIL  # type: ignore[attr-defined]
    assert source.measurements == 2
    assert "ratio 2.50" in result.reason  # type: ignore[attr-defined]


def test_failure_limit_counts_failed_measurements() -> None:
    result, source, _ = analyse([SLOW, GOOD, SLOW, GOOD], failure_limit=2)
    assert result.verdict is Verdict.FAIL  # type: ignore[attr-defined]
    assert source.measurements == 3
    result, _, _ = analyse([SLOW, GOOD, GOOD, GOOD], failure_limit=2)
    assert result.verdict is Verdict.PASS  # type: ignore[attr-defined]


def test_dead_canary_fails_regardless_of_failure_limit() -> None:
    result, source, _ = analyse([GOOD, DOWN, GOOD, GOOD], failure_limit=3)
    assert result.verdict is Verdict.FAIL  # type: ignore[attr-defined]
    assert source.measurements == 2
    assert "up == 0" in result.reason  # type: ignore[attr-defined]


def test_restarted_canary_fails_at_once_though_up_never_saw_it_down() -> None:
    result, source, _ = analyse([GOOD, RESTARTED, GOOD, GOOD], failure_limit=3)
    assert result.verdict is Verdict.FAIL  # type: ignore[attr-defined]
    assert source.measurements == 2
    assert "restarted 1 time(s)" in result.reason  # type: ignore[attr-defined]


def test_restarts_are_counted_over_the_whole_analysis_range() -> None:
    # A crash in one interval and the restart in the next: only a range reaching back to the analysis start sees
    # both start times.
    source, clock = ScriptedMetrics([GOOD]), FakeClock()
    run_analysis(source, settings(), model_name="m", canary=CANARY, stable=STABLE, clock=clock)
    ranges = [q.split("[")[1].split("]")[0] for q in source.queries if q.startswith("sum(changes(")]
    assert ranges == ["10s", "20s", "30s", "40s"]


def test_errors_fail() -> None:
    result, _, _ = analyse([ERRORS])
    assert result.verdict is Verdict.FAIL  # type: ignore[attr-defined]
    assert "error rate" in result.reason  # type: ignore[attr-defined]


def test_inconclusive_window_is_extended_then_passes() -> None:
    result, source, _ = analyse([FEW] * 4 + [FEW, GOOD, GOOD, GOOD])
    assert result.verdict is Verdict.PASS  # type: ignore[attr-defined]
    assert result.extensions_used == 1  # type: ignore[attr-defined]
    assert source.measurements == 8


def test_inconclusive_after_max_extensions_never_passes() -> None:
    result, source, _ = analyse([FEW], max_extensions=2)
    assert result.verdict is Verdict.INCONCLUSIVE  # type: ignore[attr-defined]
    assert result.extensions_used == 2  # type: ignore[attr-defined]
    assert source.measurements == 12  # 3 windows of 4


def test_missing_data_is_inconclusive_not_a_pass() -> None:
    result, _, _ = analyse([MISSING], max_extensions=0)
    assert result.verdict is Verdict.INCONCLUSIVE  # type: ignore[attr-defined]


def test_on_inconclusive_abort_does_not_extend() -> None:
    result, source, _ = analyse([FEW], on_inconclusive="abort", max_extensions=2)
    assert result.verdict is Verdict.INCONCLUSIVE  # type: ignore[attr-defined]
    assert result.extensions_used == 0  # type: ignore[attr-defined]
    assert source.measurements == 4


def test_extensions_already_used_before_a_resume_count() -> None:
    source, clock = ScriptedMetrics([FEW]), FakeClock()
    result = run_analysis(
        source, settings(), model_name="m", canary=CANARY, stable=STABLE, clock=clock, extensions_used=2
    )
    assert result.verdict is Verdict.INCONCLUSIVE
    assert source.measurements == 4


def test_operator_abort_stops_the_analysis() -> None:
    source, clock = ScriptedMetrics([GOOD]), FakeClock()
    asked = iter([None, None, "aborted by test"])
    result = run_analysis(
        source,
        settings(),
        model_name="m",
        canary=CANARY,
        stable=STABLE,
        clock=clock,
        abort_requested=lambda: next(asked),
    )
    assert result.verdict is Verdict.ABORTED
    assert result.reason == "aborted by test"
    assert source.measurements == 2


def test_query_range_grows_to_the_window_then_rolls() -> None:
    seen: list[int] = []
    source, clock = ScriptedMetrics([FEW]), FakeClock()
    run_analysis(
        source,
        settings(max_extensions=1),
        model_name="m",
        canary=CANARY,
        stable=STABLE,
        clock=clock,
        on_measurement=lambda x: seen.append(x.range_seconds),
    )
    assert seen == [10, 20, 30, 40, 40, 40, 40, 40]
    assert any("[40s]" in q and f'model_version="{CANARY}"' in q for q in source.queries)


def test_argo_failure_limit_is_one_less() -> None:
    a = policy().canary.analysis
    assert argo_failure_limit(a.model_copy(update={"failure_limit": 1})) == 0
    assert argo_failure_limit(a.model_copy(update={"failure_limit": 3})) == 2


# ---------------------------------------------------------------- the Prometheus API client (fake server)


class _Handler(BaseHTTPRequestHandler):
    answers: ClassVar[dict[str, object]] = {}

    def do_GET(self) -> None:
        from urllib.parse import parse_qs, urlparse

        q = parse_qs(urlparse(self.path).query)["query"][0]
        body = json.dumps(self.answers[q]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def fake_prometheus() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _vector(value: str | None) -> dict[str, object]:
    result = [] if value is None else [{"metric": {}, "value": [1.0, value]}]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def test_prometheus_source_treats_empty_and_nan_as_missing(fake_prometheus: str) -> None:
    _Handler.answers = {"a": _vector("0.25"), "empty": _vector(None), "nan": _vector("NaN"), "inf": _vector("+Inf")}
    source = PrometheusSource(fake_prometheus)
    assert source.query("a") == pytest.approx(0.25)
    assert source.query("empty") is None
    assert source.query("nan") is None
    assert source.query("inf") is None


def test_unreachable_prometheus_is_missing_data() -> None:
    source = PrometheusSource("http://127.0.0.1:9", timeout=1)
    assert source.query("up") is None
    assert source.last_error and "did not answer" in source.last_error
