"""`mlp drift demo`: real traffic through the gateway, then one drift check per traffic phase.

Phase 1 sends validation-split reviews (the training distribution: no drift expected), phase 2 news headlines
(out of domain: drift expected). Each phase is its own time window in the inference log. When the local
Prometheus is up, the demo also waits for the `ModelDriftDetected` alert to fire on the pushed share.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from core import contracts, endpoints
from core.policy import policy
from infra.local import serving, tls
from pipelines.data import load_shifted, load_split
from pipelines.drift import local, logs
from pipelines.drift.check import EXIT_DRIFT, EXIT_OK, check_version
from pipelines.gateway_client import RetryClosedKeepAlive

DRIFT_ALERT = contracts.ALERT_DRIFT
BATCH = 16
SEED = 7
ALERT_TIMEOUT_SECONDS = 90
EXIT_REFUSED = 3  # --follow-loop: a retraining breaker refused (as `mlp model retrain` exits)


class DemoError(RuntimeError):
    pass


def serving_version(explicit: str | None) -> int:
    """The version to drive: given, else the gateway's stable version, else the champion alias."""
    from services.registry.client import resolve_version

    if explicit:
        return resolve_version(explicit)
    try:
        stable = serving.stable_version()
    except OSError:
        stable = None  # gateway not configured yet: fall back to the registry
    if stable is not None:
        return int(stable)
    return resolve_version(policy().release.champion_alias)


def send(texts: Sequence[str], version: int, api_key: str) -> int:
    """POST the texts in batches pinned to `version`; return how many the gateway classified."""
    headers = {contracts.API_KEY_HEADER: api_key, contracts.PIN_HEADER: str(version)}
    done = 0
    transport = RetryClosedKeepAlive(httpx.HTTPTransport(verify=tls.client_context()))
    with httpx.Client(base_url=endpoints.gateway_url(), timeout=30, transport=transport) as client:
        for start in range(0, len(texts), BATCH):
            batch = list(texts[start : start + BATCH])
            resp = client.post(contracts.PREDICT_ROUTE, json={"texts": batch}, headers=headers)
            if resp.status_code != 200:
                raise DemoError(
                    f"gateway {endpoints.gateway_url()}/classify answered {resp.status_code}: {resp.text[:200]}; "
                    "is the version served (`mlp serve status`)?"
                )
            answered = resp.json().get("model_version")
            if answered is not None and int(answered) != version:
                raise DemoError(f"asked for v{version} with {contracts.PIN_HEADER}, v{answered} answered")
            done += len(batch)
    return done


def wait_for_logs(version: int, window: logs.Window, expected: int) -> int:
    """Poll the inference log until the window holds `expected` records or the flush deadline passes."""
    from infra.local import s3 as local_s3

    p = policy()
    deadline = time.monotonic() + 3 * p.serving.inference_log_flush_seconds + 30
    s3 = local_s3.client()
    while True:
        n = len(logs.read_records(s3, contracts.INFERENCE_LOG_BUCKET, p.release.default_model, version, window))
        if n >= expected or time.monotonic() > deadline:
            return n
        time.sleep(2)


def prometheus_up() -> bool:
    from infra.local.prometheus import PrometheusQueryError, query

    try:
        query("vector(1)", timeout=3)
        return True
    except PrometheusQueryError:
        return False


def wait_for_alert(version: int, timeout: float = ALERT_TIMEOUT_SECONDS) -> bool:
    from infra.local.prometheus import query

    expr = f'ALERTS{{alertname="{DRIFT_ALERT}",alertstate="firing",model_version="{version}"}}'
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if query(expr):
            return True
        time.sleep(3)
    return False


def phase(title: str, texts: Sequence[str], version: int, api_key: str) -> int:
    print(f"\n== {title}: {len(texts)} texts through the gateway to v{version}", flush=True)
    since = datetime.now(UTC) - timedelta(seconds=1)
    sent = send(texts, version, api_key)
    until = datetime.now(UTC) + timedelta(seconds=1)
    window = logs.Window(since, until)
    expected = int(sent * policy().serving.inference_log_sample_rate)
    got = wait_for_logs(version, window, expected)
    print(f"{got}/{expected} expected inferences in the log", flush=True)
    return check_version(str(version), window, s3=local.s3_factory("local"), workspace=local.workspace())


@dataclass(frozen=True)
class LoopOptions:
    """Follow what the alert starts (`mlp drift demo --follow-loop`): pipelines/retrain/loop.py."""

    timeout_seconds: float
    traffic_rps: float
    report_path: Path | None = None  # the loop's numbers as JSON


def run(explicit_version: str | None, samples: int, loop: LoopOptions | None = None) -> int:
    from infra.local.secrets import api_key

    try:
        version = serving_version(explicit_version)
        rng = random.Random(SEED)
        validation = [e.text for e in load_split("validation")]
        shifted = load_shifted()
        key = api_key(policy().gateway.internal_key())  # it pins the version under test
        first = phase("Validation-split reviews (in distribution)", rng.sample(validation, samples), version, key)
        since = datetime.now(UTC)
        second = phase("Guardian news headlines (out of domain)", rng.sample(shifted, samples), version, key)
    except (DemoError, httpx.HTTPError) as exc:
        print(f"drift demo failed: {exc}", flush=True)
        return 2
    if (first, second) != (EXIT_OK, EXIT_DRIFT):
        print(f"drift demo: expected no drift then drift (exit 0 then 1), got exit {first} then {second}")
        return 1
    print("\nin-distribution traffic: no drift; shifted traffic: drift detected and pushed", flush=True)
    if not prometheus_up():
        print("Prometheus is not running: skipped the alert check (`mlp env up` starts it)")
        return 0
    print(f"waiting for the {DRIFT_ALERT} alert on v{version} in Prometheus (up to {ALERT_TIMEOUT_SECONDS}s)...")
    if not wait_for_alert(version):
        print(f"{DRIFT_ALERT} did not fire in {ALERT_TIMEOUT_SECONDS}s: see {endpoints.prometheus_url()}/alerts")
        return 1
    print(f"{DRIFT_ALERT} is firing for v{version}: {endpoints.prometheus_url()}/alerts")
    return 0 if loop is None else follow_loop(version, since, loop)


def follow_loop(version: int, since: datetime, loop: LoopOptions) -> int:
    """The alert acts: follow it to the retrained version's release; 0 only if that version was promoted."""
    from pipelines.release.watch import WaitError
    from pipelines.retrain.loop import LoopError, LoopRefused, follow, summary_lines

    fired = datetime.now(UTC)
    print("\n== The alert acts: delivery, retraining, gate, canary, promotion", flush=True)
    try:
        report = follow(policy().release.default_model, version, since, fired, loop.timeout_seconds, loop.traffic_rps)
    except LoopRefused as exc:
        print(f"drift loop stopped, as the policy's breakers say it must: {exc}", flush=True)
        return EXIT_REFUSED
    except (LoopError, WaitError) as exc:
        print(f"drift loop stopped: {exc}", flush=True)
        return 1
    print("\n" + "\n".join(summary_lines(report)), flush=True)
    if loop.report_path is not None:
        loop.report_path.parent.mkdir(parents=True, exist_ok=True)
        loop.report_path.write_text(json.dumps(report.as_dict(), indent=2))
        print(f"numbers written to {loop.report_path}")
    return 0 if report.promoted else 1
