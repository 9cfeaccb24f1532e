"""Follow a release that another process runs: `mlp release wait`.

In production nobody types `mlp release start`: the model owner sets the `candidate` alias, MLflow delivers the
event to the webhook receiver, and the receiver spawns the release. Whoever set the alias follows that release
here, through the files every release writes (the persisted state and the JSON-lines log), and gets its outcome
as an exit code. The local runtime has no users, so the follower can also send user-like traffic while the
canary serves (`traffic`), as `mlp release start --drive-traffic` does for a release it runs itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from core.clock import Clock, SystemClock
from pipelines.release.executor import measurement_line, shadow_line, step_line
from pipelines.release.state import Phase, ReleaseState
from pipelines.release.store import ReleaseLog, StateStore
from pipelines.release.traffic import TrafficDriver

# The canary serves from here until the release ends: the window in which traffic tells it from stable.
CANARY_SERVING = frozenset({Phase.CANARY_STARTED, Phase.ROUTED, Phase.ANALYSED})
# Log fields every record carries; a progress line shows the rest.
COMMON_FIELDS = frozenset({"ts", "event", "release_id", "model_name", "version"})


class WaitError(RuntimeError):
    """The release did not start or end in time, or cannot start; the message says where to look."""


@dataclass(frozen=True)
class Wanted:
    """Which release to follow: of this version (any if None), started at or after `since` (any if None)."""

    version: int | None = None
    since: datetime | None = None

    def matches(self, state: ReleaseState) -> bool:
        if self.version is not None and state.version != self.version:
            return False
        # An unfinished release of the version counts whenever it began: starting that version again resumes it.
        return self.since is None or not state.terminal or datetime.fromisoformat(state.created_at) >= self.since

    def describe(self) -> str:
        what = f"v{self.version}" if self.version is not None else "any version"
        return what + (f" started since {self.since.isoformat()}" if self.since else "")


def describe(record: dict[str, Any]) -> str:
    """One release-log record as a progress line."""
    event = record.get("event", "?")
    rest = {k: v for k, v in record.items() if k not in COMMON_FIELDS}
    if event == "step":
        return step_line(str(rest.pop("phase", "?")), rest)
    if event == "measurement":
        return measurement_line(rest)
    if event == "shadow_analysis":
        return shadow_line(rest, list(rest.get("reasons", [])))
    if event == "started":
        return (
            f"  started by {rest.get('trigger')} ({rest.get('actor')}): v{record.get('version')} against stable "
            f"v{rest.get('stable_version')}, steps {rest.get('steps')}, window {rest.get('window_seconds')}s"
        )
    if event == "finished":
        return f"  finished: {rest.get('outcome')} — {rest.get('reason')}"
    return f"  {event}: " + ", ".join(f"{k}={v}" for k, v in rest.items())


class Follower:
    """Prints the records a release log gained since the last look."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.shown = 0
        self.log_path: str | None = None

    def show(self, state: ReleaseState) -> None:
        if state.log_path is None:
            return
        if state.log_path != self.log_path:
            self.log_path, self.shown = state.log_path, 0
        records = ReleaseLog(Path(state.log_path)).records()
        for record in records[self.shown :]:
            self.say(describe(record))
        self.shown = len(records)


def wait(
    store: StateStore,
    wanted: Wanted,
    timeout: float,
    *,
    traffic: Callable[[], TrafficDriver] | None = None,
    clock: Clock | None = None,
    poll_seconds: float = 1.0,
    say: Callable[[str], None] = print,
) -> tuple[ReleaseState, dict[str, object] | None]:
    """Follow the wanted release until it ends; (final state, stats of the traffic sent here, if any)."""
    clock = clock or SystemClock()
    deadline = clock.monotonic() + timeout
    follower = Follower(say)
    driver: TrafficDriver | None = None
    say(f"waiting for the release of {store.model_name} {wanted.describe()} (up to {timeout:.0f}s) ...")
    try:
        while True:
            state = store.load()
            if state is not None and wanted.matches(state):
                follower.show(state)
                if state.terminal:
                    stats, driver = _stop(driver), None
                    return state, stats
                if driver is None and traffic is not None and state.phase in CANARY_SERVING:
                    driver = traffic().start()
                    say(f"  sending {driver.rps:g} requests/s through the gateway while the canary serves")
            elif state is not None and not state.terminal:
                raise WaitError(_blocked_message(state, wanted))
            if clock.monotonic() >= deadline:
                raise WaitError(_timeout_message(store.model_name, wanted, state, timeout))
            clock.sleep(poll_seconds)
    finally:
        _stop(driver)


def _stop(driver: TrafficDriver | None) -> dict[str, object] | None:
    return None if driver is None else driver.stop().as_dict()


def _blocked_message(other: ReleaseState, wanted: Wanted) -> str:
    # One release per model: the wanted one is refused (or was) while another is unfinished.
    return (
        f"release {other.release_id} of v{other.version} is unfinished (step '{other.phase.value}'), so a release "
        f"of {wanted.describe()} cannot run: `mlp release status`, then `mlp release resume` or `mlp release abort`"
    )


def _timeout_message(model_name: str, wanted: Wanted, state: ReleaseState | None, timeout: float) -> str:
    if state is not None and wanted.matches(state):
        return (
            f"release {state.release_id} of v{state.version} is still at step '{state.phase.value}' after "
            f"{timeout:.0f}s: `mlp release status` shows it; runbooks/release-stuck.md"
        )
    return (
        f"no release of {model_name} {wanted.describe()} within {timeout:.0f}s. If an alias should have started "
        "it: is the webhook registered (`mlp release webhook register`) and the receiver up (`mlp env status`)? "
        "See runbooks/webhook-not-arriving.md and the receiver's release-*.log files in the logs folder."
    )
