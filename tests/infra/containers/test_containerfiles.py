"""Every image's Containerfile against what its entry point needs: each file of the entry module's import closure
is copied, requirements are pinned as in the lock (no PyTorch), the build is two-stage, unprivileged, labelled with
the commit and takes its base as an argument. The images themselves are built and run by
tests/infra/containers/test_built_images.py and the rehearsals."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core import images as names
from infra.containers.images import IMAGES, REPO_ROOT, ImageSpec
from tests.services.model_server.test_container_build import imported_closure


def pins(lock: str) -> dict[str, str]:
    text = (REPO_ROOT / "requirements" / lock).read_text()
    return {m.group(1).lower(): m.group(2) for m in re.finditer(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", text, re.M)}


LOCK = pins("main.lock")
GPU_LOCK = pins("gpu.lock")  # the CUDA build of ONNX Runtime and its libraries, main.lock's pins for the rest


def copied_files(spec: ImageSpec) -> set[str]:
    """Repository files the COPY lines bring into the image (folders expanded)."""
    out: set[str] = set()
    for source in spec.copied():
        path = REPO_ROOT / source
        files = [path] if path.is_file() else [p for p in path.rglob("*.py") if "__pycache__" not in p.parts]
        out.update(p.relative_to(REPO_ROOT).as_posix() for p in files)
    return out


def requirements(spec: ImageSpec) -> list[str]:
    """The image's requirement lists (what `make lock` locks into its hash-locked `spec.lock`)."""
    lines = [ln for source in spec.requirements for ln in (REPO_ROOT / source).read_text().splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#")]


def locked(spec: ImageSpec) -> dict[str, str]:
    return pins(spec.lock.removeprefix("requirements/"))


def test_every_image_of_the_cluster_has_a_containerfile() -> None:
    assert sorted(spec.name for spec in IMAGES) == sorted(names.REPOSITORIES)


@pytest.mark.parametrize("spec", IMAGES, ids=lambda s: s.name)
def test_the_entry_points_import_closure_is_copied(spec: ImageSpec) -> None:
    needed = set().union(*(imported_closure(entry) for entry in spec.entries))
    assert len(needed) > 3, "the closure is followed, not just the entry point"
    missing = needed - copied_files(spec)
    assert not missing, f"{spec.name} imports files its image does not copy: {sorted(missing)}"
    assert "policy.yaml" in spec.copied(), "the policy loader reads /app/policy.yaml"
    assert not any(p.startswith(("infra/", "modules/")) for p in copied_files(spec)), "no IaC or local runtime"


@pytest.mark.parametrize("spec", IMAGES, ids=lambda s: s.name)
def test_the_image_lock_holds_its_requirements_at_the_repositorys_pins_and_no_torch(spec: ImageSpec) -> None:
    repository = {**LOCK}
    for constraint in spec.constraint_locks:
        repository.update(pins(constraint.removeprefix("requirements/")))
    image = locked(spec)
    for line in requirements(spec):
        name, version = line.split("==")
        name = name.split("[")[0].lower()  # extras: onnxruntime-gpu[cuda,cudnn]
        assert repository.get(name) == version, f"{spec.name}: {line} differs from the repository's lock"
        assert image.get(name) == version, f"{spec.name}: {line} is not in {spec.lock}; run `make lock`"
    differing = {n: v for n, v in image.items() if repository.get(n) != v}
    assert not differing, f"{spec.lock} pins differ from the repository's locks: {differing}; run `make lock`"
    assert not any(n.startswith(("torch", "sentence-transformers")) for n in image)
    assert sum(n.startswith("onnxruntime") for n in image) <= 1, "one ONNX Runtime build per image"
    assert spec.lock in spec.copied(), "the Containerfile installs the image's own lock"


@pytest.mark.parametrize("spec", IMAGES, ids=lambda s: s.name)
def test_two_stages_unprivileged_labelled_base_as_argument(spec: ImageSpec) -> None:
    text = (REPO_ROOT / spec.containerfile).read_text()
    assert re.search(r"^USER 10001:10001$", text, re.M), "the uid the pods render (modules/k8s/common.RUN_AS)"
    assert re.search(r"^ARG BASE_IMAGE=", text, re.M), "the base image is a build argument"
    assert "org.opencontainers.image.revision=${REVISION}" in text
    assert len(re.findall(r"^FROM ", text, re.M)) == 2 and "COPY --from=builder /opt/venv /opt/venv" in text
    install = re.search(r"pip install --require-hashes --no-deps --only-binary=:all: (?:--no-binary=(\S+) )?", text)
    assert install, "only hashed, locked files, wheels unless named"
    if install.group(1):  # built from the hash-checked source package, with the flags every build of it uses
        assert install.group(1) == "llama-cpp-python" and "requirements/llama-cpp.env" in spec.copied()
    assert "pip check" in text, "the lock is complete: nothing installed lacks a dependency"
    assert spec.entry.replace(".", "/") + ".py" in imported_closure(spec.entry)
    command = re.search(r"^CMD (.+)$", text, re.M)
    assert command and (spec.entry in command.group(1) or spec.entry.rsplit(".", 1)[0] in command.group(1))


def test_model_server_image_copies_the_code_the_policy_and_the_pins() -> None:
    (spec,) = [s for s in IMAGES if s.name == names.MODEL_SERVER]
    assert spec.copied() == [
        "core/",
        "policy.yaml",
        "requirements/images/model-server-gpu.lock",
        "requirements/images/model-server.lock",
        "requirements/llama-cpp.env",
        "services/",
    ]
    assert Path(spec.containerfile).parent.as_posix() == "services/model_server"


def test_the_gpu_image_is_the_model_servers_containerfile_on_onnx_runtimes_cuda_build() -> None:
    cpu, gpu = (next(s for s in IMAGES if s.name == n) for n in (names.MODEL_SERVER, names.MODEL_SERVER_GPU))
    assert gpu.containerfile == cpu.containerfile and gpu.entry == cpu.entry
    assert [r for r in requirements(cpu) if r.startswith("onnxruntime")] == [f"onnxruntime=={LOCK['onnxruntime']}"]
    (runtime,) = [r for r in requirements(gpu) if r.startswith("onnxruntime")]
    assert runtime.startswith("onnxruntime-gpu[cuda,cudnn]==")
    assert any(name.startswith("nvidia-cudnn") for name in GPU_LOCK), "cuDNN comes from the lock, not the node"
    shared = set(LOCK) & set(GPU_LOCK)
    assert shared and all(LOCK[n] == GPU_LOCK[n] for n in shared), "shared packages keep main.lock's pins"
    text = (REPO_ROOT / cpu.containerfile).read_text()
    assert "gpu) lock=model-server-gpu.lock" in text and "choose cpu or gpu" in text
    assert gpu.constraint_locks == ("requirements/gpu.lock",) and "nvidia-cudnn-cu13" in locked(gpu)
    assert "llama-cpp-python" not in locked(gpu), "a GGUF version runs on the CPU only: no llama.cpp in the CUDA image"


def test_the_cpu_image_builds_llama_cpp_with_the_flags_of_every_other_build() -> None:
    cpu = next(s for s in IMAGES if s.name == names.MODEL_SERVER)
    assert locked(cpu)["llama-cpp-python"] == pins("llama.lock")["llama-cpp-python"]
    assert "services.generate_server.service" in cpu.entries, "generate models run on the same image"
    text = (REPO_ROOT / cpu.containerfile).read_text()
    assert '. /build/llama-cpp.env && export CMAKE_ARGS="$LLAMA_CMAKE_ARGS"' in text
    assert "libgomp1" in text, "llama.cpp's CPU backend links OpenMP"
