"""The rehearsal of a release's shadow comparison in the cluster: a real shadow phase on the local gateway (fp32
stable, the underconfident variant mirrored), then the `<model>-shadow-compare` AnalysisTemplate's Job run as
rendered (drift-job image, podman) over both servers' inference logs in the local S3, pushing to the local
Pushgateway; then the `<model>-shadow-quality` template's queries, bound as Argo binds them, read from the local
Prometheus and judged by their rendered conditions: the candidate fails on confidence, as the job judged it."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from core import contracts, endpoints
from core.policy import policy
from infra.containers.images import DRIFT_JOB, MODEL_SERVER, BuiltImage, build
from infra.local import serving, tls
from infra.local.prometheus import query
from infra.local.secrets import api_key
from modules.k8s import release
from pipelines.data import load_split
from pipelines.rehearsal import shadow_job
from pipelines.rehearsal.pods import down
from pipelines.release.deps import LocalShadow
from pipelines.shadow.export import forget_quality
from tests.modules.k8s.argo import verdict

pytestmark = pytest.mark.integration
TEXTS_PER_REQUEST = 5


@pytest.fixture(scope="module")
def images() -> tuple[BuiltImage, BuiltImage]:
    return build(MODEL_SERVER), build(DRIFT_JOB)


@pytest.fixture(scope="module")
def shadowed(local_env: None, registered_versions: dict[str, int]) -> Iterator[tuple[int, int, datetime]]:
    """fp32 takes every request; the underconfident variant's server gets each one mirrored through the relay, as
    Envoy's RequestMirror sends it in the cluster (the Host marked). Yields (stable, candidate, traffic start)."""
    stable, candidate = registered_versions["fp32"], registered_versions["underconfident"]
    serving.start_model_server(stable, wait=True)
    serving.set_weights({stable: 100})
    serving.start_model_server(candidate, wait=True)
    started = datetime.now(UTC) - timedelta(seconds=1)
    texts = [ex.text for ex in load_split("validation")]
    needed = policy().canary.quality.min_pairs + 50
    serving.start_shadow(candidate, 100)
    try:
        headers = {contracts.API_KEY_HEADER: api_key("demo")}
        with httpx.Client(base_url=endpoints.gateway_url(), headers=headers, verify=tls.client_context()) as client:
            for i in range(0, needed, TEXTS_PER_REQUEST):
                batch = texts[i : i + TEXTS_PER_REQUEST]
                resp = client.post(contracts.PREDICT_ROUTE, json={"texts": batch}, timeout=30)
                assert resp.status_code == 200 and resp.headers[contracts.VERSION_HEADER] == str(stable), resp.text
        shadow = LocalShadow(policy().release.default_model)
        deadline = time.monotonic() + policy().serving.inference_log_flush_seconds + 30
        while len(shadow.answers(candidate, started, datetime.now(UTC))) < needed:
            assert time.monotonic() < deadline, "the candidate's mirrored answers did not reach the bucket"
            time.sleep(1)
        yield stable, candidate, started
    finally:
        serving.stop_shadow()
        serving.stop_model_server(candidate)
        forget_quality(endpoints.pushgateway_url(), policy().release.default_model, candidate)


def test_the_rendered_comparison_job_pairs_a_real_shadow_and_its_measures_fail_the_quality_analysis(
    shadowed: tuple[int, int, datetime], images: tuple[BuiltImage, BuiltImage]
) -> None:
    stable, candidate, started = shadowed
    model, quality = policy().release.default_model, policy().canary.quality
    # The job's window ends a log flush before it starts: wait that long so every pair is inside it.
    time.sleep(policy().serving.inference_log_flush_seconds + 3)
    window_seconds = math.ceil((datetime.now(UTC) - started).total_seconds()) + 60
    run = shadow_job.run(candidate, stable, window_seconds, *images)
    try:
        ran = run.exited
        assert ran.exit_code == 0, f"exit {ran.exit_code}:\n{ran.log}"
        report = json.loads(ran.log.strip().splitlines()[-1])
        print(f"comparison job: {ran.seconds:.1f} s, peak {ran.peak_memory_bytes / 2**20:.0f} MiB, report {report}")
        assert report["pairs"] >= quality.min_pairs and report["verdict"] == "fail", report
        assert report["mean_confidence_delta"] < -quality.max_confidence_drop, report
    finally:
        down(run.kube_file)

    templates = shadow_job.rendered_templates(candidate, stable, *images)
    metrics = templates[release.quality_template_name(model)]["spec"]["metrics"]
    queries = {m["name"]: shadow_job.bind(m["provider"]["prometheus"]["query"], candidate, stable) for m in metrics}
    deadline = time.monotonic() + 90  # the Pushgateway's next scrape
    while not query(queries["shadow-pairs"]):
        assert time.monotonic() < deadline, f"Prometheus has no {queries['shadow-pairs']} after 90 s"
        time.sleep(2)
    results = {name: [float(r["value"][1]) for r in query(q)] for name, q in queries.items()}
    verdicts = {m["name"]: verdict(m, results[m["name"]]) for m in metrics}
    assert results["shadow-pairs"] == [float(report["pairs"])]
    assert results["shadow-confidence-delta"] == [pytest.approx(report["mean_confidence_delta"])]
    # Prometheus's judgement is the job's own (pipelines/shadow/compare.py judge, the same policy): confidence fails;
    # every other measure is conclusive, and fails exactly where the job's reasons say it did.
    assert verdicts["shadow-pairs"] == "successful" and verdicts["shadow-confidence-delta"] == "failed", verdicts
    reasons = " ".join(report["reasons"])
    job_failed = {
        "shadow-agreement": "agreement with stable" in reasons,
        "shadow-flip-rate": "were labelled otherwise" in reasons,
        "shadow-label-psi": "distribution shifted" in reasons,
    }
    for name, failed in job_failed.items():
        assert verdicts[name] == ("failed" if failed else "successful"), (name, verdicts, report)
