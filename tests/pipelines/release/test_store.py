"""Durable state, the one-release-per-model lock (held by a real second process), and start/resume/abort rules."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from core import env as env_vars
from core.policy import Policy, policy
from pipelines.release import service
from pipelines.release.state import Phase, ReleaseState, Trigger
from pipelines.release.store import ReleaseBusy, ReleaseLock, StateStore
from tests.pipelines.release.fakes import CANARY, GOOD, STABLE, FakeServing, fake_deps

REPO_ROOT = Path(__file__).resolve().parents[3]
MODEL = "review-polarity-classifier"

HOLD_LOCK = """
import sys, time
from pathlib import Path
from pipelines.release.store import ReleaseLock
lock = ReleaseLock(sys.argv[1], Path(sys.argv[2]))
lock.acquire("rel-held", 5)
print("held", flush=True)
time.sleep(120)
"""


@pytest.fixture()
def holder(tmp_path: Path):  # type: ignore[no-untyped-def]
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, MODEL, str(tmp_path)], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_second_release_is_refused_naming_the_first(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    lock = ReleaseLock(MODEL, tmp_path)
    assert lock.is_held()
    with pytest.raises(ReleaseBusy) as err:
        lock.acquire("rel-2", 6)
    message = str(err.value)
    assert f"pid {holder.pid}" in message and "v5" in message and "rel-held" in message
    assert "mlp release abort" in message


def test_a_killed_owner_never_blocks_the_next_release(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    lock = ReleaseLock(MODEL, tmp_path)
    assert not lock.is_held()
    lock.acquire("rel-3", 7)
    assert lock.owner()["pid"] == os.getpid()
    lock.release()


def test_state_round_trips_atomically(tmp_path: Path) -> None:
    store = StateStore(MODEL, tmp_path)
    state = ReleaseState.new(
        MODEL, 4, 2, Trigger("webhook", "recv", {"delivery_id": "d1"}),
        window_seconds=40, interval_seconds=10, drain_seconds=3, steps=[10, 100],
    )  # fmt: skip
    state.safe_weights = {2: 90, 4: 10}
    state.phase = Phase.ROUTED
    store.save(state)
    raw = json.loads(store.path.read_text())
    assert raw["safe_weights"] == {"2": 90, "4": 10}
    loaded = store.load()
    assert loaded is not None
    assert loaded.safe_weights == {2: 90, 4: 10}
    assert loaded.phase is Phase.ROUTED and loaded.trigger.detail == {"delivery_id": "d1"}
    assert not list(tmp_path.glob("*.tmp"))


# ---------------------------------------------------------------- service rules


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Policy, StateStore]:
    monkeypatch.setenv(env_vars.BUILD_DIR.name, str(tmp_path / "build"))
    return policy(), StateStore(MODEL, tmp_path / "releases")


def _start(p: Policy, store: StateStore, version: int, deps=None):  # type: ignore[no-untyped-def]
    return service.start(
        model_name=MODEL,
        version=version,
        trigger=Trigger("manual", "tester"),
        deps=deps or fake_deps([GOOD]),
        p=p,
        store=store,
        say=lambda _m: None,
    )


def test_start_refuses_another_version_while_one_is_unfinished(env: tuple[Policy, StateStore]) -> None:
    p, store = env
    unfinished = ReleaseState.new(
        MODEL, 9, STABLE, Trigger("manual", "x"), window_seconds=40, interval_seconds=10, drain_seconds=0,
        steps=[10, 100],
    )  # fmt: skip
    unfinished.phase = Phase.ROUTED
    store.save(unfinished)
    with pytest.raises(service.ReleaseRefused, match=r"v9 .*interrupted.*mlp release resume"):
        _start(p, store, CANARY)


def test_start_of_the_same_version_resumes_it(env: tuple[Policy, StateStore]) -> None:
    p, store = env
    unfinished = ReleaseState.new(
        MODEL, CANARY, STABLE, Trigger("manual", "x"), window_seconds=40, interval_seconds=10, drain_seconds=0,
        steps=[10, 100],
    )  # fmt: skip
    unfinished.phase = Phase.PROMOTED
    unfinished.step_index = 1
    unfinished.safe_weights = {CANARY: 100}
    store.save(unfinished)
    deps = fake_deps([GOOD])
    assert isinstance(deps.serving, FakeServing)
    deps.serving.live.add(CANARY)
    deps.serving.weights = {CANARY: 100}
    final, _ = _start(p, store, CANARY, deps)
    assert final.release_id == unfinished.release_id
    assert final.phase is Phase.SUCCEEDED


def test_releasing_the_stable_version_is_refused(env: tuple[Policy, StateStore]) -> None:
    p, store = env
    with pytest.raises(service.ReleaseRefused, match="already the stable"):
        _start(p, store, STABLE)


def test_full_release_writes_the_log_and_frees_the_lock(env: tuple[Policy, StateStore], tmp_path: Path) -> None:
    p, store = env
    final, _ = _start(p, store, CANARY)
    assert final.phase is Phase.SUCCEEDED
    assert not ReleaseLock(MODEL, store.root).is_held()
    assert final.log_path is not None and final.log_path.startswith(str(tmp_path / "build"))
    records = [json.loads(line) for line in Path(final.log_path).read_text().splitlines()]
    assert records[0]["event"] == "started" and records[0]["actor"] == "tester"
    assert records[0]["thresholds"]["max_latency_ratio"] == p.canary.analysis.max_latency_ratio
    assert records[-1]["event"] == "finished"


def test_abort_without_a_live_process_rolls_back_here(env: tuple[Policy, StateStore]) -> None:
    p, store = env
    state = ReleaseState.new(
        MODEL, CANARY, STABLE, Trigger("manual", "x"), window_seconds=40, interval_seconds=10, drain_seconds=0,
        steps=[10, 100],
    )  # fmt: skip
    state.phase = Phase.ROUTED
    state.safe_weights = {STABLE: 90, CANARY: 10}
    store.save(state)
    deps = fake_deps([GOOD])
    assert isinstance(deps.serving, FakeServing)
    deps.serving.live.add(CANARY)
    deps.serving.weights = {STABLE: 90, CANARY: 10}
    final = service.abort(model_name=MODEL, deps=deps, p=p, actor="oncall", reason="pager", store=store, say=print)
    assert final.phase is Phase.ROLLED_BACK
    assert "pager" in final.reason and "oncall" in final.reason
    assert deps.serving.weights == {STABLE: 100} and CANARY not in deps.serving.live


def test_abort_after_promotion_is_refused(env: tuple[Policy, StateStore]) -> None:
    p, store = env
    state = ReleaseState.new(
        MODEL, CANARY, STABLE, Trigger("manual", "x"), window_seconds=40, interval_seconds=10, drain_seconds=0,
        steps=[10, 100],
    )  # fmt: skip
    state.phase = Phase.CHAMPION_MOVED
    store.save(state)
    with pytest.raises(service.ReleaseRefused, match="already promoted"):
        service.abort(model_name=MODEL, deps=fake_deps([GOOD]), p=p, actor="x", reason="r", store=store)


def test_local_and_production_windows_come_from_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    p = policy()
    monkeypatch.delenv(env_vars.RELEASE_WINDOW.name, raising=False)
    assert service.timing(p).window_seconds == p.canary.analysis.local_window_seconds
    assert service.timing(p, "production").window_seconds == p.canary.analysis.window_seconds
    monkeypatch.setenv(env_vars.RELEASE_WINDOW.name, "production")
    assert service.timing(p).interval_seconds == p.canary.analysis.interval_seconds
