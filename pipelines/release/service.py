"""Start, resume, abort and inspect releases: what `mlp release ...` and the webhook receiver call.

One release per model at a time (`store.ReleaseLock`). A release that was interrupted (its process died, or it
stopped on an error) is continued by `resume`, by starting the same version again, or rolled back by `abort`;
starting a *different* version while one is unfinished is refused, naming it.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Literal

from core import env
from core.policy import Policy
from pipelines.release.deps import Deps, Registry
from pipelines.release.executor import ABORTABLE, Executor
from pipelines.release.state import Outcome, Phase, ReleaseState, Trigger
from pipelines.release.store import ReleaseBusy, ReleaseLock, ReleaseLog, StateStore
from pipelines.release.traffic import TrafficDriver

WindowMode = Literal["local", "production"]


@dataclass(frozen=True)
class Timing:
    window_seconds: int
    interval_seconds: int
    drain_seconds: int
    shadow_seconds: int  # 0: the policy has no shadow phase


def timing(p: Policy, mode: WindowMode | None = None) -> Timing:
    """Local runs use the short local window and interval from the policy; the logic is the same."""
    mode = mode or ("production" if env.RELEASE_WINDOW.get() == "production" else "local")
    a, c, s = p.canary.analysis, p.canary, p.canary.shadow
    if mode == "production":
        return Timing(a.window_seconds, a.interval_seconds, c.drain_grace_seconds, s.duration_seconds * s.enabled)
    shadow = s.local_duration_seconds * s.enabled
    return Timing(a.local_window_seconds, a.local_interval_seconds, c.local_drain_grace_seconds, shadow)


def _sigterm_as_interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM (supervisor, `kill`) unwinds like Ctrl-C: the executor restores the last safe split first.
    raise KeyboardInterrupt(f"signal {signum}")


def install_signal_handlers() -> None:
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)


class ReleaseRefused(RuntimeError):
    """The release cannot start; the message says why and what to do."""


def _run(
    state: ReleaseState,
    deps: Deps,
    store: StateStore,
    p: Policy,
    traffic: Callable[[], TrafficDriver] | None,
    say: Callable[[str], None],
) -> tuple[ReleaseState, dict[str, object] | None]:
    log = ReleaseLog(Path(state.log_path)) if state.log_path else None
    executor = Executor(deps, store, p, log=log, traffic=traffic, say=say)
    final = executor.run(state)
    return final, executor.traffic_stats


def start(
    *,
    model_name: str,
    version: int | str,
    trigger: Trigger,
    deps: Deps,
    p: Policy,
    mode: WindowMode | None = None,
    traffic: Callable[[], TrafficDriver] | None = None,
    store: StateStore | None = None,
    lock: ReleaseLock | None = None,
    say: Callable[[str], None] = print,
) -> tuple[ReleaseState, dict[str, object] | None]:
    """Release `version` (a number or an alias, resolved once here): gate, canary, analysis, alias."""
    version = deps.registry.resolve(str(version))
    store = store or StateStore(model_name)
    lock = lock or ReleaseLock(model_name, store.root)
    lock.acquire("(starting)", version)  # raises ReleaseBusy naming the running release
    try:
        previous = store.load()
        if previous is not None and not previous.terminal:
            if previous.version != version:
                raise ReleaseRefused(
                    f"the release of v{previous.version} ({previous.release_id}) was interrupted after step "
                    f"'{previous.phase.value}'. Finish it first: `mlp release resume` continues it, "
                    "`mlp release abort` rolls it back."
                )
            say(f"resuming the unfinished release {previous.release_id} of v{version} (after '{previous.phase}')")
            lock.record(previous.release_id, version)
            ReleaseLog.for_release(previous).write("resumed", by=trigger.actor, trigger=trigger.kind)
            return _run(previous, deps, store, p, traffic, say)
        if previous is not None and previous.phase is Phase.SUCCEEDED and previous.version == version:
            say(f"note: v{version} was already promoted by {previous.release_id}; releasing it again")
        stable = deps.serving.stable_version() or deps.registry.get_alias(p.release.champion_alias)
        if stable == version:
            raise ReleaseRefused(
                f"v{version} is already the stable version of {model_name}: nothing to release. "
                "Register or choose another version."
            )
        t = timing(p, mode)
        state = ReleaseState.new(
            model_name,
            version,
            stable,
            trigger,
            window_seconds=t.window_seconds,
            interval_seconds=t.interval_seconds,
            drain_seconds=t.drain_seconds,
            steps=list(p.canary.steps),
            shadow_seconds=t.shadow_seconds,
            shadow_share_percent=p.canary.shadow.share_percent,
        )
        state.owner_pid = os.getpid()
        lock.record(state.release_id, version)
        store.clear_abort()
        log = ReleaseLog.for_release(state)
        state.log_path = str(log.path)
        store.save(state)
        a = p.canary.analysis
        log.write(
            "started",
            release_id=state.release_id,
            model_name=model_name,
            version=version,
            stable_version=stable,
            trigger=trigger.kind,
            actor=trigger.actor,
            trigger_detail=trigger.detail,
            steps=state.steps,
            window_seconds=t.window_seconds,
            interval_seconds=t.interval_seconds,
            thresholds={
                "max_latency_ratio": a.max_latency_ratio,
                "max_error_rate": a.max_error_rate,
                "min_requests": a.min_requests,
                "failure_limit": a.failure_limit,
                "on_inconclusive": a.on_inconclusive,
                "max_extensions": a.max_extensions,
            },
        )
        say(
            f"release {state.release_id}: {model_name} v{version} against stable v{stable} "
            f"(steps {state.steps}, window {t.window_seconds}s) — log {log.path}"
        )
        return _run(state, deps, store, p, traffic, say)
    finally:
        lock.release()


def resume(
    *,
    model_name: str,
    deps: Deps,
    p: Policy,
    actor: str,
    traffic: Callable[[], TrafficDriver] | None = None,
    store: StateStore | None = None,
    say: Callable[[str], None] = print,
) -> tuple[ReleaseState, dict[str, object] | None]:
    store = store or StateStore(model_name)
    lock = ReleaseLock(model_name, store.root)
    state = store.load()
    if state is None:
        raise ReleaseRefused(f"no release of {model_name} to resume: start one with `mlp release start`")
    lock.acquire(state.release_id, state.version)
    try:
        state = store.load() or state  # re-read under the lock
        if state.terminal:
            say(f"release {state.release_id} of v{state.version} already ended: {state.phase.value} ({state.reason})")
            return state, None
        state.owner_pid = os.getpid()
        say(f"resuming release {state.release_id} of v{state.version} after step '{state.phase.value}'")
        ReleaseLog.for_release(state).write("resumed", by=actor, after_phase=state.phase.value)
        return _run(state, deps, store, p, traffic, say)
    finally:
        lock.release()


def abort(
    *,
    model_name: str,
    deps: Deps,
    p: Policy,
    actor: str,
    reason: str,
    wait_seconds: float = 120,
    store: StateStore | None = None,
    say: Callable[[str], None] = print,
) -> ReleaseState:
    """Roll back the current release: ask the running executor to, or do it here if no process runs it."""
    store = store or StateStore(model_name)
    lock = ReleaseLock(model_name, store.root)
    state = store.load()
    if state is None or state.terminal:
        what = "no release" if state is None else f"the last release ({state.release_id}) already ended: {state.phase}"
        raise ReleaseRefused(f"nothing to abort for {model_name}: {what}")
    if state.phase not in ABORTABLE and state.phase is not Phase.ROLLING_BACK:
        raise ReleaseRefused(
            f"release {state.release_id} already promoted v{state.version} (step '{state.phase.value}'); "
            "it finishes on its own. To go back, release the previous version or set weights with "
            "`mlp release weights` (runbooks/manual-abort-and-rollback.md)."
        )
    store.request_abort(f"{reason} (by {actor})")
    if lock.is_held():
        say(f"asked the running release {state.release_id} (pid {lock.owner().get('pid')}) to roll back ...")
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            current = store.load()
            if current is not None and current.terminal:
                return current
            time.sleep(0.5)
        raise ReleaseRefused(
            f"the running release did not finish its rollback within {wait_seconds:.0f}s; see runbooks/release-stuck.md"
        )
    say(f"no process runs release {state.release_id}: rolling it back here")
    final, _ = resume(model_name=model_name, deps=deps, p=p, actor=actor, store=store, say=say)
    return final


@dataclass(frozen=True)
class Status:
    """What `mlp release status` shows: the current (or last) release and whether a process runs it."""

    state: ReleaseState | None
    running: bool
    owner: dict[str, Any]

    @property
    def interrupted(self) -> bool:
        return self.state is not None and not self.state.terminal and not self.running


def status(model_name: str, store: StateStore | None = None) -> Status:
    store = store or StateStore(model_name)
    lock = ReleaseLock(model_name, store.root)
    return Status(store.load(), lock.is_held(), lock.owner())


def record_decision(*, registry: Registry, version: int, outcome: str, reason: str, champion_alias: str | None) -> None:
    """Record a release decided elsewhere (the cluster's Argo Rollouts run) on the version; with an alias, move it."""
    allowed = sorted({o.value for o in Outcome} - {Outcome.IN_PROGRESS.value})
    if outcome not in allowed:
        raise ReleaseRefused(f"the outcome must be one of {allowed}, not {outcome!r}")
    registry.tag(version, "release.status", outcome)
    registry.tag(version, "release.reason", reason)
    if champion_alias:
        registry.set_alias(champion_alias, version)


__all__ = [
    "ReleaseBusy",
    "ReleaseRefused",
    "Status",
    "Timing",
    "abort",
    "install_signal_handlers",
    "record_decision",
    "resume",
    "start",
    "status",
    "timing",
]
