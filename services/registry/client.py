"""The model registry (MLflow) as the rest of the platform sees it: versions, aliases, tags, artifacts.

Aliases (`champion`, `challenger`, `candidate`) replace MLflow's deprecated stages. Used by the model server (to
resolve and fetch the version it serves), the local runtime and the lifecycle CLI; it knows no local paths: the
server is `MLFLOW_TRACKING_URI` (default: the local MLflow), and the cache folder is given by the caller.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException, RestException
from mlflow.tracking import MlflowClient

from core import endpoints
from core.policy import policy

MODEL_CONFIG_FILE = "model_config.json"

# MLflow's client retries a failing request 7 times with backoff factor 2 (minutes of silence when the artifact
# store is down). Fail within seconds and name the server instead; an operator can still raise these.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


class RegistryError(RuntimeError):
    """The registry could not do what was asked; the message says which server and what next."""


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or endpoints.mlflow_url()


def model_name() -> str:
    return policy().release.model_name


def check_mlflow() -> None:
    """Fail fast, naming the server, when MLflow does not answer."""
    url = f"{tracking_uri()}/health"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            if resp.status == 200:
                return
            detail = f"HTTP {resp.status}"
    except (urllib.error.URLError, OSError) as exc:
        detail = str(getattr(exc, "reason", exc))
    raise RegistryError(
        f"MLflow server at {tracking_uri()} is not answering ({detail}). "
        "Run `mlp env up`, then see runbooks/mlflow-unreachable.md."
    )


def mlflow_client() -> MlflowClient:
    return MlflowClient(tracking_uri=tracking_uri(), registry_uri=tracking_uri())


def resolve_version(ref: str | int, name: str | None = None) -> int:
    """A version number from a number or an alias ("champion")."""
    name = name or model_name()
    text = str(ref)
    client = mlflow_client()
    try:
        if text.isdigit():
            return int(client.get_model_version(name, text).version)
        return int(client.get_model_version_by_alias(name, text).version)
    except RestException as exc:
        raise RegistryError(f"{name}: no version or alias {text!r} in the registry ({exc.error_code})") from exc


def get_version(version: int, name: str | None = None) -> ModelVersion:
    return mlflow_client().get_model_version(name or model_name(), str(version))


def get_alias(alias: str, name: str | None = None) -> int | None:
    try:
        return int(mlflow_client().get_model_version_by_alias(name or model_name(), alias).version)
    except (RestException, MlflowException):
        return None


def set_alias(alias: str, version: int, name: str | None = None) -> None:
    mlflow_client().set_registered_model_alias(name or model_name(), alias, str(version))


def delete_alias(alias: str, name: str | None = None) -> None:
    with contextlib.suppress(RestException, MlflowException):  # already absent is fine
        mlflow_client().delete_registered_model_alias(name or model_name(), alias)


def tag_version(version: int, key: str, value: str, name: str | None = None) -> None:
    mlflow_client().set_model_version_tag(name or model_name(), str(version), key, value)


def list_versions(name: str | None = None) -> list[ModelVersion]:
    name = name or model_name()
    found = mlflow_client().search_model_versions(f"name = '{name}'")
    return sorted(found, key=lambda v: int(v.version))


def download_version(version: int | str, name: str | None = None, *, cache_root: Path) -> Path:
    """The version's model directory (model.onnx, tokenizer.json, model_config.json, ...) on local disk.

    Cached under `<cache_root>/<name>/<version>/` (complete once `.complete` exists): a version's artifacts never
    change, so a cached version is never fetched again, and a version given by number costs no registry call when
    it is cached (an alias is always resolved: it may have moved).
    """
    import mlflow.artifacts

    name = name or model_name()
    number = version if isinstance(version, int) else resolve_version(version, name)
    cache = cache_root / name / str(number)
    done = cache / ".complete"
    if not done.exists():
        shutil.rmtree(cache, ignore_errors=True)
        tmp = cache.with_name(f"{number}.partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        # models:/ URIs resolve through the *registry* URI, which is not the tracking_uri argument.
        mlflow.set_tracking_uri(tracking_uri())
        mlflow.set_registry_uri(tracking_uri())
        try:
            mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{number}", dst_path=str(tmp))
        except MlflowException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise RegistryError(
                f"could not download {name} v{number} from {tracking_uri()}: {exc}. "
                "See runbooks/artifact-store-errors.md."
            ) from exc
        tmp.rename(cache)
        done.touch()
    return model_dir_in(cache)


def model_dir_in(root: Path) -> Path:
    """The folder holding model_config.json inside a downloaded MLflow model."""
    matches = sorted(root.rglob(MODEL_CONFIG_FILE))
    if not matches:
        raise RegistryError(
            f"{root}: no {MODEL_CONFIG_FILE} inside; the version was not logged by `mlp model register`"
        )
    return matches[0].parent
