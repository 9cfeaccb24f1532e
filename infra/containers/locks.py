"""Each image's hash-locked requirements, compiled from its requirement lists within the repository's locks.

`requirements/images/<image>.lock` holds every package the image installs, with its version from
`requirements/main.lock` (and `llama.lock` for llama.cpp, `gpu.lock` for the CUDA build) and the SHA-256 of every
file PyPI offers for it: the Containerfiles install it with `pip install --require-hashes --no-deps`, so a changed
file on the index fails the build. `make lock` runs this after re-resolving main.lock; the images' platform is the
cluster's (x86_64 Linux).
"""

from __future__ import annotations

import subprocess
import sys

from infra.containers.images import IMAGES, REPO_ROOT, ImageSpec

PLATFORM = "x86_64-manylinux_2_28"
MAIN_LOCK = "requirements/main.lock"


def compile_command(spec: ImageSpec) -> list[str]:
    constraints = [MAIN_LOCK, *spec.constraint_locks]
    command = ["uv", "pip", "compile", "-q", "--python-version", "3.11", "--python-platform", PLATFORM]
    command += ["--generate-hashes", "--custom-compile-command", "make lock", *spec.requirements]
    for constraint in constraints:
        command += ["-c", constraint]
    return [*command, "-o", spec.lock]


def main() -> None:
    (REPO_ROOT / "requirements" / "images").mkdir(parents=True, exist_ok=True)
    for spec in IMAGES:
        print(f"==> {spec.lock} from {', '.join(spec.requirements)}", flush=True)
        done = subprocess.run(compile_command(spec), cwd=REPO_ROOT, check=False)
        if done.returncode != 0:
            sys.exit(f"locking {spec.name} failed: fix its requirement lists or main.lock, then rerun `make lock`")


if __name__ == "__main__":
    main()
