"""The local base image: Debian bookworm's Python 3.11 from `debootstrap`, imported into podman (no registry is
reachable here; GitHub Actions builds the same Containerfiles on the upstream `python:3.11-slim`).
See docs/decisions/0121-debian-base-image-from-debootstrap.md.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from infra.containers.podman import image_exists, image_size, podman

BASE_IMAGE = "localhost/mlp-base:bookworm"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# No python3-pip: `python3 -m venv` brings pip into the builder stage from python3-venv's bundled wheel, so
# the final image has no pip.
PACKAGES = ("python3", "python3-venv", "ca-certificates")


@dataclass(frozen=True)
class BaseImage:
    ref: str
    built: bool  # False: it was present already
    seconds: float
    size_bytes: int


def ensure_base_image(ref: str = BASE_IMAGE, rebuild: bool = False) -> BaseImage:
    """Make the base image unless it exists (about a minute and a few hundred MB on a fresh machine)."""
    started = time.monotonic()
    if image_exists(ref) and not rebuild:
        return BaseImage(ref, False, time.monotonic() - started, image_size(ref))
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is not installed: run `bash infra/local/bootstrap.sh runtime`")
    with tempfile.TemporaryDirectory(prefix="mlp-base-", dir="/var/tmp") as tmp:
        root = Path(tmp) / "root"
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(root), MIRROR],
            check=True,
            capture_output=True,
        )
        # Package caches and indexes are not part of an image: apt is never run inside one.
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (root / leftover).glob("*"):
                if path.is_file():
                    path.unlink()
        tarball = Path(tmp) / "root.tar"
        subprocess.run(["tar", "-C", str(root), "-cf", str(tarball), "."], check=True)
        podman(
            "import",
            "--change", "ENV LANG=C.UTF-8",
            "--change", 'CMD ["/usr/bin/python3"]',
            "--change", f"LABEL io.mlp.base.suite={SUITE} io.mlp.base.packages={','.join(PACKAGES)}",
            str(tarball),
            ref,
        )  # fmt: skip
    return BaseImage(ref, True, time.monotonic() - started, image_size(ref))
