"""Image builds cached by content: what the hash covers, and the pip settings a build borrows from the machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.containers import images
from infra.containers.images import ImageSpec, content_hash


def test_hash_follows_the_files_the_image_copies_and_its_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "main.py").write_text("print(1)\n")
    (tmp_path / "app" / "__pycache__").mkdir()
    (tmp_path / "Containerfile").write_text("FROM base AS b\nCOPY app/ \\\n  /app/\nCOPY --from=b /x /x\n")
    monkeypatch.setattr(images, "REPO_ROOT", tmp_path)
    spec = ImageSpec("demo", "Containerfile", entry="app.main", requirements=())
    assert spec.copied() == ["app/"], "a continued COPY line is one line"
    first = content_hash(spec, "base-1")
    (tmp_path / "app" / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\0")  # ignored, like the build
    assert content_hash(spec, "base-1") == first
    assert content_hash(spec, "base-2") != first
    (tmp_path / "app" / "main.py").write_text("print(2)\n")
    assert content_hash(spec, "base-1") != first
    gpu = ImageSpec("demo", "Containerfile", entry="app.main", requirements=(), build_args=(("RUNTIME", "gpu"),))
    assert content_hash(gpu, "base-1") != content_hash(spec, "base-1"), "a build argument makes another image"


def test_local_paths_of_pip_settings(tmp_path: Path) -> None:
    (tmp_path / "pypi" / "simple").mkdir(parents=True)
    (tmp_path / "wheels").mkdir()
    value = f"'file://{tmp_path}/pypi/simple {tmp_path}/wheels https://pypi.org/simple /nowhere'"
    # A file:// simple index links ../../files/: its parent folder is mounted.
    assert images._local_paths(value) == [tmp_path / "pypi", tmp_path / "wheels"]
