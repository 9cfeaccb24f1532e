"""Read and validate `infra/config/<env>.yaml` and `infra/config/versions.yaml`."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import yaml
from pydantic import ValidationError

from core import env
from infra.config.models import ENVIRONMENTS, EnvConfig, Versions

CONFIG_DIR = Path(__file__).resolve().parent
# CI sets the state bucket per account (repository variable), so a fork never edits code to change it.
STATE_BUCKET_ENV = env.TF_STATE_BUCKET.name


def _read(path: Path) -> dict[str, object]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: copy infra/config/dev.yaml and adapt it")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return data


@functools.cache
def load_env(name: str) -> EnvConfig:
    if name not in ENVIRONMENTS:
        raise ValueError(f"unknown environment {name!r}; expected one of {', '.join(ENVIRONMENTS)}")
    path = CONFIG_DIR / f"{name}.yaml"
    data = _read(path)
    override = os.environ.get(STATE_BUCKET_ENV)
    if override:
        state = dict(data.get("state") or {})  # type: ignore[call-overload]
        state["bucket"] = override.replace("{env}", name)
        data["state"] = state
    try:
        return EnvConfig.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"{path} is invalid:\n{exc}") from exc


@functools.cache
def load_versions() -> Versions:
    path = CONFIG_DIR / "versions.yaml"
    try:
        return Versions.model_validate(_read(path))
    except ValidationError as exc:
        raise ValueError(f"{path} is invalid:\n{exc}") from exc
