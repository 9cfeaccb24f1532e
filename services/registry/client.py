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
from collections.abc import Iterator
from pathlib import Path

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException, RestException
from mlflow.tracking import MlflowClient

from core import contracts, endpoints, env
from core.policy import policy
from services.model_runtime.generator import GENERATOR_CONFIG
from services.model_runtime.rag import RAG_CONFIG

MODEL_CONFIG_FILE = "model_config.json"

# MLflow's client retries a failing request 7 times with backoff factor 2 (minutes of silence when the artifact
# store is down). Fail within seconds and name the server instead; an operator can still raise these.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


class RegistryError(RuntimeError):
    """The registry could not do what was asked; the message says which server and what next."""


def auth_refusal(exc: BaseException, action: str, write: bool) -> RegistryError | None:
    """When MLflow refused the credential (401) or the permission (403), the error saying which credential to use;
    None for any other failure. `write`: the action changes the registry (only the release bot may)."""
    code = getattr(exc, "error_code", None)
    user = os.environ.get(contracts.MLFLOW_USERNAME_VAR) or None
    bot, bot_secret = contracts.REGISTRY_RELEASE_BOT, contracts.REGISTRY_USERS[contracts.REGISTRY_RELEASE_BOT]
    where = "docs/security-registry.md"
    if code == "PERMISSION_DENIED":
        need = (
            f"writing the model needs the release bot's credential: {contracts.MLFLOW_USERNAME_VAR}={bot} with "
            f"{contracts.MLFLOW_PASSWORD_VAR} from the secret `{bot_secret}` (locally: unset both and `mlp` takes "
            f"it from the secret store)"
            if write
            else "ask the registry admin for READ on this model"
        )
        return RegistryError(
            f"MLflow at {tracking_uri()} refused to {action} as user {user!r} (403): {need}. See {where}."
        )
    if code == "UNAUTHENTICATED":
        why = f"the password of user {user!r} is wrong or was rotated" if user else "no credential was sent"
        return RegistryError(
            f"MLflow at {tracking_uri()} refused to {action} (401, {why}). Set {contracts.MLFLOW_USERNAME_VAR} and "
            f"{contracts.MLFLOW_PASSWORD_VAR} (locally `mlp` reads them from the secret store); see {where} and "
            "runbooks/registry-credential-rotation.md."
        )
    return None


@contextlib.contextmanager
def _refusals(action: str, write: bool) -> Iterator[None]:
    """Turn MLflow's 401/403 into a RegistryError naming the credential to use; other errors pass unchanged."""
    try:
        yield
    except MlflowException as exc:
        refused = auth_refusal(exc, action, write)
        if refused is not None:
            raise refused from exc
        raise


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or endpoints.mlflow_url()


def model_name() -> str:
    return policy().release.default_model


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
        with _refusals(f"read {name} {text}", write=False):
            if text.isdigit():
                return int(client.get_model_version(name, text).version)
            return int(client.get_model_version_by_alias(name, text).version)
    except RestException as exc:
        raise RegistryError(f"{name}: no version or alias {text!r} in the registry ({exc.error_code})") from exc


def get_version(version: int, name: str | None = None) -> ModelVersion:
    name = name or model_name()
    with _refusals(f"read {name} v{version}", write=False):
        return mlflow_client().get_model_version(name, str(version))


def get_alias(alias: str, name: str | None = None) -> int | None:
    """The version `alias` points at, None when it points nowhere (a refused credential is an error, not None)."""
    name = name or model_name()
    try:
        return int(mlflow_client().get_model_version_by_alias(name, alias).version)
    except (RestException, MlflowException) as exc:
        refused = auth_refusal(exc, f"read alias {alias} of {name}", write=False)
        if refused is not None:
            raise refused from exc
        return None


def set_alias(alias: str, version: int, name: str | None = None) -> None:
    name = name or model_name()
    with _refusals(f"set alias {alias} of {name} to v{version}", write=True):
        mlflow_client().set_registered_model_alias(name, alias, str(version))


def delete_alias(alias: str, name: str | None = None) -> None:
    name = name or model_name()
    try:
        mlflow_client().delete_registered_model_alias(name, alias)
    except (RestException, MlflowException) as exc:  # already absent is fine; a refusal is not
        refused = auth_refusal(exc, f"delete alias {alias} of {name}", write=True)
        if refused is not None:
            raise refused from exc


def tag_version(version: int, key: str, value: str, name: str | None = None) -> None:
    name = name or model_name()
    with _refusals(f"tag {name} v{version} with {key}", write=True):
        mlflow_client().set_model_version_tag(name, str(version), key, value)


def list_versions(name: str | None = None) -> list[ModelVersion]:
    name = name or model_name()
    with _refusals(f"list the versions of {name}", write=False):
        found = mlflow_client().search_model_versions(f"name = '{name}'")
    return sorted(found, key=lambda v: int(v.version))


def download_version(
    version: int | str, name: str | None = None, *, cache_root: Path, public_key: str | None = None
) -> Path:
    """The version's model directory (model.onnx, tokenizer.json, model_config.json, ...) on local disk, verified.

    Cached under `<cache_root>/<name>/<version>/` (complete once `.complete` exists): a version's artifacts never
    change, so a cached version is never fetched again, and a version given by number costs no registry call when
    it is cached (an alias is always resolved: it may have moved). Every call verifies the whole download against
    its signed manifest (`services.registry.manifest`) with `public_key` (default `MLP_ARTIFACT_PUBLIC_KEY`), the
    cached copy too, and refuses a version that does not match: a fresh download is deleted again.
    """
    import mlflow.artifacts

    from services.registry.manifest import ArtifactVerificationError, verify_dir

    key = public_key or env.ARTIFACT_PUBLIC_KEY.get()
    if not key:
        raise RegistryError(
            f"{env.ARTIFACT_PUBLIC_KEY.name} is not set, so no downloaded version can be verified and none is used: "
            "set it to the artifact signing key's public key (locally `mlp` sets it from the secret store; in the "
            f"cluster the ConfigMap {contracts.ARTIFACT_KEY_CONFIGMAP})"
        )
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
            refused = auth_refusal(exc, f"download {name} v{number}", write=False)
            if refused is not None:
                raise refused from exc
            raise RegistryError(
                f"could not download {name} v{number} from {tracking_uri()}: {exc}. "
                "See runbooks/artifact-store-errors.md."
            ) from exc
        try:
            verify_dir(tmp, key, f"{name} v{number}")
        except ArtifactVerificationError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise RegistryError(str(exc)) from exc
        tmp.rename(cache)
        done.touch()
    else:
        try:
            verify_dir(cache, key, f"{name} v{number} (cached in {cache})")
        except ArtifactVerificationError as exc:
            raise RegistryError(f"{exc} The cached copy is left in place for inspection; delete {cache}.") from exc
    return model_dir_in(cache)


def model_dir_in(root: Path) -> Path:
    """The packaged folder inside a downloaded MLflow model: the one holding model_config.json (a classifier or an
    embedder), generator.json (a generator) or rag.json (a RAG version)."""
    matches = (
        sorted(root.rglob(MODEL_CONFIG_FILE)) or sorted(root.rglob(GENERATOR_CONFIG)) or sorted(root.rglob(RAG_CONFIG))
    )
    if not matches:
        raise RegistryError(
            f"{root}: no {MODEL_CONFIG_FILE} inside; the version was not logged by `mlp model register`"
        )
    return matches[0].parent
