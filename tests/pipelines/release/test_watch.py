"""`mlp release wait`: follow a release another process runs (the webhook's), print its progress, end with it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipelines.release.state import Phase, ReleaseState
from pipelines.release.store import ReleaseLog, StateStore
from pipelines.release.watch import WaitError, Wanted, describe, wait
from tests.pipelines.release.fakes import CANARY, MODEL, STABLE, release_state


def new_state(tmp_path: Path, version: int = CANARY) -> ReleaseState:
    state = release_state(version, kind="webhook")
    state.log_path = str(tmp_path / f"{state.release_id}.jsonl")
    return state


class ScriptedClock:
    """Each sleep runs the next step of the other process's release (the last one repeats)."""

    def __init__(self, steps: list[Callable[[], None]]) -> None:
        self.steps, self.now, self.sleeps = steps, 0.0, 0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        if self.sleeps < len(self.steps):
            self.steps[self.sleeps]()
        self.sleeps += 1


class FakeDriver:
    rps = 5.0

    def __init__(self) -> None:
        self.started = self.stopped = 0

    def start(self) -> FakeDriver:
        self.started += 1
        return self

    def stop(self) -> Any:
        self.stopped += 1
        driver = self

        class Stats:
            def as_dict(self) -> dict[str, object]:
                return {"sent": 10, "stops": driver.stopped}

        return Stats()


def advance(store: StateStore, state: ReleaseState, to: Phase, event: str, **fields: Any) -> Callable[[], None]:
    def step() -> None:
        state.phase = to
        store.save(state)
        ReleaseLog(Path(str(state.log_path))).write(event, release_id=state.release_id, version=state.version, **fields)

    return step


def test_follows_the_webhook_release_to_promotion_with_traffic_while_the_canary_serves(tmp_path: Path) -> None:
    store = StateStore(MODEL, tmp_path / "releases")
    since = datetime.now(UTC) - timedelta(seconds=1)
    old = new_state(tmp_path, version=CANARY)  # an earlier, finished release of the same version: not this one
    old.created_at = (since - timedelta(hours=1)).isoformat(timespec="seconds")
    old.phase = Phase.SUCCEEDED
    store.save(old)
    state = new_state(tmp_path)
    driver = FakeDriver()
    lines: list[str] = []
    clock = ScriptedClock(
        [
            lambda: None,  # the webhook has not been delivered yet
            advance(store, state, Phase.PENDING, "started", trigger="webhook"),
            advance(store, state, Phase.GATE_PASSED, "step", phase="gate_passed", weights={STABLE: 100}),
            advance(store, state, Phase.CANARY_STARTED, "step", phase="canary_started"),
            advance(store, state, Phase.ROUTED, "measurement", verdict="inconclusive", canary_requests=3.4),
            advance(store, state, Phase.SUCCEEDED, "finished", outcome="promoted", reason="promoted: analysis passed"),
        ]
    )
    final, traffic = wait(
        store,
        Wanted(CANARY, since),
        60,
        traffic=lambda: driver,
        clock=clock,
        say=lines.append,  # type: ignore[arg-type,return-value]
    )
    assert final.release_id == state.release_id and final.phase is Phase.SUCCEEDED
    assert driver.started == 1 and driver.stopped == 1
    assert traffic == {"sent": 10, "stops": 1}
    text = "\n".join(lines)
    assert "waiting for the release of review-polarity-classifier v7 started since" in text
    assert "[gate_passed] weights={'3': 100}" in text  # JSON keys, as the log holds them
    assert "inconclusive: canary requests=3" in text
    assert "finished: promoted — promoted: analysis passed" in text
    assert text.count("started by webhook") == 1  # each log record printed once


def test_times_out_naming_the_webhook_runbook_and_stops_the_traffic(tmp_path: Path) -> None:
    store = StateStore(MODEL, tmp_path / "releases")
    with pytest.raises(WaitError, match=r"webhook-not-arriving\.md"):
        wait(store, Wanted(CANARY, datetime.now(UTC)), 5, clock=ScriptedClock([]), say=lambda _m: None)
    state = new_state(tmp_path)
    state.phase = Phase.ROUTED
    store.save(state)
    driver = FakeDriver()
    with pytest.raises(WaitError, match="still at step 'routed'"):
        wait(store, Wanted(CANARY), 5, traffic=lambda: driver, clock=ScriptedClock([]), say=lambda _m: None)  # type: ignore[arg-type,return-value]
    assert driver.started == 1 and driver.stopped == 1


def test_a_finished_release_returns_at_once(tmp_path: Path) -> None:
    store = StateStore(MODEL, tmp_path / "releases")
    state = new_state(tmp_path)
    state.phase = Phase.ROLLED_BACK
    store.save(state)
    final, traffic = wait(store, Wanted(), 5, clock=ScriptedClock([]), say=lambda _m: None)
    assert final.phase is Phase.ROLLED_BACK and traffic is None


def test_describe_formats_steps_and_measurements_like_the_executor() -> None:
    step = {"ts": "t", "event": "step", "release_id": "r", "version": 7, "phase": "routed", "percent": 10}
    assert describe(step) == "  [routed] percent=10"
    m = {"event": "measurement", "verdict": "pass", "canary_requests": 41.7, "latency_ratio": 0.91234}
    assert "pass: canary requests=42, p95 ratio=0.91" in describe(m)
    shadow = {
        "event": "shadow_analysis", "verdict": "fail", "pairs": 303, "agreement": 0.97, "worst_flip_rate": 0.03,
        "label_psi": 0.0, "label_shift_p_value": 1.0, "mean_confidence_delta": -0.06,
        "reasons": ["mean confidence fell by 0.060 > max 0.05 over 303 pairs"],
    }  # fmt: skip
    assert describe(shadow).splitlines() == [
        "    shadow fail: pairs=303, agreement=0.97, worst flip rate=0.03, label PSI=0.0 (p=1.0), confidence "
        "delta=-0.06",
        "      - mean confidence fell by 0.060 > max 0.05 over 303 pairs",
    ]


def test_an_unfinished_release_of_another_version_fails_at_once(tmp_path: Path) -> None:
    store = StateStore(MODEL, tmp_path / "releases")
    other = new_state(tmp_path, version=9)
    other.phase = Phase.ROUTED  # interrupted, or running: either way the webhook's release is refused
    store.save(other)
    clock = ScriptedClock([])
    with pytest.raises(WaitError, match=r"v9 is unfinished .*mlp release resume"):
        wait(store, Wanted(CANARY, datetime.now(UTC)), 600, clock=clock, say=lambda _m: None)
    assert clock.sleeps == 0


def test_an_unfinished_release_of_the_version_is_followed_whenever_it_began(tmp_path: Path) -> None:
    old = new_state(tmp_path)
    old.created_at = "2020-01-01T00:00:00+00:00"
    since = datetime.now(UTC)
    assert not Wanted(CANARY, since).matches(_with_phase(old, Phase.SUCCEEDED))
    assert Wanted(CANARY, since).matches(_with_phase(old, Phase.ROUTED))  # the webhook's start resumes it


def _with_phase(state: ReleaseState, phase: Phase) -> ReleaseState:
    state.phase = phase
    return state
