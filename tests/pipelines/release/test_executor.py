"""The release state machine with fakes: promotion, rollback, gate failure, errors, abort, resume from each step."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.policy import Policy, policy
from pipelines.release.deps import Deps
from pipelines.release.executor import Executor, ReleaseInterrupted
from pipelines.release.state import Phase, ReleaseState, Trigger
from pipelines.release.store import ReleaseLog, StateStore
from tests.pipelines.release.fakes import (
    CANARY,
    DOWN,
    FEW,
    GOOD,
    SLOW,
    STABLE,
    FakeGate,
    FakeNotifier,
    FakeRegistry,
    FakeServing,
    FakeShadow,
    Sample,
    ScriptedMetrics,
    fake_deps,
)


@pytest.fixture()
def p() -> Policy:
    return policy()


def new_state(p: Policy) -> ReleaseState:
    return ReleaseState.new(
        p.release.default_model,
        CANARY,
        STABLE,
        Trigger("manual", "tester@host"),
        window_seconds=40,
        interval_seconds=10,
        drain_seconds=0,
        steps=[10, 100],
    )


def run(tmp_path: Path, p: Policy, deps: Deps, state: ReleaseState | None = None) -> tuple[ReleaseState, StateStore]:
    store = StateStore(p.release.default_model, tmp_path / "releases")
    state = state or new_state(p)
    store.save(state)
    log = ReleaseLog(tmp_path / "release.jsonl")
    final = Executor(deps, store, p, log=log, say=lambda _m: None).run(state)
    return final, store


def serving(deps: Deps) -> FakeServing:
    assert isinstance(deps.serving, FakeServing)
    return deps.serving


def registry(deps: Deps) -> FakeRegistry:
    assert isinstance(deps.registry, FakeRegistry)
    return deps.registry


def events(tmp_path: Path) -> list[dict[str, object]]:
    return ReleaseLog(tmp_path / "release.jsonl").records()


def test_good_candidate_is_promoted(tmp_path: Path, p: Policy) -> None:
    deps = fake_deps([FEW, GOOD, GOOD, GOOD])
    final, store = run(tmp_path, p, deps)
    assert final.phase is Phase.SUCCEEDED
    weights = [w for op, w in serving(deps).calls if op == "set_weights"]
    assert weights == [{STABLE: 90, CANARY: 10}, {CANARY: 100}]
    assert ("stop", STABLE) in serving(deps).calls
    assert registry(deps).aliases["champion"] == CANARY
    tags = registry(deps).tags[CANARY]
    assert tags["release.status"] == "promoted"
    assert tags["release.analysis.verdict"] == "pass"
    assert float(tags["release.analysis.latency_ratio"]) == pytest.approx(1.0)
    assert float(tags["release.analysis.canary_requests"]) == 200
    assert store.load() is not None and store.load().phase is Phase.SUCCEEDED  # type: ignore[union-attr]
    kinds = [e["event"] for e in events(tmp_path)]
    assert kinds.count("measurement") == 4
    assert kinds[-1] == "finished"


def test_degraded_candidate_rolls_back_traffic_first(tmp_path: Path, p: Policy) -> None:
    deps = fake_deps([GOOD, SLOW])
    final, _ = run(tmp_path, p, deps)
    assert final.phase is Phase.ROLLED_BACK
    calls = serving(deps).calls
    back = calls.index(("set_weights", {STABLE: 100}))
    assert back < calls.index(("stop", CANARY)), "canary weight 0 before its server stops"
    assert serving(deps).weights == {STABLE: 100}
    assert registry(deps).aliases["champion"] == STABLE
    tags = registry(deps).tags[CANARY]
    assert tags["release.status"] == "rolled_back"
    assert "latency" in tags["release.reason"] or "p95" in tags["release.reason"]
    assert float(tags["release.analysis.latency_ratio"]) == pytest.approx(2.5)
    assert isinstance(deps.notifier, FakeNotifier)
    assert deps.notifier.pushes == [(CANARY, False), (CANARY, True)]
    finished = next(e for e in events(tmp_path) if e["event"] == "finished")
    assert finished["outcome"] == "rolled_back"


def test_dead_canary_rolls_back(tmp_path: Path, p: Policy) -> None:
    deps = fake_deps([GOOD, DOWN])
    final, _ = run(tmp_path, p, deps)
    assert final.phase is Phase.ROLLED_BACK
    assert "up == 0" in final.reason


def test_inconclusive_release_rolls_back_never_promotes(tmp_path: Path, p: Policy) -> None:
    deps = fake_deps([FEW])
    final, _ = run(tmp_path, p, deps)
    assert final.phase is Phase.ROLLED_BACK
    assert "inconclusive" in final.reason
    assert registry(deps).aliases["champion"] == STABLE
    assert final.extensions_used == p.canary.analysis.max_extensions


def test_failed_gate_deploys_nothing(tmp_path: Path, p: Policy) -> None:
    deps = fake_deps([GOOD], gate_passes=False)
    final, _ = run(tmp_path, p, deps)
    assert final.phase is Phase.GATE_FAILED
    assert serving(deps).calls == []
    tags = registry(deps).tags[CANARY]
    assert tags["release.status"] == "gate_failed"
    assert tags["release.gate_report"].endswith(f"gate-v{CANARY}.json")
    assert "promotion gate failed" in tags["release.reason"]


@pytest.mark.parametrize("passes", [False, True])
def test_a_retrained_candidates_gate_result_is_pushed_for_the_ticket(tmp_path: Path, p: Policy, passes: bool) -> None:
    deps = fake_deps([GOOD], gate_passes=passes)
    assert isinstance(deps.gate, FakeGate) and isinstance(deps.notifier, FakeNotifier)
    deps.gate.retrained = True
    final, _ = run(tmp_path, p, deps)
    assert (final.phase is Phase.GATE_FAILED) is not passes
    assert deps.notifier.retrained_gates == [(CANARY, not passes)]


def test_an_ordinary_candidates_gate_pushes_no_retraining_ticket(tmp_path: Path, p: Policy) -> None:
    deps = fake_deps([GOOD], gate_passes=False)
    run(tmp_path, p, deps)
    assert isinstance(deps.notifier, FakeNotifier) and deps.notifier.retrained_gates == []


def test_error_mid_step_restores_the_last_safe_split_then_resume_finishes(tmp_path: Path, p: Policy) -> None:
    deps = fake_deps([GOOD])
    serving(deps).fail_set_weights_to = {CANARY: 100}
    with pytest.raises(ReleaseInterrupted, match="mlp release resume"):
        run(tmp_path, p, deps)
    store = StateStore(p.release.default_model, tmp_path / "releases")
    saved = store.load()
    assert saved is not None and saved.phase is Phase.ANALYSED
    assert serving(deps).weights == {STABLE: 90, CANARY: 10}  # the last completed step's split
    serving(deps).fail_set_weights_to = None
    final = Executor(deps, store, p, log=ReleaseLog(tmp_path / "r.jsonl"), say=lambda _m: None).run(saved)
    assert final.phase is Phase.SUCCEEDED
    assert serving(deps).weights == {CANARY: 100}


def test_operator_abort_rolls_back(tmp_path: Path, p: Policy) -> None:
    deps = fake_deps([GOOD])
    store = StateStore(p.release.default_model, tmp_path / "releases")
    store.request_abort("bad smell")
    final, store = run(tmp_path, p, deps)
    assert final.phase is Phase.ROLLED_BACK
    assert "bad smell" in final.reason
    assert store.abort_requested() is None  # cleared once honoured


# ---------------------------------------------------------------- resume from each persisted step


def world_at(phase: Phase, p: Policy) -> tuple[ReleaseState, Deps]:
    """A state persisted at `phase` and a world consistent with it (what a killed release leaves behind)."""
    state = new_state(p)
    state.phase = phase
    deps = Deps(
        serving=FakeServing(),
        registry=FakeRegistry(),
        gate=FakeGate(),
        metrics=ScriptedMetrics([SLOW] if phase is Phase.ROLLING_BACK else [GOOD]),
        notifier=FakeNotifier(),
        clock=fake_deps([GOOD]).clock,
        shadow=FakeShadow(),
    )
    s = serving(deps)
    if phase not in (Phase.PENDING, Phase.GATE_PASSED):
        s.live.add(CANARY)
    if phase in (Phase.ROUTED, Phase.ANALYSED, Phase.ROLLING_BACK):
        state.safe_weights = {STABLE: 90, CANARY: 10}
        s.weights = {STABLE: 90, CANARY: 10}
    if phase in (Phase.PROMOTED, Phase.CHAMPION_MOVED):
        state.step_index = 1
        state.safe_weights = {CANARY: 100}
        s.weights = {CANARY: 100}
    if phase is Phase.CHAMPION_MOVED:
        registry(deps).aliases["champion"] = CANARY
    if phase is Phase.ROLLING_BACK:
        state.reason = "canary analysis failed: slow"
    return state, deps


@pytest.mark.parametrize(
    "phase",
    [
        Phase.PENDING,
        Phase.GATE_PASSED,
        Phase.CANARY_STARTED,
        Phase.ROUTED,
        Phase.ANALYSED,
        Phase.PROMOTED,
        Phase.CHAMPION_MOVED,
        Phase.ROLLING_BACK,
    ],
)
def test_resume_from_each_persisted_step(tmp_path: Path, p: Policy, phase: Phase) -> None:
    state, deps = world_at(phase, p)
    final, _ = run(tmp_path, p, deps, state)
    s, gate = serving(deps), deps.gate
    assert isinstance(gate, FakeGate)
    if phase is Phase.ROLLING_BACK:
        assert final.phase is Phase.ROLLED_BACK
        assert s.weights == {STABLE: 100} and CANARY not in s.live
        return
    assert final.phase is Phase.SUCCEEDED
    assert s.weights == {CANARY: 100}
    assert registry(deps).aliases["champion"] == CANARY
    assert STABLE not in s.live
    # Completed steps are not redone.
    assert gate.runs == ([CANARY] if phase is Phase.PENDING else [])
    assert registry(deps).pulled == ([CANARY] if phase is Phase.PENDING else [])  # fetched for the gate only
    started = [v for op, v in s.calls if op == "start"]
    assert started == ([CANARY] if phase in (Phase.PENDING, Phase.GATE_PASSED) else [])
    analysed = isinstance(deps.metrics, ScriptedMetrics) and deps.metrics.measurements > 0
    assert analysed == (phase in (Phase.PENDING, Phase.GATE_PASSED, Phase.CANARY_STARTED, Phase.ROUTED))


def test_resume_reasserts_the_persisted_split(tmp_path: Path, p: Policy) -> None:
    state, deps = world_at(Phase.ROUTED, p)
    serving(deps).weights = {STABLE: 100}  # e.g. an operator reset the gateway while the release was dead
    final, _ = run(tmp_path, p, deps, state)
    assert final.phase is Phase.SUCCEEDED
    assert serving(deps).calls[0] == ("set_weights", {STABLE: 90, CANARY: 10})


def test_no_stable_version_is_refused_with_a_next_step(tmp_path: Path, p: Policy) -> None:
    state = new_state(p)
    state.stable_version = None
    with pytest.raises(ReleaseInterrupted, match="mlp serve start"):
        run(tmp_path, p, fake_deps([GOOD]), state)


def test_sample_type_is_exported() -> None:
    assert Sample().up == 1
