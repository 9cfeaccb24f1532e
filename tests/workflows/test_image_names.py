"""The release workflow pushes the model server image to the ECR repository the data stack creates for the target
environment (`<prefix>/<contracts.MODEL_SERVER_IMAGE>`, modules/registry.py): one source for the names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core import contracts
from infra.config import ENVIRONMENTS, load_env

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "model-release.yml"


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_release_pushes_to_a_repository_the_stack_creates(env_name: str) -> None:
    (line,) = re.findall(r'^\s*image="\$\{REGISTRY\}/([^:"]+):', WORKFLOW.read_text(), re.M)
    repository = line.replace("${TARGET_ENV}", env_name)
    config = load_env(env_name)
    assert contracts.MODEL_SERVER_IMAGE in config.storage.ecr_repositories
    assert repository == f"{config.prefix}/{contracts.MODEL_SERVER_IMAGE}"


def test_release_builds_the_containerfile_with_declared_arguments_only() -> None:
    text = WORKFLOW.read_text()
    containerfile = Path(__file__).resolve().parents[2] / "services" / "model_server" / "Containerfile"
    declared = set(re.findall(r"^ARG (\w+)", containerfile.read_text(), re.M))
    assert "--file services/model_server/Containerfile" in text
    assert set(re.findall(r"--build-arg (\w+)=", text)) <= declared
