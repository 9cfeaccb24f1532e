"""Where a release lives: durable state, the one-release-per-model lock, the abort request and the release log.

- state: `<state>/releases/<model>.json`, replaced atomically after every step (`infra.local.files`);
- lock: `flock` on `<state>/releases/<model>.lock` (`infra.local.files.try_lock`). The kernel drops it when the
  owner dies, even on SIGKILL, so a dead release never blocks the next one, while a live one always does. The file
  records the owner's pid and release id so a refusal can name them;
- abort request: `<state>/releases/<model>.abort`, polled by the running executor;
- log: one JSON object per line under `build/reports/releases/`, append-only, one file per release.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import IO, Any

from core.clock import utcnow
from infra.local.files import atomic_write_text, try_lock
from infra.local.paths import build_dir, sub
from pipelines.release.state import ReleaseState


def releases_dir() -> Path:
    return sub("releases")


def reports_dir() -> Path:
    path = build_dir() / "reports" / "releases"
    path.mkdir(parents=True, exist_ok=True)
    return path


class ReleaseBusy(RuntimeError):
    """Another release of the same model holds the lock; the message names it and what to do."""


class StateStore:
    """The durable state of the current (or last) release of one model."""

    def __init__(self, model_name: str, root: Path | None = None) -> None:
        self.model_name = model_name
        self.root = root or releases_dir()
        self.root.mkdir(parents=True, exist_ok=True)

    @property
    def path(self) -> Path:
        return self.root / f"{self.model_name}.json"

    def load(self) -> ReleaseState | None:
        if not self.path.exists():
            return None
        return ReleaseState.from_json(json.loads(self.path.read_text()))

    def save(self, state: ReleaseState) -> None:
        state.updated_at = utcnow()
        atomic_write_text(self.path, json.dumps(state.to_json(), indent=2, sort_keys=True))

    # ------------------------------------------------------------ abort requests

    @property
    def abort_path(self) -> Path:
        return self.root / f"{self.model_name}.abort"

    def request_abort(self, reason: str) -> None:
        self.abort_path.write_text(json.dumps({"reason": reason, "at": utcnow()}))

    def abort_requested(self) -> str | None:
        if not self.abort_path.exists():
            return None
        try:
            return str(json.loads(self.abort_path.read_text()).get("reason") or "aborted by operator")
        except (json.JSONDecodeError, OSError):
            return "aborted by operator"

    def clear_abort(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.abort_path.unlink()


class ReleaseLock:
    """One release per model at a time. Use as a context manager; `acquire` raises ReleaseBusy."""

    def __init__(self, model_name: str, root: Path | None = None) -> None:
        self.model_name = model_name
        self.path = (root or releases_dir()) / f"{model_name}.lock"
        self._fh: IO[str] | None = None

    def owner(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.path.read_text() or "{}"))
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def is_held(self) -> bool:
        """Is a live process holding the lock? (probe without keeping it)"""
        if self._fh is not None:
            return True
        probe = try_lock(self.path)
        if probe is None:
            return True
        probe.close()  # closing drops the lock
        return False

    def acquire(self, release_id: str, version: int) -> None:
        fh = try_lock(self.path)
        if fh is None:
            owner = self.owner()
            raise ReleaseBusy(
                f"a release of {self.model_name} is already running: v{owner.get('version', '?')} "
                f"(release {owner.get('release_id', '?')}, pid {owner.get('pid', '?')}, "
                f"since {owner.get('since', '?')}). "
                "Only one release per model runs at a time. Watch it with `mlp release status`, "
                "or stop it with `mlp release abort`."
            ) from None
        self._fh = fh
        self.record(release_id, version)

    def record(self, release_id: str, version: int) -> None:
        """Write the owner (this pid) into the lock file, so a refused release can name who holds it."""
        assert self._fh is not None, "record() needs the lock"
        self._fh.seek(0)
        self._fh.truncate()
        self._fh.write(
            json.dumps({"pid": os.getpid(), "release_id": release_id, "version": version, "since": utcnow()})
        )
        self._fh.flush()

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()  # closing drops the lock
            self._fh = None

    def __enter__(self) -> ReleaseLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class ReleaseLog:
    """Append-only JSON lines: who started the release, every step, every analysis with its numbers."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)

    @classmethod
    def for_release(cls, state: ReleaseState) -> ReleaseLog:
        return cls(reports_dir() / f"{state.model_name}-{state.release_id}.jsonl")

    def write(self, event: str, **fields: Any) -> dict[str, Any]:
        record = {"ts": utcnow(), "event": event, **fields}
        with self.path.open("a") as fh:
            fh.write(json.dumps(record, default=str) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return record

    def records(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
