"""Releases against the real local servers: MLflow, model servers, the nginx gateway, Prometheus, the Pushgateway,
the webhook receiver. Windows are the policy's local ones (`canary.analysis.local_window_seconds`).

- a good candidate (int8) is promoted; a really slower one (heavy, fixed 256-token padding) is rolled back with
  the reason and the numbers on the version;
- the release process SIGKILLed mid-analysis resumes and finishes;
- the canary's server SIGKILLed mid-analysis: rollback, and the client never sees an error through the gateway;
- a forged or replayed webhook is rejected; MLflow delivering a genuine one (set_alias candidate) starts a release.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from core.policy import policy
from tests.integration.conftest import MLP, REPO_ROOT, mlp, policy_file, without_shadow

pytestmark = [pytest.mark.integration, pytest.mark.slow]
RPS = "20"


# ---------------------------------------------------------------- helpers


def _state() -> dict[str, Any] | None:
    from core.policy import policy
    from pipelines.release.store import StateStore

    state = StateStore(policy().release.default_model).load()
    return None if state is None else state.to_json()


def _log(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(state["log_path"]).read_text().splitlines() if line.strip()]


def _tags(version: int) -> dict[str, str]:
    from services.registry import client

    return dict(client.get_version(version).tags)


def _wait(predicate: Any, timeout: float, what: str, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


def _weights() -> dict[int, int]:
    from infra.local import serving as gateway

    return gateway.current_weights()


def _live() -> set[int]:
    from infra.local.serving import live_model_servers

    return {s.version for s in live_model_servers()}


def _measuring(release_id: str | None = None) -> bool:
    state = _state()
    if state is None or state["phase"] != "routed" or (release_id and state["release_id"] != release_id):
        return False
    return any(e["event"] == "measurement" for e in _log(state))


def _spawn(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*MLP, *args], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True, env=env,
    )  # fmt: skip


@pytest.fixture()
def no_shadow(tmp_path: Path) -> dict[str, str]:
    """The environment of a release without its shadow phase: for the tests about the traffic steps."""
    return {**os.environ, "MLP_POLICY": str(policy_file(tmp_path, without_shadow))}


@pytest.fixture(scope="module")
def webhook_registered(local_env: None, registered_versions: dict[str, int]) -> None:
    # Registered first thing: MLflow caches the webhook list per event for 60 s, so by the time the webhook test
    # runs (last in this file) the receiver is in every cached list.
    mlp("release", "webhook", "register")


@pytest.fixture()
def stable(webhook_registered: None, registered_versions: dict[str, int]) -> Iterator[int]:
    """fp32 as champion serving 100%, nothing else live, no unfinished release; yields its version.

    Every release below compares against fp32: int8 is faster than fp32 (a good candidate), while fp32 released
    against an int8 stable is really >1.3x slower and is (rightly) rolled back.
    """
    from infra.local import serving as gateway
    from infra.local.serving import live_model_servers, start_model_server, stop_model_server
    from services.registry import client

    state = _state()
    if state is not None and state["phase"] not in ("succeeded", "rolled_back", "gate_failed"):
        mlp("release", "abort", "--reason", "test setup", check=False)
    fp32 = registered_versions["fp32"]
    if _weights() != {fp32: 100}:
        start_model_server(fp32, wait=True)
        gateway.set_weights({fp32: 100})
    for server in live_model_servers():
        if server.version != fp32:
            stop_model_server(server.version)
    client.set_alias("champion", fp32)
    yield fp32


def _other_good(stable: int, versions: dict[str, int]) -> int:
    assert stable == versions["fp32"]
    return versions["int8"]


# ---------------------------------------------------------------- promotion and rollback


def test_good_candidate_is_promoted(stable: int, registered_versions: dict[str, int]) -> None:
    from services.registry import client

    candidate = _other_good(stable, registered_versions)
    result = mlp("release", "start", "--version", str(candidate), "--drive-traffic", RPS, check=False, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    assert client.get_alias("champion") == candidate
    assert _weights() == {candidate: 100}
    assert stable not in _live()
    tags = _tags(candidate)
    assert tags["release.status"] == "promoted"
    assert tags["release.analysis.verdict"] == "pass"
    ratio = float(tags["release.analysis.latency_ratio"])
    assert ratio <= 1.3
    assert float(tags["release.analysis.canary_requests"]) >= 30
    state = _state()
    assert state is not None and state["phase"] == "succeeded"
    events = _log(state)
    assert events[0]["event"] == "started" and events[0]["trigger"] == "manual"
    assert any(e["event"] == "measurement" for e in events)
    traffic = next(e for e in events if e["event"] == "traffic")
    assert traffic["by_version"].get(str(candidate), 0) > 0  # the canary really answered users
    # The shadow phase came first, on requests mirrored from stable's traffic, then the 10% step's pairs (stable's
    # share kept mirrored): int8 answers as fp32 does in both.
    shadow, step = [e for e in events if e["event"] == "shadow_analysis"]
    assert (shadow["phase"], step["phase"]) == ("shadow", f"quality-{policy().canary.steps[0]}")
    for judged in (shadow, step):
        assert judged["verdict"] == "pass" and judged["pairs"] >= policy().canary.quality.min_pairs, judged
    assert tags["release.shadow.verdict"] == "pass" and tags[f"release.{step['phase']}.verdict"] == "pass"
    print(f"\n[release] candidate v{candidate} vs stable v{stable}: {state['analyses']}")


def test_an_underconfident_candidate_is_rolled_back_in_the_shadow_phase(
    stable: int, registered_versions: dict[str, int]
) -> None:
    """Fast, error-free and through the gate (accuracy within its tolerance), so the traffic analysis would pass it;
    its answers to the mirrored requests are less confident than stable's beyond `canary.quality`, and it never
    receives a client's request."""
    from services.registry import client

    candidate = registered_versions["underconfident"]
    result = mlp("release", "start", "--version", str(candidate), "--drive-traffic", RPS, check=False, timeout=900)
    assert result.returncode == 1, result.stdout + result.stderr
    state = _state()
    assert state is not None and state["phase"] == "rolled_back"
    assert state["reason"].startswith("shadow analysis failed: mean confidence fell by"), state["reason"]
    assert "shadow fail: pairs=" in result.stdout
    tags = _tags(candidate)
    assert tags["release.status"] == "rolled_back" and tags["release.shadow.verdict"] == "fail"
    assert float(tags["release.shadow.mean_confidence_delta"]) < -policy().canary.quality.max_confidence_drop
    assert int(tags["release.shadow.pairs"]) >= policy().canary.quality.min_pairs
    events = _log(state)
    splits = [e.get("weights") for e in events if e["event"] == "step"]
    assert all(str(candidate) not in (w or {}) for w in splits), splits  # no client request was ever routed to it
    traffic = next(e for e in events if e["event"] == "traffic")
    assert traffic["non_2xx"] == 0 and set(traffic["by_version"]) == {str(stable)}, traffic
    assert client.get_alias("champion") == stable and _weights() == {stable: 100} and candidate not in _live()


def _policy_with_loose_gate_latency(tmp_path: Path) -> dict[str, str]:
    """The environment of a release whose *gate* does not judge latency, so the canary analysis must.

    `heavy` is also slower in-process, and on a busy 2-core machine its single-request p95 can exceed the gate's
    absolute `promotion.max_p95_latency_ms`; this test is about the analysis against stable, so only that gate
    limit is lifted, and the shadow phase is off (this release is about the traffic steps). Analysis thresholds are
    untouched.
    """

    def edit(raw: dict[str, Any]) -> None:
        raw["promotion"]["max_p95_latency_ms"] = 60_000
        without_shadow(raw)

    return {**os.environ, "MLP_POLICY": str(policy_file(tmp_path, edit))}


def test_degraded_candidate_is_rolled_back(stable: int, registered_versions: dict[str, int], tmp_path: Path) -> None:
    from core import endpoints
    from services.registry import client

    heavy = registered_versions["heavy"]
    result = subprocess.run(
        [*MLP, "release", "start", "--version", str(heavy), "--drive-traffic", RPS],
        cwd=REPO_ROOT, env=_policy_with_loose_gate_latency(tmp_path), capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert client.get_alias("champion") == stable
    assert _weights() == {stable: 100}
    assert heavy not in _live()
    tags = _tags(heavy)
    assert tags["release.status"] == "rolled_back"
    assert "canary analysis failed" in tags["release.reason"] and "p95" in tags["release.reason"]
    assert float(tags["release.analysis.latency_ratio"]) > 1.3
    with urllib.request.urlopen(f"{endpoints.pushgateway_url()}/metrics", timeout=5) as resp:
        pushed = resp.read().decode()
    line = next(
        ln for ln in pushed.splitlines()
        if ln.startswith("mlp_release_analysis_failed{") and f'model_version="{heavy}"' in ln
    )  # fmt: skip
    assert line.endswith(" 1")
    state = _state()
    assert state is not None
    print(f"\n[release] heavy v{heavy} vs stable v{stable}: {state['analyses']}")


# ---------------------------------------------------------------- failures mid-release


def test_release_killed_mid_analysis_resumes_and_finishes(
    stable: int, registered_versions: dict[str, int], no_shadow: dict[str, str]
) -> None:
    candidate = _other_good(stable, registered_versions)
    proc = _spawn("release", "start", "--version", str(candidate), "--drive-traffic", RPS, env=no_shadow)
    try:
        _wait(_measuring, 600, "the release to reach its analysis")
        os.killpg(proc.pid, signal.SIGKILL)  # no handler runs: only the persisted state survives
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    state = _state()
    assert state is not None and state["phase"] == "routed"
    assert _weights() == {int(k): v for k, v in state["safe_weights"].items()}
    status = mlp("release", "status")
    assert "INTERRUPTED" in status.stdout
    resumed = mlp("release", "resume", "--drive-traffic", RPS, check=False, timeout=900, extra_env=no_shadow)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    final = _state()
    assert final is not None and final["phase"] == "succeeded" and final["release_id"] == state["release_id"]
    assert any(e["event"] == "resumed" for e in _log(final))
    assert _weights() == {candidate: 100}


def test_canary_server_killed_mid_analysis_rolls_back_without_client_errors(
    stable: int, registered_versions: dict[str, int], no_shadow: dict[str, str]
) -> None:
    from infra.local.supervisor import ctl
    from services.registry import client

    candidate = _other_good(stable, registered_versions)
    proc = _spawn("release", "start", "--version", str(candidate), "--drive-traffic", RPS, env=no_shadow)
    try:
        _wait(_measuring, 600, "the release to reach its analysis")
        # The whole server: `bentoml serve` and the workers it spawned (they hold the listening socket; killing
        # only the parent leaves an orphan answering on the port).
        server = psutil.Process(int(ctl("pid", f"model-v{candidate}").strip()))
        for p in [*server.children(recursive=True), server]:
            p.kill()
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, out
    state = _state()
    assert state is not None and state["phase"] == "rolled_back"
    # Seen down by a scrape, or (restarted by supervisord between two scrapes) by its new start time.
    assert "up == 0" in state["reason"] or "restarted" in state["reason"], state["reason"]
    assert client.get_alias("champion") == stable
    assert _weights() == {stable: 100}
    traffic = next(e for e in _log(state) if e["event"] == "traffic")
    assert traffic["sent"] > 0
    assert traffic["non_2xx"] == 0 and traffic["transport_errors"] == 0, traffic


# ---------------------------------------------------------------- the registry webhook


def _receiver_events() -> list[dict[str, Any]]:
    from infra.local.paths import state_dir

    path = state_dir() / "webhook" / "events.jsonl"
    return [json.loads(ln) for ln in path.read_text().splitlines()] if path.exists() else []


def test_webhook_rejects_forged_and_replayed_and_mlflow_starts_a_release(
    stable: int, registered_versions: dict[str, int]
) -> None:
    from infra.local.secrets import get_secret
    from infra.local.webhook import WEBHOOK_SECRET_NAME, receiver_url
    from services.registry import client
    from services.webhook.verify import sign

    name = client.model_name()
    body = json.dumps(
        {"entity": "model_version_alias", "action": "created", "timestamp": "x",
         "data": {"name": name, "alias": "candidate", "version": str(registered_versions["heavy"])}}
    )  # fmt: skip
    now = str(int(time.time()))
    forged_id = str(uuid.uuid4())
    forged = {
        "X-MLflow-Delivery-Id": forged_id,
        "X-MLflow-Timestamp": now,
        "X-MLflow-Signature": sign("guessed-secret", forged_id, now, body),
    }
    assert httpx.post(receiver_url(), content=body, headers=forged, timeout=10).status_code == 401

    # A genuine delivery from MLflow itself, on the alias set the way an owner promotes a version.
    candidate = _other_good(stable, registered_versions)
    before = len(_receiver_events())
    alias = json.loads(mlp("model", "alias", "set", "candidate", str(candidate), "--json").stdout)
    assert alias["version"] == candidate

    def accepted() -> dict[str, Any] | None:
        fresh = _receiver_events()[before:]
        return next((e for e in fresh if e["decision"] == "accepted" and e["version"] == candidate), None)

    event = _wait(accepted, 90, "MLflow to deliver the alias event", every=1)
    delivery_id = event["delivery_id"]
    started = _wait(
        lambda: (s := _state()) and s["trigger"]["detail"].get("delivery_id") == delivery_id and s,
        120,
        "the webhook's release to start",
    )
    assert started["trigger"]["kind"] == "webhook" and started["version"] == candidate

    # Replaying that delivery (same id, freshly and validly signed) starts nothing; a stale timestamp is refused.
    secret = get_secret(WEBHOOK_SECRET_NAME)
    stamp = str(int(time.time()))
    replay = {"X-MLflow-Delivery-Id": delivery_id, "X-MLflow-Timestamp": stamp,
              "X-MLflow-Signature": sign(secret, delivery_id, stamp, body)}  # fmt: skip
    resp = httpx.post(receiver_url(), content=body, headers=replay, timeout=10)
    assert resp.status_code == 200 and resp.json()["status"] == "duplicate"
    old = str(int(time.time()) - 3600)
    stale_id = str(uuid.uuid4())
    stale = {"X-MLflow-Delivery-Id": stale_id, "X-MLflow-Timestamp": old,
             "X-MLflow-Signature": sign(secret, stale_id, old, body)}  # fmt: skip
    assert httpx.post(receiver_url(), content=body, headers=stale, timeout=10).status_code == 400
    assert not [e for e in _receiver_events()[before:] if e["decision"] == "accepted" and e["version"] != candidate]

    # The release it started is real; roll it back so the environment is left as found.
    aborted = mlp("release", "abort", "--reason", "webhook test done", check=False, timeout=300)
    assert aborted.returncode == 0, aborted.stdout + aborted.stderr
    final = _state()
    assert final is not None and final["phase"] == "rolled_back" and final["release_id"] == started["release_id"]
    assert client.get_alias("champion") == stable
    # Whoever set the alias follows that release to its end: its log as progress, its outcome as the exit code.
    waited = mlp(
        "release", "wait", "--version", str(candidate), "--since", alias["set_at"], "--timeout", "60", check=False
    )
    assert waited.returncode == 1, waited.stdout + waited.stderr  # rolled back
    assert f"release {started['release_id']}: rolled_back" in waited.stdout
    assert "[rolling_back]" in waited.stdout
    client.delete_alias("candidate")
