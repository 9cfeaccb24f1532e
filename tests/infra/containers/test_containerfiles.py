"""Every image's Containerfile against what its entry point needs: each file of the entry module's import closure
is copied, requirements are pinned as in the lock (no PyTorch), the build is two-stage, unprivileged, labelled with
the commit and takes its base as an argument. The images themselves are built and run by
tests/integration/test_images.py and the rehearsals."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core import images as names
from infra.containers.images import IMAGES, REPO_ROOT, ImageSpec
from tests.services.model_server.test_container_build import imported_closure

LOCK = {
    m.group(1).lower(): m.group(2)
    for m in re.finditer(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", (REPO_ROOT / "requirements" / "main.lock").read_text(), re.M)
}


def copied_files(spec: ImageSpec) -> set[str]:
    """Repository files the COPY lines bring into the image (folders expanded)."""
    out: set[str] = set()
    for source in spec.copied():
        path = REPO_ROOT / source
        files = [path] if path.is_file() else [p for p in path.rglob("*.py") if "__pycache__" not in p.parts]
        out.update(p.relative_to(REPO_ROOT).as_posix() for p in files)
    return out


def requirements(spec: ImageSpec) -> list[str]:
    (source,) = [s for s in spec.copied() if s.endswith("requirements.txt")]
    text = (REPO_ROOT / source).read_text()
    return [ln for ln in text.splitlines() if ln and not ln.startswith("#")]


def test_every_image_of_the_cluster_has_a_containerfile() -> None:
    assert sorted(spec.name for spec in IMAGES) == sorted(names.REPOSITORIES)


@pytest.mark.parametrize("spec", IMAGES, ids=lambda s: s.name)
def test_the_entry_points_import_closure_is_copied(spec: ImageSpec) -> None:
    needed = imported_closure(spec.entry)
    assert len(needed) > 3, "the closure is followed, not just the entry point"
    missing = needed - copied_files(spec)
    assert not missing, f"{spec.name} imports files its image does not copy: {sorted(missing)}"
    assert "policy.yaml" in spec.copied(), "the policy loader reads /app/policy.yaml"
    assert not any(p.startswith(("infra/", "modules/")) for p in copied_files(spec)), "no IaC or local runtime"


@pytest.mark.parametrize("spec", IMAGES, ids=lambda s: s.name)
def test_requirements_are_pinned_as_in_the_lock_and_exclude_torch(spec: ImageSpec) -> None:
    for line in requirements(spec):
        name, version = line.split("==")
        assert LOCK.get(name.lower()) == version, f"{spec.name}: {line} differs from requirements/main.lock"
    assert not any(r.lower().startswith(("torch", "sentence-transformers")) for r in requirements(spec))


@pytest.mark.parametrize("spec", IMAGES, ids=lambda s: s.name)
def test_two_stages_unprivileged_labelled_base_as_argument(spec: ImageSpec) -> None:
    text = (REPO_ROOT / spec.containerfile).read_text()
    assert re.search(r"^USER 10001:10001$", text, re.M), "the uid the pods render (modules/k8s/common.RUN_AS)"
    assert re.search(r"^ARG BASE_IMAGE=", text, re.M), "the base image is a build argument"
    assert "org.opencontainers.image.revision=${REVISION}" in text
    assert len(re.findall(r"^FROM ", text, re.M)) == 2 and "COPY --from=builder /opt/venv /opt/venv" in text
    assert "-c /build/main.lock" in text, "transitive pins come from the lock"
    assert spec.entry.replace(".", "/") + ".py" in imported_closure(spec.entry)
    command = re.search(r"^CMD (.+)$", text, re.M)
    assert command and (spec.entry in command.group(1) or spec.entry.rsplit(".", 1)[0] in command.group(1))


def test_model_server_image_copies_the_code_the_policy_and_the_pins() -> None:
    (spec,) = [s for s in IMAGES if s.name == names.MODEL_SERVER]
    assert spec.copied() == [
        "core/",
        "policy.yaml",
        "requirements/main.lock",
        "services/",
        "services/model_server/requirements.txt",
    ]
    assert Path(spec.containerfile).parent.as_posix() == "services/model_server"
