"""The model server's container build config: valid for BentoML, complete, pinned like the lock (not built here)."""

from __future__ import annotations

import glob
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SERVER = REPO / "services" / "model_server"


def test_bentofile_parses_and_names_the_service() -> None:
    from bentoml._internal.bento.build_config import BentoBuildConfig

    with (SERVER / "bentofile.yaml").open() as fh:
        config = BentoBuildConfig.from_yaml(fh)
    assert config.service == "services.model_server.service:ModelService"
    assert config.python.requirements_txt == "services/model_server/requirements.txt"


def test_bentofile_includes_every_module_the_server_imports() -> None:
    include = yaml.safe_load((SERVER / "bentofile.yaml").read_text())["include"]
    matched = {Path(p).relative_to(REPO).as_posix() for pattern in include for p in glob.glob(str(REPO / pattern))}
    needed = (
        "services/model_server/service.py",
        "services/model_runtime/classifier.py",
        "core/policy.py",
        "pipelines/registry/client.py",
        "infra/local/endpoints.py",
        "policy.yaml",
    )
    for path in needed:
        assert path in matched, path
    for pattern in include:
        assert glob.glob(str(REPO / pattern)), f"include pattern {pattern!r} matches nothing"


def test_image_requirements_are_pinned_as_in_the_lock_and_exclude_torch() -> None:
    lock = {
        m.group(1).lower(): m.group(2)
        for m in re.finditer(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", (REPO / "requirements" / "main.lock").read_text(), re.M)
    }
    reqs = [ln for ln in (SERVER / "requirements.txt").read_text().splitlines() if ln and not ln.startswith("#")]
    for line in reqs:
        name, version = line.split("==")
        assert lock.get(name.lower()) == version, f"{line} differs from requirements/main.lock"
    assert not any(r.lower().startswith(("torch", "sentence-transformers")) for r in reqs)


def test_dockerfile_copies_what_the_bentofile_includes() -> None:
    docker = (SERVER / "Dockerfile").read_text()
    assert "services.model_server.service:ModelService" in docker
    for path in ("pipelines/registry/client.py", "services/model_runtime/classifier.py", "policy.yaml"):
        assert path in docker
    assert re.search(r"^USER \d+", docker, re.M), "the image must not run as root"
