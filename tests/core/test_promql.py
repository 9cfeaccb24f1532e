"""The request-duration ladder the model servers export, against the thresholds that read it."""

from itertools import pairwise

from core.policy import policy
from core.promql import duration_buckets


def _ladder() -> list[float]:
    return duration_buckets(policy().slo.latency_p95_ms / 1000, policy().slo.latency_p99_ms / 1000)


def test_buckets_where_the_models_answer_are_finer_than_the_canary_latency_ratio() -> None:
    """histogram_quantile interpolates inside a bucket: adjacent bounds as far apart as the canary's ratio threshold
    would let one request crossing a bound fail a canary that is as fast as stable."""
    ratio = policy().canary.analysis.max_latency_ratio
    below_100_ms = [b for b in _ladder() if b <= 0.1]
    steps = {f"{lo}->{hi}": hi / lo for lo, hi in pairwise(below_100_ms)}
    too_coarse = {pair: round(step, 3) for pair, step in steps.items() if step >= ratio}
    assert not too_coarse, f"bounds too far apart for a {ratio} latency ratio: {too_coarse}"


def test_the_slo_thresholds_are_bounds_of_their_own() -> None:
    """The burn-rate rules read the bucket at exactly the SLO (decision 0092)."""
    ladder = _ladder()
    assert policy().slo.latency_p95_ms / 1000 in ladder
    assert policy().slo.latency_p99_ms / 1000 in ladder
