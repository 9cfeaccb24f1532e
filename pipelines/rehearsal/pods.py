"""`podman kube play` of one rendered object, and what the rehearsal asks of the container it started."""

from __future__ import annotations

import contextlib
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from infra.containers.podman import PodmanError, podman
from infra.local.paths import sub
from infra.local.secrets import write_private
from pipelines.rehearsal.changes import Manifest


class RehearsalError(RuntimeError):
    """A pod did not run as rendered; the message carries the container's log."""


def kube_file(manifest: Manifest) -> Path:
    """The object as a kube file: 0600 and written atomically, since it holds keys (S3, registry, secrets)."""
    path = sub("rehearsal") / f"{manifest['metadata']['name']}.yaml"
    write_private(path, yaml.safe_dump(manifest, sort_keys=False))
    return path


def play(path: Path) -> str:
    """Start the object in `path` (stopping a leftover of an earlier run first); return its container's id."""
    down(path)
    output = podman("kube", "play", str(path))
    lines = [ln.strip() for ln in output.splitlines()]
    ids = [lines[i + 1] for i, ln in enumerate(lines[:-1]) if ln.startswith("Container")]
    if not ids:
        raise RehearsalError(f"podman kube play started no container:\n{output}")
    return ids[0]


def down(path: Path) -> None:
    with contextlib.suppress(PodmanError):  # nothing was running
        podman("kube", "down", str(path))


def container_log(container_id: str, lines: int = 60) -> str:
    try:
        return podman("logs", "--tail", str(lines), container_id)
    except PodmanError as exc:
        return str(exc)


def inspect(container_id: str, field: str) -> str:
    return podman("inspect", "--format", f"{{{{{field}}}}}", container_id).strip()


@dataclass(frozen=True)
class Exited:
    """A run-to-completion pod (a Job's), once its container exited."""

    container_id: str
    exit_code: int
    seconds: float
    peak_memory_bytes: float
    oom_killed: bool
    log: str


def run_to_exit(path: Path, deadline_seconds: float, log_lines: int = 200) -> Exited:
    """Play the pod in `path` and wait for its container to exit, sampling its memory each second; raise past
    `deadline_seconds` (the Job's activeDeadlineSeconds), with its log."""
    from pipelines.rehearsal.load import memory_bytes

    started = time.monotonic()
    cid = play(path)
    peak = 0.0
    while inspect(cid, ".State.Status") not in {"exited", "stopped"}:
        if time.monotonic() - started > deadline_seconds:
            raise RehearsalError(f"ran past activeDeadlineSeconds={deadline_seconds}:\n{container_log(cid)}")
        with contextlib.suppress(Exception):  # the container may end between the check and the sample
            peak = max(peak, memory_bytes(cid))
        time.sleep(1)
    return Exited(
        container_id=cid,
        exit_code=int(inspect(cid, ".State.ExitCode")),
        seconds=time.monotonic() - started,
        peak_memory_bytes=peak,
        oom_killed=inspect(cid, ".State.OOMKilled") == "true",
        log=container_log(cid, log_lines),
    )


def http_status(url: str, timeout: float = 2.0) -> int:
    """The status a probe would see; 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return 0


def wait_ready(container_id: str, url: str, budget_seconds: float, started: float) -> float:
    """Seconds from `started` until `url` answers 200; raise with the log once the budget is spent, the container
    exits or restarts."""
    while http_status(url) != 200:
        waited = time.monotonic() - started
        status, restarts = inspect(container_id, ".State.Status"), int(inspect(container_id, ".RestartCount"))
        if waited > budget_seconds or status == "exited" or restarts > 0:
            raise RehearsalError(
                f"not ready after {waited:.0f}s (budget {budget_seconds:.0f}s, state {status}, {restarts} restarts):"
                f"\n{container_log(container_id)}"
            )
        time.sleep(0.5)
    return time.monotonic() - started


def liveness_failure_seconds(url: str, probe: dict[str, int], limit_seconds: float) -> float:
    """Probe `url` as the kubelet runs a rendered probe (every `periodSeconds`, each waiting `timeoutSeconds`) and
    return the seconds until `failureThreshold` consecutive failures, when the kubelet restarts the container.
    Raise if the probe keeps passing for `limit_seconds`."""
    started, failures = time.monotonic(), 0
    while time.monotonic() - started <= limit_seconds:
        tick = time.monotonic()
        failures = failures + 1 if http_status(url, timeout=probe["timeoutSeconds"]) != 200 else 0
        if failures >= probe["failureThreshold"]:
            return time.monotonic() - started
        time.sleep(max(0.0, probe["periodSeconds"] - (time.monotonic() - tick)))
    raise RehearsalError(f"{url} kept answering for {limit_seconds:.0f}s: the probe would never restart it")
