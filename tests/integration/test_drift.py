"""`mlp drift check` against the real local S3 API, Pushgateway and Prometheus.

Logs are written straight to the bucket in the contract layout (the format is the contract, not the writer), under
version numbers unique to this run, and checked with the packaged int8 model and a sampled reference.
"""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core import contracts, endpoints
from core import promql as q
from core.policy import policy
from pipelines.data import load_shifted, load_split
from pipelines.drift.demo import DRIFT_ALERT
from pipelines.drift.logs import write_records
from pipelines.drift.push import pushed
from services.model_runtime.classifier import OnnxTextClassifier
from tests.integration.conftest import mlp

pytestmark = pytest.mark.integration
MODEL_DIR = Path(__file__).resolve().parents[2] / "build" / "models" / "int8"
SAMPLES = 150
BASE_VERSION = 900_000 + int(time.time()) % 90_000  # fresh log prefixes and Pushgateway groups per run


@pytest.fixture(scope="module")
def classifier(packaged_variants: dict[str, Path]) -> OnnxTextClassifier:
    return OnnxTextClassifier.load(packaged_variants["int8"], intra_op_threads=2)


def _log(classifier: OnnxTextClassifier, version: int, texts: list[str], end: datetime) -> None:
    from infra.local.s3 import client as s3_client

    predictions = classifier.predict(texts)
    tokens = classifier.count_tokens(texts)
    records = [
        {
            "ts": (end - timedelta(seconds=len(texts) - i)).isoformat(),
            "request_id": f"test-{version}-{i}",
            "model_name": policy().release.default_model,
            "model_version": version,
            "text": text,
            "label": p.label,
            "confidence": p.confidence,
            "scores": p.scores,
            "n_tokens": n,
        }
        for i, (text, p, n) in enumerate(zip(texts, predictions, tokens, strict=True))
    ]
    write_records(s3_client(), contracts.INFERENCE_LOG_BUCKET, policy().release.default_model, version, records)


def _check(version: int, out_dir: Path, hours: str = "1"):  # type: ignore[no-untyped-def]
    return mlp(
        "drift", "check", "--version", str(version), "--model-dir", str(MODEL_DIR), "--hours", hours,
        "--reference-limit", "600", "--out-dir", str(out_dir), check=False, timeout=300,
    )  # fmt: skip


def _pushed(version: int) -> dict[str, float]:
    """Metric name -> value of the Pushgateway group of this version."""
    return pushed(endpoints.pushgateway_url(), policy().release.default_model, version)


def _report(out_dir: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((out_dir / "latest.json").read_text())
    return data


def test_in_distribution_logs_do_not_alert(local_env: None, classifier: OnnxTextClassifier, tmp_path: Path) -> None:
    version = BASE_VERSION + 1
    now = datetime.now(UTC)
    _log(classifier, version, random.Random(1).sample([e.text for e in load_split("validation")], SAMPLES), now)
    # Shifted traffic three hours ago: outside a one-hour window, so it must not be read.
    _log(classifier, version, random.Random(2).sample(load_shifted(), SAMPLES), now - timedelta(hours=3))
    result = _check(version, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    report = _report(tmp_path)
    assert report["status"] == "ok" and report["samples"] == SAMPLES
    pushed = _pushed(version)
    assert pushed[q.DRIFT_SCORE] == pytest.approx(report["share"])
    assert pushed[q.DRIFT_SCORE] <= policy().drift.threshold
    assert pushed[q.DRIFT_SAMPLES] == SAMPLES


def test_shifted_logs_alert(local_env: None, classifier: OnnxTextClassifier, tmp_path: Path) -> None:
    version = BASE_VERSION + 2
    _log(classifier, version, random.Random(3).sample(load_shifted(), SAMPLES), datetime.now(UTC))
    result = _check(version, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    report = _report(tmp_path)
    assert report["status"] == "drift"
    assert list(tmp_path.glob(f"*-v{version}-*.html")), "the Evidently HTML report was not written"
    assert _pushed(version)[q.DRIFT_SCORE] > policy().drift.threshold
    # Prometheus scrapes the Pushgateway and the rule turns the share into the alert.
    from infra.local.prometheus import query

    expr = f'ALERTS{{alertname="{DRIFT_ALERT}",alertstate="firing",model_version="{version}"}}'
    deadline = time.monotonic() + 90
    while not query(expr):
        assert time.monotonic() < deadline, f"{DRIFT_ALERT} did not fire for v{version} within 90 s"
        time.sleep(3)


def test_below_min_samples_is_refused(local_env: None, classifier: OnnxTextClassifier, tmp_path: Path) -> None:
    version = BASE_VERSION + 3
    few = policy().drift.min_samples // 2
    _log(classifier, version, random.Random(4).sample(load_shifted(), few), datetime.now(UTC))
    result = _check(version, tmp_path)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "min_samples" in result.stdout
    assert _report(tmp_path)["status"] == "insufficient"
    pushed = _pushed(version)
    assert q.DRIFT_SCORE not in pushed  # no verdict, no share: a stale share must not keep an alert firing
    assert pushed[q.DRIFT_SAMPLES] == few


def test_unreachable_pushgateway_is_an_error(local_env: None, classifier: OnnxTextClassifier, tmp_path: Path) -> None:
    version = BASE_VERSION + 4
    _log(
        classifier,
        version,
        random.Random(5).sample([e.text for e in load_split("heldout")], SAMPLES),
        datetime.now(UTC),
    )
    result = mlp(
        "drift", "check", "--version", str(version), "--model-dir", str(MODEL_DIR), "--hours", "1",
        "--reference-limit", "600", "--out-dir", str(tmp_path), "--pushgateway", "http://127.0.0.1:9",
        check=False, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2
    assert "Pushgateway" in result.stderr and (tmp_path / "latest.json").exists()
