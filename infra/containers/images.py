"""The repository's images, built with podman from their Containerfiles and cached by content.

An image is tagged `localhost/<name>:<content hash>`, where the hash covers its Containerfile, every file its
`COPY` lines take from the repository (minus what `.containerignore` drops) and the base image's id; a build is
skipped when that image exists. The git commit goes into the `org.opencontainers.image.revision` label.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from core import images
from infra.containers.base_image import BASE_IMAGE, ensure_base_image
from infra.containers.podman import image_exists, image_id, image_size, podman

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTENT_LABEL = "io.mlp.content-hash"
IGNORED_DIRS = {"__pycache__"}  # .containerignore says the same
IGNORED_SUFFIXES = {".pyc"}
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
BUILD_LOCK = Path(tempfile.gettempdir()) / "mlp-image-builds.lock"  # one per machine, as podman's image store is
PIP_CONFIG_FILES = (Path("/etc/pip.conf"), Path("/etc/xdg/pip"), Path.home() / ".config/pip", Path.home() / ".pip")


@dataclass(frozen=True)
class ImageSpec:
    name: str  # from `core.images`: the cluster's ECR repository is `<prefix>/<name>`, the local one `mlp/<name>`
    containerfile: str  # relative to the repository root, which is the build context
    entry: str  # the module the image runs: its import closure is what the Containerfile must copy
    requirements: tuple[str, ...]  # what the image needs (the `.txt` lists), locked into `lock` by `make lock`
    build_args: tuple[tuple[str, str], ...] = ()  # ARGs that make this image from a shared Containerfile
    # Constraint files beside main.lock: llama.lock (llama.cpp, CPU image), gpu.lock (the CUDA runtime's pins).
    constraint_locks: tuple[str, ...] = ()
    other_entries: tuple[str, ...] = ()  # modules its other workloads run (`command` in their manifests)

    @property
    def entries(self) -> tuple[str, ...]:
        return (self.entry, *self.other_entries)

    @property
    def lock(self) -> str:
        """The image's own hash-locked requirements (`pip install --require-hashes`), within main.lock's pins."""
        return f"requirements/images/{self.name}.lock"

    def copied(self) -> list[str]:
        """Repository paths the Containerfile copies (COPY lines that do not copy from another stage)."""
        text = (REPO_ROOT / self.containerfile).read_text().replace("\\\n", " ")  # join continued lines
        sources: list[str] = []
        for line in re.findall(r"^COPY\s+(.+)$", text, re.M):
            words = line.split()
            if any(w.startswith("--from") for w in words):
                continue
            sources += [w for w in words[:-1] if not w.startswith("--")]
        return sorted(set(sources))


MODEL_SERVER = ImageSpec(
    images.MODEL_SERVER,
    "services/model_server/Containerfile",
    entry="services.model_server.service",
    requirements=("services/model_server/requirements.txt", "services/model_server/runtime-cpu.txt"),
    constraint_locks=("requirements/llama.lock",),
    # A generate model's pods run the same image with its command (modules/k8s/serving.py): one llama.cpp build.
    other_entries=("services.generate_server.service",),
)
DRIFT_JOB = ImageSpec(
    images.DRIFT_JOB,
    "pipelines/drift/Containerfile",
    entry="pipelines.drift.job",
    requirements=("pipelines/drift/requirements.txt",),
    # The drift loop's second step, the retraining Job (modules/k8s/retrain.py): the same dependencies (the encoder
    # in ONNX Runtime, scikit-learn through Evidently, the registry client), one image to build, scan and pin; and a
    # release's shadow comparison (modules/k8s/release.py), which reads the inference logs the drift job reads.
    other_entries=("pipelines.retrain.job", "pipelines.shadow.job"),
)
MODEL_SERVER_GPU = ImageSpec(
    images.MODEL_SERVER_GPU,
    MODEL_SERVER.containerfile,
    entry=MODEL_SERVER.entry,
    requirements=("services/model_server/requirements.txt", "services/model_server/runtime-gpu.txt"),
    build_args=(("RUNTIME", "gpu"),),  # ONNX Runtime's CUDA build (requirements/gpu.lock): ~3 GB of CUDA libraries
    constraint_locks=("requirements/gpu.lock",),
)
WEBHOOK_RECEIVER = ImageSpec(
    images.WEBHOOK_RECEIVER,
    "services/webhook/Containerfile",
    entry="services.webhook.app",
    requirements=("services/webhook/requirements.txt",),
)
IMAGES = (MODEL_SERVER, DRIFT_JOB, WEBHOOK_RECEIVER, MODEL_SERVER_GPU)
# What the rehearsal runs here (no GPU on this machine): every image but the CUDA build. `make images` builds all.
REHEARSED = (MODEL_SERVER, DRIFT_JOB, WEBHOOK_RECEIVER)


@dataclass(frozen=True)
class BuiltImage:
    ref: str
    content_hash: str
    built: bool  # False: an image with the same content existed
    seconds: float
    size_bytes: int


def _files(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    return sorted(
        p
        for p in source.rglob("*")
        if p.is_file() and not IGNORED_DIRS & set(p.parts) and p.suffix not in IGNORED_SUFFIXES
    )


def content_hash(spec: ImageSpec, base_id: str) -> str:
    digest = hashlib.sha256()
    digest.update(f"base {base_id}\n".encode())
    for name, value in spec.build_args:
        digest.update(f"arg {name}={value}\n".encode())
    for rel in [spec.containerfile, *spec.copied()]:
        for path in _files(REPO_ROOT / rel):
            digest.update(f"file {path.relative_to(REPO_ROOT).as_posix()}\n".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def image_ref(spec: ImageSpec, digest: str) -> str:
    return f"{local_repository(spec)}:{digest[:16]}"


def local_repository(spec: ImageSpec) -> str:
    return f"localhost/mlp/{spec.name}"


def git_revision() -> str:
    result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    return result.stdout.strip() or "unknown"


def _local_paths(value: str) -> list[Path]:
    """Local folders a pip setting names (find-links, file:// indexes, constraint files)."""
    paths = []
    for word in value.replace("'", " ").replace('"', " ").split():
        text = word.removeprefix("file://")
        if not text.startswith("/"):
            continue
        path = Path(text)
        # A file:// simple index links its files as ../../files/...: the folder above `simple` is needed.
        paths.append(path.parent if path.name == "simple" else path)
    return [p for p in paths if p.exists()]


def pip_mounts() -> list[str]:
    """Read-only `--volume`s that give pip inside a build the machine's CA bundle, pip settings and local indexes
    (present only while a RUN step runs; nothing of them stays in an image)."""
    found: set[Path] = {p for p in PIP_CONFIG_FILES if p.exists()}
    if CA_BUNDLE.exists():
        found.add(CA_BUNDLE)
    pip = shutil.which("pip") or shutil.which("pip3")
    listed = subprocess.run([pip, "config", "list"], capture_output=True, text=True, check=False).stdout if pip else ""
    values = [line.split("=", 1)[1] for line in listed.splitlines() if "=" in line]
    values += [v for k, v in os.environ.items() if k.startswith("PIP_")]
    for value in values:
        found.update(_local_paths(value))
    return [f"{p}:{p}:ro" for p in sorted(found)]


def build(spec: ImageSpec, base: str = BASE_IMAGE, force: bool = False) -> BuiltImage:
    """Build `spec` on `base` unless an image with the same content hash exists.

    One build at a time on the machine: podman's image store is the machine's, and two processes building the same
    image (two pytest workers, a test and `make images`) would each build it; the second waits, then finds it."""
    with BUILD_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build(spec, base, force)


def _build(spec: ImageSpec, base: str, force: bool) -> BuiltImage:
    started = time.monotonic()
    ensure_base_image(base)
    digest = content_hash(spec, image_id(base))
    ref = image_ref(spec, digest)
    if not force:
        if not image_exists(ref):
            # Same content under another name (a renamed image): tag it instead of building.
            same = podman("images", "--quiet", "--filter", f"label={CONTENT_LABEL}={digest}").split()
            if same:
                podman("tag", same[0], ref, f"{local_repository(spec)}:latest")
        if image_exists(ref):
            return BuiltImage(ref, digest, False, time.monotonic() - started, image_size(ref))
    args = ["build", "--network", "host", "--file", spec.containerfile]
    args += ["--build-arg", f"BASE_IMAGE={base}", "--build-arg", f"REVISION={git_revision()}"]
    for name, value in spec.build_args:
        args += ["--build-arg", f"{name}={value}"]
    args += ["--label", f"{CONTENT_LABEL}={digest}", "--tag", ref, "--tag", f"{local_repository(spec)}:latest"]
    for mount in pip_mounts():
        args += ["--volume", mount]
    podman(*args, str(REPO_ROOT), timeout=3600)
    return BuiltImage(ref, digest, True, time.monotonic() - started, image_size(ref))


def build_all(specs: tuple[ImageSpec, ...] | list[ImageSpec] = IMAGES, force: bool = False) -> list[BuiltImage]:
    return [build(spec, force=force) for spec in specs]
