"""Run podman with the project's own configuration (`containers.conf` beside this file)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

CONTAINERS_CONF = Path(__file__).with_name("containers.conf")


class PodmanError(RuntimeError):
    """A podman command failed; the message carries its output."""


def podman_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def available() -> bool:
    return shutil.which("podman") is not None


def podman(*args: str, stdin: bytes | None = None, timeout: float = 1800) -> str:
    """Run `podman ARGS` and return its stdout; raise PodmanError with both streams when it fails."""
    result = subprocess.run(
        ["podman", *args], input=stdin, capture_output=True, env=podman_env(), timeout=timeout, check=False
    )
    if result.returncode != 0:
        out = (result.stdout + result.stderr).decode(errors="replace")
        raise PodmanError(f"podman {' '.join(args)} exited {result.returncode}:\n{out[-4000:]}")
    return result.stdout.decode(errors="replace")


def image_exists(ref: str) -> bool:
    result = subprocess.run(["podman", "image", "exists", ref], env=podman_env(), capture_output=True, check=False)
    return result.returncode == 0


def image_size(ref: str) -> int:
    """Size in bytes of a local image."""
    return int(podman("image", "inspect", "--format", "{{.Size}}", ref).strip())


def image_id(ref: str) -> str:
    return podman("image", "inspect", "--format", "{{.Id}}", ref).strip()
