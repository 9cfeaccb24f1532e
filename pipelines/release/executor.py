"""The release state machine: one method per step, each idempotent, the state persisted after each.

    PENDING --gate--> GATE_PASSED --start canary--> CANARY_STARTED --route steps[0]--> ROUTED
    CANARY_STARTED --mirror (shadow phase)--> SHADOWING --answers agree--> SHADOW_PASSED --route steps[0]--> ROUTED
    SHADOWING --answers disagree / too few pairs / abort--> ROLLING_BACK
    ROUTED --analysis passes (latency, errors; then the step's paired answers)--> ANALYSED --next step--> ROUTED
    ... --100%--> PROMOTED
    PROMOTED --move champion--> CHAMPION_MOVED --drain + stop old--> SUCCEEDED
    ROUTED --analysis fails / inconclusive / abort--> ROLLING_BACK --stable 100%, stop canary--> ROLLED_BACK
    PENDING --gate fails--> GATE_FAILED (nothing deployed)

Because a step is only recorded once it is done and every step can be redone, a release whose process died
(even SIGKILL) continues with `mlp release resume`. On any error inside the process, the gateway goes back to
the split of the last completed step (`safe_weights`) before the error propagates: no split is left half-done.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from core import contracts
from core.canary import AnalysisResult, AnalysisSettings, Measurement, Verdict, run_analysis
from core.policy import Policy
from pipelines.release.deps import Deps
from pipelines.release.state import Outcome, Phase, ReleaseState
from pipelines.release.store import ReleaseLog, StateStore
from pipelines.release.traffic import TrafficDriver
from pipelines.shadow.compare import QualityJudgement, QualityThresholds, QualityVerdict, compare, judge, paired
from pipelines.shadow.export import quality_numbers

# Phases in which an operator's abort still rolls back; after PROMOTED the candidate already serves everything.
ABORTABLE = frozenset(
    {
        Phase.PENDING,
        Phase.GATE_PASSED,
        Phase.CANARY_STARTED,
        Phase.SHADOWING,
        Phase.SHADOW_PASSED,
        Phase.ROUTED,
        Phase.ANALYSED,
    }
)


class ReleaseInterrupted(RuntimeError):
    """The release stopped on an error; weights were restored and `mlp release resume` continues it."""


class Executor:
    def __init__(
        self,
        deps: Deps,
        store: StateStore,
        policy: Policy,
        *,
        log: ReleaseLog | None = None,
        traffic: Callable[[], TrafficDriver] | None = None,
        say: Callable[[str], None] = print,
    ) -> None:
        self.deps = deps
        self.store = store
        self.policy = policy
        self._log = log
        self._traffic_factory = traffic
        self._traffic: TrafficDriver | None = None
        self.say = say
        self.traffic_stats: dict[str, Any] | None = None

    # ------------------------------------------------------------ driver

    def log(self, state: ReleaseState, event: str, **fields: Any) -> None:
        if self._log is None:
            self._log = ReleaseLog.for_release(state)
        if state.log_path is None:
            state.log_path = str(self._log.path)
        self._log.write(
            event, release_id=state.release_id, model_name=state.model_name, version=state.version, **fields
        )

    def run(self, state: ReleaseState) -> ReleaseState:
        """Advance the release until it ends. The caller holds the release lock."""
        steps: dict[Phase, Callable[[ReleaseState], None]] = {
            Phase.PENDING: self._gate,
            Phase.GATE_PASSED: self._start_canary,
            Phase.CANARY_STARTED: self._shadow_or_route,
            Phase.SHADOWING: self._judge_shadow,
            Phase.SHADOW_PASSED: self._route_first_step,
            Phase.ROUTED: self._analyse,
            Phase.ANALYSED: self._next_step,
            Phase.PROMOTED: self._move_champion,
            Phase.CHAMPION_MOVED: self._retire_old_stable,
            Phase.ROLLING_BACK: self._roll_back,
        }
        try:
            while not state.terminal:
                self._honour_abort(state)
                steps[state.phase](state)
        except BaseException as exc:  # includes KeyboardInterrupt and the SystemExit of a SIGTERM handler
            restored = self._restore_safe_weights(state)
            self._stop_shadow(state)  # `resume` mirrors again if the shadow phase was under way
            self.log(state, "interrupted", phase=state.phase.value, error=repr(exc), weights_restored_to=restored)
            self.store.save(state)
            raise ReleaseInterrupted(
                f"release {state.release_id} of v{state.version} stopped during the step after "
                f"'{state.phase.value}': {exc}. Gateway weights are back at {restored}. "
                "Fix the cause, then `mlp release resume` (continues) or `mlp release abort` (rolls back)."
            ) from exc
        finally:
            self._stop_traffic(state)
        self.store.clear_abort()
        return state

    def _advance(self, state: ReleaseState, phase: Phase, **fields: Any) -> None:
        state.phase = phase
        self.store.save(state)
        self.log(state, "step", phase=phase.value, step_index=state.step_index, weights=state.safe_weights, **fields)
        self.say(step_line(phase.value, fields))

    def _honour_abort(self, state: ReleaseState) -> None:
        reason = self.store.abort_requested()
        if reason and state.phase in ABORTABLE:
            state.reason = f"aborted: {reason}"
            self._advance(state, Phase.ROLLING_BACK, reason=state.reason)

    def _restore_safe_weights(self, state: ReleaseState) -> dict[int, int] | str:
        if not state.safe_weights:
            return "unchanged (no split was set yet)"
        try:
            if self.deps.serving.current_weights() != state.safe_weights:
                self.deps.serving.set_weights(state.safe_weights)
            return state.safe_weights
        except Exception as exc:  # the gateway itself is down: say so, the runbook takes over
            return f"NOT restored ({exc!r}); set them with `mlp release weights`"

    # ------------------------------------------------------------ traffic (demo)

    def _ensure_traffic(self, state: ReleaseState) -> None:
        if self._traffic_factory is not None and self._traffic is None:
            self._traffic = self._traffic_factory().start()
            self.log(state, "traffic_started", rps=self._traffic.rps)

    def _stop_traffic(self, state: ReleaseState) -> None:
        if self._traffic is not None:
            stats = self._traffic.stop().as_dict()
            self._traffic = None
            self.traffic_stats = stats
            self.log(state, "traffic", **stats)
            self.say(f"  traffic: {stats}")

    # ------------------------------------------------------------ steps

    def _weights(self, state: ReleaseState, percent: int) -> dict[int, int]:
        if percent >= 100 or state.stable_version is None:
            return {state.version: 100}
        return {state.stable_version: 100 - percent, state.version: percent}

    def _tag(self, state: ReleaseState, values: dict[str, Any]) -> None:
        for key, value in values.items():
            self.deps.registry.tag(state.version, key, "" if value is None else str(value))

    def _gate(self, state: ReleaseState) -> None:
        name = state.model_name
        if state.stable_version is None:
            raise RuntimeError(
                f"{name} has no stable version to compare the canary with: serve the champion first "
                "(`mlp serve start <version>`), or set the champion alias"
            )
        self._tag(
            state,
            {
                "release.status": Outcome.IN_PROGRESS.value,
                "release.id": state.release_id,
                "release.stable_version": state.stable_version,
                "release.reason": "",
            },
        )
        try:
            self.deps.notifier.analysis_failed(name, state.version, False)  # a new release starts clean
        except Exception as exc:
            self.log(state, "warning", detail=f"could not push {exc!r} to the Pushgateway")
        self.say(f"  pulling v{state.version} and running the promotion gate ...")
        # Fetched once here; the gate measures this very directory instead of resolving and fetching it again.
        model_dir = self.deps.registry.pull(state.version)
        outcome = self.deps.gate.run(state.version, model_dir)
        state.gate_report = outcome.report_path
        state.retrained = outcome.retrained
        if outcome.retrained:
            self._report_retrained_gate(state, failed=not outcome.passed)
        if not outcome.passed:
            state.reason = "promotion gate failed: " + "; ".join(outcome.failures)
            self._tag(
                state,
                {
                    "release.status": Outcome.GATE_FAILED.value,
                    "release.reason": state.reason,
                    "release.gate_report": outcome.report_path,
                },
            )
            self._advance(state, Phase.GATE_FAILED, reason=state.reason, gate_report=outcome.report_path)
            self.log(state, "finished", outcome=Outcome.GATE_FAILED.value, reason=state.reason)
            return
        self._tag(state, {"release.gate_report": outcome.report_path})
        self._advance(state, Phase.GATE_PASSED, gate_report=outcome.report_path)

    def _report_retrained_gate(self, state: ReleaseState, failed: bool) -> None:
        """A retrained candidate that fails the gate raises a ticket (an alert) instead of being retried."""
        try:
            self.deps.notifier.retrained_gate_failed(state.model_name, state.version, failed)
        except Exception as exc:
            self.log(state, "warning", detail=f"could not push {exc!r} to the Pushgateway")

    def _start_canary(self, state: ReleaseState) -> None:
        assert state.stable_version is not None
        serving = self.deps.serving
        if not serving.is_live(state.stable_version):
            self.say(f"  stable v{state.stable_version} is not running: starting it")
            serving.start(state.stable_version)
        self.say(f"  starting the canary server for v{state.version} beside stable v{state.stable_version} ...")
        serving.start(state.version)
        self._advance(state, Phase.CANARY_STARTED)

    def _set_split(self, state: ReleaseState, percent: int) -> dict[int, int]:
        weights = self._weights(state, percent)
        self.deps.serving.set_weights(weights)
        state.safe_weights = weights
        return weights

    # ------------------------------------------------------------ shadow phase

    def _shadow_or_route(self, state: ReleaseState) -> None:
        if state.shadow_seconds <= 0:
            self._route_first_step(state)
            return
        self._ensure_traffic(state)
        self.say(
            f"  shadow: mirroring {state.shadow_share_percent}% of stable v{state.stable_version}'s requests to "
            f"v{state.version} for {state.shadow_seconds}s (clients get stable's answers) ..."
        )
        self.deps.shadow.start(state.version, state.shadow_share_percent)
        state.shadow_started_at = datetime.now(UTC).isoformat()
        self._advance(state, Phase.SHADOWING, share_percent=state.shadow_share_percent)

    def _stop_shadow(self, state: ReleaseState) -> None:
        try:
            self.deps.shadow.stop()
        except Exception as exc:  # the gateway or the relay is down: say so; `mlp release abort` retries it
            self.log(state, "warning", detail=f"could not stop mirroring: {exc!r}")

    def _judge_shadow(self, state: ReleaseState) -> None:
        """Mirror for the rest of the shadow window, stop, let both servers flush their inference logs, then pair
        and judge the answers (`canary.quality`)."""
        assert state.stable_version is not None and state.shadow_started_at is not None
        self._ensure_traffic(state)
        self.deps.shadow.start(state.version, state.shadow_share_percent)  # again after a resume (idempotent)
        started = datetime.fromisoformat(state.shadow_started_at)
        left = state.shadow_seconds - (datetime.now(UTC) - started).total_seconds()
        deadline = self.deps.clock.monotonic() + left
        while (remaining := deadline - self.deps.clock.monotonic()) > 0:
            if self.store.abort_requested():
                return  # the run loop turns the abort into a roll-back
            self.deps.clock.sleep(min(remaining, 1.0))
        self.deps.shadow.stop()
        self.deps.clock.sleep(self.policy.serving.inference_log_flush_seconds + 2)  # both logs' last records land
        judgement, pairs = self._judge_quality(state, "shadow", started, datetime.now(UTC))
        if judgement.verdict is QualityVerdict.PASS:
            self._advance(state, Phase.SHADOW_PASSED, pairs=pairs)
            return
        if not self._quality_judged(state):
            self.say("    recorded, not judged: a retrained version is meant to answer differently (policy)")
            self._advance(state, Phase.SHADOW_PASSED, pairs=pairs, judged=False)
            return
        what = "shadow analysis failed" if judgement.verdict is QualityVerdict.FAIL else "shadow analysis inconclusive"
        self._fail(state, f"{what}: " + "; ".join(judgement.reasons))

    def _quality_judged(self, state: ReleaseState) -> bool:
        """A retrained version's measures are recorded, not judged, unless the policy says otherwise."""
        return self.policy.canary.shadow.judge_retrained or not state.retrained

    def _judge_quality(
        self, state: ReleaseState, phase: str, since: datetime, until: datetime
    ) -> tuple[QualityJudgement, int]:
        """Pair both versions' logged answers of [since, until), judge them on `canary.quality`; log, tag, print and
        push the measures (`phase`: "shadow", or the traffic step's "quality-<percent>")."""
        assert state.stable_version is not None
        comparison = compare(
            paired(
                self.deps.shadow.answers(state.stable_version, since, until),
                self.deps.shadow.answers(state.version, since, until),
            )
        )
        quality = self.policy.canary.quality
        judgement = judge(comparison, QualityThresholds.from_policy(quality))
        numbers = quality_numbers(comparison, quality.min_pairs_per_label)
        summary = {"phase": phase, "verdict": judgement.verdict.value, **numbers}
        state.analyses.append({**summary, "reasons": judgement.reasons})
        self.log(state, "shadow_analysis", **summary, reasons=judgement.reasons)
        self.say(shadow_line(summary, judgement.reasons))
        self._tag(state, {f"release.{phase}.{k}": v for k, v in summary.items() if k != "phase"})
        judged_failed = judgement.verdict is not QualityVerdict.PASS and self._quality_judged(state)
        try:
            measures = {k: v for k, v in summary.items() if k not in ("phase", "verdict", "label_shift_p_value")}
            self.deps.notifier.quality_measured(
                state.model_name, state.version, state.stable_version, measures, judged_failed
            )
        except Exception as exc:
            self.log(state, "warning", detail=f"could not push the shadow measures to the Pushgateway: {exc!r}")
        return judgement, comparison.pairs

    def _fail(self, state: ReleaseState, reason: str) -> None:
        """Roll back for a failed or inconclusive analysis, with `reason`; the version's failure is pushed."""
        state.reason = reason
        try:
            self.deps.notifier.analysis_failed(state.model_name, state.version, True)
        except Exception as exc:
            self.log(state, "warning", detail=f"could not push to the Pushgateway: {exc!r}")
        self._advance(state, Phase.ROLLING_BACK, reason=state.reason)

    # ------------------------------------------------------------ traffic steps

    def _mirrors(self, state: ReleaseState) -> bool:
        """Whether stable's share is mirrored to the candidate through the traffic steps: whenever the release had
        a shadow phase. The gateway mirrors only requests the split sends to stable, so none is answered twice."""
        return state.shadow_seconds > 0

    def _route_first_step(self, state: ReleaseState) -> None:
        if self._mirrors(state):  # idempotent: the shadow phase stopped it for its last pairs to land
            self.deps.shadow.start(state.version, state.shadow_share_percent)
        self._ensure_traffic(state)
        state.step_index = 0
        self._set_split(state, state.steps[0])
        self._advance(state, Phase.ROUTED)

    def _analyse(self, state: ReleaseState) -> None:
        assert state.stable_version is not None
        self._ensure_traffic(state)
        # After a resume the gateway may hold anything: re-assert the split this step completed with.
        if self.deps.serving.current_weights() != state.safe_weights:
            self.deps.serving.set_weights(state.safe_weights)
        percent = state.steps[state.step_index]
        a = self.policy.canary.analysis
        settings = AnalysisSettings.from_policy(a, state.window_seconds, state.interval_seconds)
        self.say(
            f"  analysing v{state.version} at {percent}% against v{state.stable_version} for "
            f"{state.window_seconds}s (a measurement every {state.interval_seconds}s) ..."
        )

        def on_measurement(m: Measurement) -> None:
            summary = m.summary()
            self.log(state, "measurement", percent=percent, **summary)
            self.say(measurement_line(summary))

        if self._mirrors(state):
            self.deps.shadow.start(state.version, state.shadow_share_percent)  # again after a resume (idempotent)
        started, started_monotonic = datetime.now(UTC), self.deps.clock.monotonic()
        result = run_analysis(
            self.deps.metrics,
            settings,
            model_name=state.model_name,
            canary=state.version,
            stable=state.stable_version,
            clock=self.deps.clock,
            extensions_used=state.extensions_used,
            on_measurement=on_measurement,
            abort_requested=self.store.abort_requested,
            endpoint=contracts.server_route(self.policy.model(state.model_name).task),
        )
        state.extensions_used = result.extensions_used
        self._record_analysis(state, percent, result)
        if result.verdict is Verdict.PASS and self._mirrors(state):
            # The step's pairs, up to a log flush ago: later records may not have landed on both sides yet.
            lag = self.policy.serving.inference_log_flush_seconds + 2
            elapsed = self.deps.clock.monotonic() - started_monotonic
            if elapsed <= lag:  # a window shorter than a flush: wait for its records instead
                self.deps.clock.sleep(lag)
                lag = 0
            until = started + timedelta(seconds=elapsed - lag)
            judgement, _ = self._judge_quality(state, f"quality-{percent}", started, until)
            if judgement.verdict is not QualityVerdict.PASS and self._quality_judged(state):
                what = "failed" if judgement.verdict is QualityVerdict.FAIL else "inconclusive"
                self._fail(state, f"quality analysis {what} at {percent}%: " + "; ".join(judgement.reasons))
                return
        if result.verdict is Verdict.PASS:
            self._advance(state, Phase.ANALYSED, percent=percent, verdict=result.verdict.value)
            return
        prefix = {Verdict.FAIL: "canary analysis failed", Verdict.ABORTED: "aborted"}.get(result.verdict, "canary")
        if result.verdict in (Verdict.FAIL, Verdict.INCONCLUSIVE):
            self._fail(state, f"{prefix}: {result.reason}")
            return
        state.reason = f"{prefix}: {result.reason}"
        self._advance(state, Phase.ROLLING_BACK, reason=state.reason)

    def _record_analysis(self, state: ReleaseState, percent: int, result: AnalysisResult) -> None:
        numbers = result.numbers()
        summary = {
            "percent": percent,
            "verdict": result.verdict.value,
            "reason": result.reason,
            "measurements": len(result.measurements),
            "extensions_used": result.extensions_used,
            **numbers,
        }
        state.analyses.append(summary)
        self.log(state, "analysis", **summary)
        tags: dict[str, Any] = {
            "release.analysis.verdict": result.verdict.value,
            "release.analysis.percent": percent,
            "release.analysis.measurements": len(result.measurements),
            "release.analysis.extensions": result.extensions_used,
            "release.analysis.window_seconds": state.window_seconds,
        }
        tags.update({f"release.analysis.{k}": v for k, v in numbers.items()})
        self._tag(state, tags)

    def _next_step(self, state: ReleaseState) -> None:
        self._ensure_traffic(state)
        # Only a completed step moves the index: an error half-way must leave the state resumable as it was.
        index = state.step_index + 1
        percent = state.steps[index]
        if percent >= 100:
            self._stop_shadow(state)  # before the candidate takes every request: nothing left to compare
        self._set_split(state, percent)
        state.step_index = index
        self._advance(state, Phase.PROMOTED if percent >= 100 else Phase.ROUTED, percent=percent)

    def _move_champion(self, state: ReleaseState) -> None:
        alias = self.policy.release.champion_alias
        self.deps.registry.set_alias(alias, state.version)
        self._tag(state, {"release.status": Outcome.PROMOTED.value, "release.reason": "analysis passed"})
        state.reason = "promoted: analysis passed"
        self._advance(state, Phase.CHAMPION_MOVED, alias=alias)

    def _retire_old_stable(self, state: ReleaseState) -> None:
        old = state.stable_version
        if old is not None and old != state.version and self.deps.serving.is_live(old):
            self.say(f"  draining v{old} for {state.drain_seconds}s, then stopping it")
            self.deps.serving.stop(old, state.drain_seconds)
        self._advance(state, Phase.SUCCEEDED, retired=old)
        self.log(state, "finished", outcome=Outcome.PROMOTED.value, reason=state.reason, analyses=state.analyses)

    def _roll_back(self, state: ReleaseState) -> None:
        self._stop_shadow(state)  # no request is mirrored to a server about to go
        # Traffic first, server second: the canary gets weight 0 before it goes away.
        if state.stable_version is not None:
            weights = {state.stable_version: 100}
            if self.deps.serving.current_weights() != weights:
                self.deps.serving.set_weights(weights)
            state.safe_weights = weights
        if self.deps.serving.is_live(state.version) and state.version != state.stable_version:
            self.deps.serving.stop(state.version, state.drain_seconds)
        reason = state.reason or "rolled back"
        self._tag(state, {"release.status": Outcome.ROLLED_BACK.value, "release.reason": reason})
        self._advance(state, Phase.ROLLED_BACK, reason=reason)
        self.log(state, "finished", outcome=Outcome.ROLLED_BACK.value, reason=reason, analyses=state.analyses)


def _num(value: float | None) -> str:
    """Prometheus `increase()` extrapolates, so request counts come back fractional: show them whole."""
    return "n/a" if value is None else f"{value:.0f}"


# What the executor prints; `mlp release wait` prints the same lines from the release log of another process.


def step_line(phase: str, fields: dict[str, Any]) -> str:
    return f"  [{phase}] " + ", ".join(f"{k}={v}" for k, v in fields.items())


def shadow_line(summary: dict[str, Any], reasons: list[str]) -> str:
    """One paired comparison: the shadow phase's (`shadow pass: ...`) or a traffic step's (`quality at 10% pass`)."""
    phase = str(summary.get("phase", "shadow"))
    what = "shadow" if phase == "shadow" else f"quality at {phase.removeprefix('quality-')}%"
    line = (
        f"    {what} {summary['verdict']}: pairs={summary['pairs']}, agreement={summary['agreement']}, "
        f"worst flip rate={summary['worst_flip_rate']}, label PSI={summary['label_psi']} "
        f"(p={summary['label_shift_p_value']}), confidence delta={summary['mean_confidence_delta']}"
    )
    return line + "".join(f"\n      - {reason}" for reason in reasons)


def measurement_line(m: dict[str, Any]) -> str:
    """One measurement (`Measurement.summary()`, as logged) on one line."""
    ratio = m.get("latency_ratio")
    return (
        f"    {m.get('verdict')!s:>12}: canary requests={_num(m.get('canary_requests'))}, "
        f"p95 ratio={'n/a' if ratio is None else f'{ratio:.2f}'}, errors={m.get('canary_error_rate')}, "
        f"up={m.get('canary_up_min')}, restarts={m.get('canary_restarts')}"
    )
