"""The shadow phase of the release state machine, with fakes: mirroring starts before any traffic step and lasts
until the candidate takes every request; the paired answers decide, in the shadow phase and again after each partial
traffic step; disagreement, too few pairs and an abort roll back with the numbers in the reason; an error stops
mirroring and `resume` judges again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.policy import Policy, policy
from pipelines.release.deps import Deps
from pipelines.release.executor import Executor, ReleaseInterrupted
from pipelines.release.state import Phase, ReleaseState, Trigger
from pipelines.release.store import ReleaseLog, StateStore
from pipelines.shadow.compare import Answer
from tests.pipelines.release.fakes import CANARY, GOOD, STABLE, FakeServing, FakeShadow, fake_deps

SHADOW_SECONDS = 20


@pytest.fixture()
def p() -> Policy:
    return policy()


def shadow_state(p: Policy) -> ReleaseState:
    return ReleaseState.new(
        p.release.default_model, CANARY, STABLE, Trigger("manual", "tester@host"), window_seconds=40,
        interval_seconds=10, drain_seconds=0, steps=[10, 100], shadow_seconds=SHADOW_SECONDS, shadow_share_percent=100,
    )  # fmt: skip


def answers(labels: list[str], confidence: float = 0.9) -> list[Answer]:
    return [Answer(f"req-{i}", 0, label, confidence) for i, label in enumerate(labels)]


STABLE_LABELS = ["positive"] * 150 + ["negative"] * 150


def world(stable: list[Answer], candidate: list[Answer]) -> tuple[Deps, FakeShadow, FakeServing]:
    deps = fake_deps([GOOD, GOOD, GOOD, GOOD, GOOD])
    shadow, serving = deps.shadow, deps.serving
    assert isinstance(shadow, FakeShadow) and isinstance(serving, FakeServing)
    shadow.answers_by_version = {STABLE: stable, CANARY: candidate}
    return deps, shadow, serving


def run(tmp_path: Path, p: Policy, deps: Deps, state: ReleaseState) -> tuple[ReleaseState, StateStore]:
    store = StateStore(p.release.default_model, tmp_path / "releases")
    store.save(state)
    final = Executor(deps, store, p, log=ReleaseLog(tmp_path / "r.jsonl"), say=lambda _m: None).run(state)
    return final, store


def test_agreeing_answers_pass_the_shadow_phase_before_any_traffic_moves(tmp_path: Path, p: Policy) -> None:
    deps, shadow, serving = world(answers(STABLE_LABELS), answers(STABLE_LABELS, confidence=0.89))
    final, _ = run(tmp_path, p, deps, shadow_state(p))
    assert final.phase is Phase.SUCCEEDED
    # Mirroring began before the first split and was off when it was set: no request is mirrored and split at once.
    first_split = next(i for i, (op, _) in enumerate(serving.calls) if op == "set_weights")
    assert shadow.calls[0] == ("start", CANARY) and shadow.mirroring is None
    assert serving.calls[first_split] == ("set_weights", {STABLE: 90, CANARY: 10})
    (summary,) = [a for a in final.analyses if a.get("phase") == "shadow"]
    assert summary["verdict"] == "pass" and summary["pairs"] == 300 and summary["agreement"] == 1.0
    assert summary["mean_confidence_delta"] == pytest.approx(-0.01)
    # The whole shadow window was waited for, then the logs' flush (policy.serving.inference_log_flush_seconds).
    clock = deps.clock
    assert sum(clock.sleeps[: SHADOW_SECONDS + 1]) >= SHADOW_SECONDS  # type: ignore[attr-defined]


def test_a_candidate_that_flips_one_class_is_rolled_back_in_the_shadow_phase(tmp_path: Path, p: Policy) -> None:
    # Fast and error-free (the traffic analysis would pass it), but 40% of stable's `positive` texts come back
    # `negative`: overall agreement 0.8, positive's flip rate 0.4.
    flipped = ["negative" if i < 60 else label for i, label in enumerate(STABLE_LABELS)]
    deps, shadow, serving = world(answers(STABLE_LABELS), answers(flipped))
    final, _ = run(tmp_path, p, deps, shadow_state(p))
    assert final.phase is Phase.ROLLED_BACK
    assert final.reason.startswith("shadow analysis failed: ")
    assert "agreement with stable 0.800 < min 0.95 over 300 pairs" in final.reason
    assert "0.400 of the 150 texts stable labelled 'positive'" in final.reason
    assert all(op != "set_weights" or CANARY not in w for op, w in serving.calls), "the canary never got traffic"
    assert CANARY not in serving.live and shadow.mirroring is None
    assert deps.notifier.pushes[-1] == (CANARY, True)  # type: ignore[attr-defined]
    ((version, stable, measures, failed),) = deps.notifier.quality  # type: ignore[attr-defined]
    assert (version, stable, failed) == (CANARY, STABLE, True) and measures["agreement"] == 0.8
    assert measures["pairs"] == 300 and measures["worst_flip_rate"] == 0.4


def test_too_few_pairs_is_inconclusive_and_never_a_pass(tmp_path: Path, p: Policy) -> None:
    few = STABLE_LABELS[: p.canary.quality.min_pairs - 1]
    deps, _, _ = world(answers(few), answers(few))
    final, _ = run(tmp_path, p, deps, shadow_state(p))
    assert final.phase is Phase.ROLLED_BACK
    assert f"{len(few)} paired answers < min {p.canary.quality.min_pairs}" in final.reason
    assert "inconclusive" in final.reason


def test_unpaired_answers_do_not_count(tmp_path: Path, p: Policy) -> None:
    # The candidate also answered requests stable never saw (a pinned smoke test): they pair with nothing.
    candidate = answers(STABLE_LABELS) + [Answer(f"pinned-{i}", 0, "negative", 0.5) for i in range(500)]
    deps, _, _ = world(answers(STABLE_LABELS), candidate)
    final, _ = run(tmp_path, p, deps, shadow_state(p))
    (summary,) = [a for a in final.analyses if a.get("phase") == "shadow"]
    assert summary["pairs"] == 300 and summary["agreement"] == 1.0 and final.phase is Phase.SUCCEEDED


def test_an_abort_during_the_shadow_phase_rolls_back_and_stops_mirroring(tmp_path: Path, p: Policy) -> None:
    deps, shadow, serving = world(answers(STABLE_LABELS), answers(STABLE_LABELS))
    store = StateStore(p.release.default_model, tmp_path / "releases")
    state = shadow_state(p)
    state.phase = Phase.SHADOWING
    state.shadow_started_at = datetime.now(UTC).isoformat()
    serving.live.add(CANARY)
    store.request_abort("the on-call wants it out")
    final, _ = run(tmp_path, p, deps, state)
    assert final.phase is Phase.ROLLED_BACK and "the on-call wants it out" in final.reason
    assert shadow.mirroring is None and CANARY not in serving.live


def test_an_error_stops_mirroring_and_resume_judges_the_same_window(tmp_path: Path, p: Policy) -> None:
    deps, shadow, serving = world(answers(STABLE_LABELS), answers(STABLE_LABELS))
    shadow.fail_answers = True
    state = shadow_state(p)
    with pytest.raises(ReleaseInterrupted, match="S3 unreachable"):
        run(tmp_path, p, deps, state)
    assert shadow.mirroring is None, "no mirror is left on by a dead release"
    assert serving.weights == {STABLE: 100}
    saved = StateStore(p.release.default_model, tmp_path / "releases").load()
    assert saved is not None and saved.phase is Phase.SHADOWING and saved.shadow_started_at is not None
    # A resume long after the window closed judges at once (no new wait) on the window it started.
    saved.shadow_started_at = (datetime.now(UTC) - timedelta(seconds=10 * SHADOW_SECONDS)).isoformat()
    shadow.fail_answers = False
    final = Executor(deps, StateStore(p.release.default_model, tmp_path / "releases"), p, say=lambda _m: None).run(
        saved
    )
    assert final.phase is Phase.SUCCEEDED


def test_no_shadow_phase_when_the_policy_has_none(tmp_path: Path, p: Policy) -> None:
    deps, shadow, _ = world([], [])
    state = shadow_state(p)
    state.shadow_seconds = 0
    final, _ = run(tmp_path, p, deps, state)
    assert final.phase is Phase.SUCCEEDED and shadow.calls == [("stop", None)] * len(shadow.calls)
    assert not any(op == "start" for op, _ in shadow.calls)


def test_a_retrained_versions_answers_are_recorded_not_judged(tmp_path: Path, p: Policy) -> None:
    assert not p.canary.shadow.judge_retrained
    flipped = ["negative" if i < 60 else label for i, label in enumerate(STABLE_LABELS)]
    deps, _, _ = world(answers(STABLE_LABELS), answers(flipped))
    deps.gate.retrained = True  # type: ignore[attr-defined]
    final, _ = run(tmp_path, p, deps, shadow_state(p))
    assert final.phase is Phase.SUCCEEDED
    (summary,) = [a for a in final.analyses if a.get("phase") == "shadow"]
    assert summary["verdict"] == "fail" and summary["agreement"] == 0.8  # measured and kept all the same
    # Measured in the shadow phase and at the 10% step, judged in neither: no alert.
    assert [failed for *_, failed in deps.notifier.quality] == [False, False]  # type: ignore[attr-defined]
    strict = p.model_copy(
        update={
            "canary": p.canary.model_copy(
                update={"shadow": p.canary.shadow.model_copy(update={"judge_retrained": True})}
            )
        }
    )
    deps, _, _ = world(answers(STABLE_LABELS), answers(flipped))
    deps.gate.retrained = True  # type: ignore[attr-defined]
    final, _ = run(tmp_path / "strict", strict, deps, shadow_state(strict))
    assert final.phase is Phase.ROLLED_BACK


def test_stables_share_stays_mirrored_through_the_traffic_steps_and_each_step_is_judged(
    tmp_path: Path, p: Policy
) -> None:
    deps, shadow, serving = world(answers(STABLE_LABELS), answers(STABLE_LABELS))
    mirrored_at_split: list[tuple[dict[int, int], int | None]] = []
    set_weights = serving.set_weights

    def recording(weights: dict[int, int]) -> None:
        mirrored_at_split.append((dict(weights), shadow.mirroring))
        set_weights(weights)

    serving.set_weights = recording  # type: ignore[method-assign]
    final, _ = run(tmp_path, p, deps, shadow_state(p))
    assert final.phase is Phase.SUCCEEDED
    phases = [(a["phase"], a["verdict"]) for a in final.analyses if "phase" in a]
    assert phases == [("shadow", "pass"), ("quality-10", "pass")]
    # Mirroring is on when the split sends 10% to the candidate (the gateway mirrors only stable's share), and off
    # before the candidate takes everything.
    assert mirrored_at_split == [({STABLE: 90, CANARY: 10}, CANARY), ({CANARY: 100}, None)]
    assert shadow.calls[-1] == ("stop", None) and shadow.mirroring is None


class ChangingShadow(FakeShadow):
    """Agreeing answers in the shadow phase; from the first traffic step on, the candidate flips 60 positives."""

    def answers(self, version: int, since: datetime, until: datetime) -> list[Answer]:
        self.calls.append(("answers", version))
        reads = sum(op == "answers" for op, _ in self.calls)
        if version == CANARY and reads > 2:
            return answers(["negative" if i < 60 else label for i, label in enumerate(STABLE_LABELS)])
        return answers(STABLE_LABELS)


def test_a_candidate_that_diverges_during_a_traffic_step_is_rolled_back_with_the_numbers(
    tmp_path: Path, p: Policy
) -> None:
    deps = fake_deps([GOOD, GOOD, GOOD, GOOD, GOOD])
    deps.shadow = shadow = ChangingShadow()
    serving = deps.serving
    assert isinstance(serving, FakeServing)
    final, _ = run(tmp_path, p, deps, shadow_state(p))
    assert final.phase is Phase.ROLLED_BACK
    assert final.reason.startswith("quality analysis failed at 10%: agreement with stable 0.800 < min 0.95"), (
        final.reason
    )
    assert ("set_weights", {STABLE: 90, CANARY: 10}) in serving.calls  # it did serve its share, and passed latency
    assert serving.weights == {STABLE: 100} and CANARY not in serving.live and shadow.mirroring is None
    (*_, (version, stable, measures, failed)) = deps.notifier.quality  # type: ignore[attr-defined]
    assert (version, stable, failed, measures["agreement"]) == (CANARY, STABLE, True, 0.8)
