"""Where the local runtime keeps its state, logs and secrets: one project-local folder."""

from __future__ import annotations

from pathlib import Path

from core import env

REPO_ROOT = Path(__file__).resolve().parents[2]


def state_dir() -> Path:
    """`.state/` in the checkout (override with MLP_STATE_DIR). Git ignores it."""
    return env.STATE_DIR.get() or (REPO_ROOT / ".state").resolve()


def sub(name: str) -> Path:
    path = state_dir() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def logs_dir() -> Path:
    return sub("logs")


def secrets_dir() -> Path:
    path = sub("secrets")
    path.chmod(0o700)
    return path


def model_cache() -> Path:
    """Downloaded model versions, `<cache>/<name>/<version>/`, shared by the CLI and the local model servers."""
    return sub("models")


def build_dir() -> Path:
    """Built model artifacts and reports (`build/`, git-ignored)."""
    path = env.BUILD_DIR.get() or (REPO_ROOT / "build").resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path
