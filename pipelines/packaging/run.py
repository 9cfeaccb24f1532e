"""`mlp model package`: run `pipelines.packaging.build` in the packaging env (`.venv-pack`, the one with PyTorch).

The main env never imports PyTorch, so packaging is a subprocess; the policy's serving and gate settings go to it
as arguments, the build folder as its environment.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from core import env
from core.policy import REPO_ROOT, Policy

PACK_PYTHON = REPO_ROOT / ".venv-pack" / "bin" / "python"


class PackagingError(RuntimeError):
    """Packaging cannot start; the message says what to do."""


def build_command(variants: list[str], force: bool, p: Policy) -> list[str]:
    """The packaging command line for variants (names of `VARIANTS`, resolved by the caller)."""
    args = [arg for name in variants for arg in ("--variant", name)]
    args += [
        "--max-seq-tokens",
        str(p.serving.max_seq_tokens),
        "--latency-requests",
        str(p.promotion.latency_requests),
        "--warmup",
        str(p.promotion.latency_warmup_requests),
    ]
    if force:
        args.append("--force")
    return [str(PACK_PYTHON), "-m", "pipelines.packaging.build", *args]


def package(variants: list[str], force: bool, p: Policy, build_root: Path) -> int:
    """Export, quantise, train heads and measure (cached per variant); the packaging process's exit code."""
    cmd = build_command(variants, force, p)
    if not PACK_PYTHON.exists():
        raise PackagingError("The packaging venv is missing. Run `make bootstrap` (installs PyTorch CPU).")
    return subprocess.run(cmd, cwd=REPO_ROOT, env={**os.environ, env.BUILD_DIR.name: str(build_root)}).returncode
