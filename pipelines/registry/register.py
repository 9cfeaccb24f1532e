"""Register a packaged model variant as a new MLflow model version: all or nothing.

Order matters: the run and its artifacts are stored and verified first; only then is the version
created. If anything fails before, no version exists; if tagging the new version fails, the
version is deleted again. The error names the server that failed.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException

from core import endpoints, env
from core.clock import utcnow
from core.policy import REPO_ROOT, policy
from services.model_runtime.runtimes import runtime_of
from services.registry.client import (
    RegistryError,
    auth_refusal,
    check_mlflow,
    list_versions,
    mlflow_client,
    model_name,
    resolve_version,
    set_alias,
    tracking_uri,
)
from services.registry.manifest import MANIFEST_FILE, SIGNATURE_FILE

REQUIRED_FILES = (  # and one encoder, model.onnx or model.gguf (services/model_runtime/runtimes.py)
    "tokenizer.json",
    "model_config.json",
    "metrics.json",
    "lineage.json",
    "input_example.json",
    "requirements.txt",
)
MANIFEST_TAG = "artifact_manifest_sha256"  # SHA-256 of the version's signed manifest.json
PYFUNC_CODE = REPO_ROOT / "services" / "model_runtime" / "pyfunc_model.py"
LINEAGE_TAGS = ("dataset_sha256", "git_commit", "base_model", "base_model_package", "quantisation", "input_hash")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Registered:
    name: str
    version: int
    run_id: str
    variant: str
    reused: bool


@dataclass(frozen=True)
class VersionRow:
    """One registered version as `mlp model list` shows it."""

    version: int
    aliases: list[str]
    variant: str
    validation_accuracy: str | None
    gate: str
    release: str


@dataclass(frozen=True)
class AliasSet:
    name: str
    alias: str
    version: int
    set_at: str  # taken just before the registry call: whatever the alias starts (a release) starts after it


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    except (OSError, json.JSONDecodeError) as exc:
        raise RegistryError(f"{path}: unreadable ({exc}); rebuild it with `mlp model package`") from exc


def check_artifact_dir(artifact_dir: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Refuse an incomplete package before anything is sent to the registry."""
    if not artifact_dir.is_dir():
        raise RegistryError(f"{artifact_dir}: no such directory. Build it with `mlp model package --variant NAME`.")
    missing = [f for f in REQUIRED_FILES if not (artifact_dir / f).is_file()]
    if missing:
        raise RegistryError(f"{artifact_dir}: missing {', '.join(missing)}. Rebuild with `mlp model package`.")
    try:
        runtime_of(artifact_dir)  # exactly one encoder
    except ValueError as exc:
        raise RegistryError(str(exc)) from exc
    config = _read_json(artifact_dir / "model_config.json")
    metrics = _read_json(artifact_dir / "metrics.json")
    lineage = _read_json(artifact_dir / "lineage.json")
    absent = [t for t in LINEAGE_TAGS if not lineage.get(t)]
    if absent:
        raise RegistryError(f"{artifact_dir}/lineage.json: no value for {', '.join(absent)}")
    return config, metrics, lineage


def flatten_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numbers from metrics.json as MLflow metric names (validation.accuracy -> validation_accuracy)."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_metrics(value, f"{name}_"))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[name.replace(" ", "_")] = float(value)
    return flat


def failed_server() -> str:
    """Which server broke a registration: MLflow itself, or the artifact store behind it."""
    try:
        check_mlflow()
    except RegistryError:
        return f"MLflow server ({tracking_uri()}): see runbooks/mlflow-unreachable.md"
    try:
        with socket.create_connection(("127.0.0.1", policy().ports.s3), timeout=2):
            pass
    except OSError:
        return f"artifact store (S3 API at {endpoints.s3_url()}): see runbooks/artifact-store-errors.md"
    return f"MLflow server or its database ({tracking_uri()}): see runbooks/backend-database-down-or-full.md"


def find_existing(input_hash: str, name: str | None = None) -> int | None:
    for v in list_versions(name):
        # A version registered before signed manifests (no manifest tag) would be refused at load: not reused.
        if v.tags.get("input_hash") == input_hash and v.status == "READY" and v.tags.get(MANIFEST_TAG):
            return int(v.version)
    return None


def _log_run(
    artifact_dir: Path,
    config: dict[str, Any],
    metrics: dict[str, Any],
    lineage: dict[str, Any],
    progress: Progress,
    extra_tags: dict[str, str],
    name: str,
) -> tuple[str, str, str]:
    import pandas as pd
    from mlflow.models import infer_signature

    from services.model_runtime.pyfunc import OnnxClassifierPyfunc  # for the signature's output frame only
    from services.model_runtime.runtimes import load_classifier

    variant = str(config.get("variant", artifact_dir.name))
    example = _read_json(artifact_dir / "input_example.json")
    texts = example["texts"] if isinstance(example, dict) else list(example)
    classifier = load_classifier(artifact_dir)
    input_df = pd.DataFrame({"text": texts})
    output_df = OnnxClassifierPyfunc.to_frame(classifier.predict(texts), classifier.labels)
    signature = infer_signature(input_df, output_df)

    mlflow.set_tracking_uri(tracking_uri())
    mlflow.set_experiment(name)
    with mlflow.start_run(run_name=f"package-{variant}") as run:
        try:
            mlflow.set_tags({"variant": variant, **{k: str(lineage[k]) for k in LINEAGE_TAGS}, **extra_tags})
            params = {"variant": variant, "quantisation": lineage["quantisation"]}
            params.update({k: config.get(k) for k in ("max_seq_tokens", "padding")})
            mlflow.log_params(params)
            mlflow.log_metrics(flatten_metrics(metrics))
            mlflow.log_dict(lineage, "lineage.json")
            mlflow.log_dict(metrics, "metrics.json")
            progress("uploading model artifacts (through MLflow's artifact proxy to S3)")
            info = mlflow.pyfunc.log_model(
                name="model",
                # Models-from-code: the wrapper is stored as this source file, not as a cloudpickle (decision 0150).
                python_model=str(PYFUNC_CODE),
                artifacts={"model_dir": str(artifact_dir)},
                code_paths=[str(REPO_ROOT / "services")],
                signature=signature,
                input_example=input_df.head(2),
                pip_requirements=str(artifact_dir / "requirements.txt"),
                metadata={"variant": variant, "quantisation": lineage["quantisation"]},
            )
            progress("verifying the stored artifacts and signing their manifest")
            took, manifest_sha256 = verify_and_sign(info.model_id, info.model_uri, artifact_dir)
            mlflow.log_metric("artifact_manifest_seconds", took)
            mlflow.set_tag(MANIFEST_TAG, manifest_sha256)
        except Exception:
            mlflow.set_tag("registration", "failed")
            raise
    return run.info.run_id, info.model_uri, manifest_sha256


def verify_and_sign(model_id: str, model_uri: str, artifact_dir: Path) -> tuple[float, str]:
    """Read back what the store holds, check every packaged file arrived byte for byte, then sign the manifest of
    the whole logged model (MLmodel, code, the package) and store `manifest.json` + `manifest.sig` beside it.
    Returns the seconds taken and the manifest's SHA-256 (a version tag: the registry records which manifest it got).

    The digests are taken from the stored copy, so they describe exactly what a loader will download; the comparison
    with the local package first makes sure that copy is the one this command uploaded. Returns the seconds taken.
    """
    import tempfile

    import mlflow.artifacts

    from pipelines.registry.signers import SigningError, signer_from_env
    from services.registry.manifest import ArtifactVerificationError, sha256_file, sign_dir, verify_dir

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mlp-register-") as tmp:
        stored = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp))
        package = stored / "artifacts" / artifact_dir.name
        for local in sorted(p for p in artifact_dir.rglob("*") if p.is_file()):
            rel = local.relative_to(artifact_dir)
            remote = package / rel
            if not remote.is_file():
                raise RegistryError(f"stored model lacks {rel}: the upload did not complete")
            if remote.stat().st_size != local.stat().st_size or sha256_file(remote) != sha256_file(local):
                raise RegistryError(f"stored {rel} differs from {local}: the upload was changed or did not complete")
        signer = signer_from_env()
        try:
            sign_dir(stored, signer.sign)
            # Before the version exists: a signature the servers' key refuses would register an unservable version.
            verify_dir(stored, env.ARTIFACT_PUBLIC_KEY.get() or signer.public_key(), "the signed upload")
        except (SigningError, ArtifactVerificationError) as exc:
            raise RegistryError(
                f"signing with {signer.name} failed: {exc}. If the key was rotated, set "
                f"{env.ARTIFACT_PUBLIC_KEY.name} to the new and the old key (runbooks/artifact-signing-key-rotation.md)"
            ) from exc
        pair = Path(tmp) / "manifest-pair"
        pair.mkdir()
        for name in (MANIFEST_FILE, SIGNATURE_FILE):
            (pair / name).write_bytes((stored / name).read_bytes())
        mlflow_client().log_model_artifacts(model_id, str(pair))
        manifest_sha256 = sha256_file(stored / MANIFEST_FILE)
    return time.monotonic() - started, manifest_sha256


def register(
    artifact_dir: Path,
    alias: str | None = None,
    progress: Progress = print,
    extra_tags: dict[str, str] | None = None,
    name: str | None = None,
) -> Registered:
    """Log the package to a run, verify it is stored, then create the version and tag it.

    `extra_tags` (e.g. a retraining's lineage) go on the run and, with the creation request, on the version. `name`:
    the registered model (default: the policy's default model; an embed model registers the same package).
    """
    extra_tags = extra_tags or {}
    config, metrics, lineage = check_artifact_dir(artifact_dir)
    check_mlflow()
    name = name or model_name()
    variant = str(config.get("variant", artifact_dir.name))
    existing = find_existing(str(lineage["input_hash"]), name)
    if existing is not None:
        progress(f"{name} v{existing} already holds this exact package (input_hash); not registering it twice")
        if alias:
            set_alias(alias, existing, name)
        run_id = mlflow_client().get_model_version(name, str(existing)).run_id or ""
        return Registered(name, existing, run_id, variant, True)

    try:
        run_id, model_uri, manifest_sha256 = _log_run(
            artifact_dir, config, metrics, lineage, progress, extra_tags, name
        )
    except RegistryError:
        raise
    except (MlflowException, OSError, Exception) as exc:
        raise not_logged(exc, variant) from exc

    progress("creating the model version")
    client = mlflow_client()
    tags = {k: str(lineage[k]) for k in LINEAGE_TAGS}
    tags.update({"variant": variant, "validation_accuracy": str(metrics.get("validation", {}).get("accuracy"))})
    tags[MANIFEST_TAG] = manifest_sha256
    tags.update(extra_tags)
    version = create_version(model_uri, name, tags)
    try:
        wait_ready(name, version)
        client.update_model_version(name, str(version), description=_description(variant, metrics, lineage))
        if alias:
            set_alias(alias, version, name)
    except Exception as exc:
        # All or nothing: a version we could not finish is removed, not left half-registered.
        client.delete_model_version(name, str(version))
        raise RegistryError(
            f"version {version} was created but could not be completed ({exc!s:.200}); it was deleted again. "
            f"Failing server: {failed_server()}"
        ) from exc
    return Registered(name, version, run_id, variant, False)


def not_logged(exc: Exception, what: str) -> Exception:
    """The error for a registration that failed before its version existed: the registry's refusal, or the
    failing server."""
    refused = auth_refusal(exc, f"register {what} (log its run and artifacts)", write=True)
    if refused is not None:
        return refused
    return RegistryError(
        f"registration of {what} failed before any version was created: {exc!s:.300}\n"
        f"Failing server: {failed_server()}. Nothing was registered; run the command again once it is fixed."
    )


def create_version(model_uri: str, name: str, tags: dict[str, str]) -> int:
    """Create the version with its tags in the creation request, so a version never exists without them."""
    try:
        mv = mlflow.register_model(model_uri, name, tags=tags, await_registration_for=60)
    except MlflowException as exc:
        refused = auth_refusal(exc, f"create a version of {name}", write=True)
        if refused is not None:
            raise refused from exc
        raise RegistryError(f"could not create the version: {exc}. Failing server: {failed_server()}") from exc
    return int(mv.version)


def passing_gate_measures(report: Path, field: str, expected: str, what: str, gate_command: str) -> dict[str, Any]:
    """The measures of a passing gate report that judged this very artifact (the report's `field` equals
    `expected`, e.g. a file's or an index's SHA-256); a RegistryError naming what to do otherwise."""
    try:
        gate = json.loads(report.read_text())
    except (OSError, ValueError) as exc:
        raise RegistryError(f"{report}: no gate report ({exc}); run `{gate_command}` first") from exc
    if gate.get(field) != expected:
        raise RegistryError(f"{report} judged another {what} than this one ({expected[:12]}): gate it first")
    if not gate.get("passed"):
        failed = [c["name"] for c in gate.get("criteria", []) if not c.get("passed")]
        raise RegistryError(f"the {what} failed its gate ({', '.join(failed)}); a failed {what} is not registered")
    measures: dict[str, Any] = gate["measures"]
    return measures


def create_complete_version(model_uri: str, name: str, tags: dict[str, str]) -> int:
    """Create the version and wait until it is READY; one that does not get there is deleted (all or nothing)."""
    version = create_version(model_uri, name, tags)
    try:
        wait_ready(name, version)
    except Exception as exc:
        mlflow_client().delete_model_version(name, str(version))
        raise RegistryError(f"version {version} could not be completed ({exc!s:.200}); it was deleted again") from exc
    return version


def wait_ready(name: str, version: int, timeout: float = 60) -> None:
    client = mlflow_client()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get_model_version(name, str(version)).status
        if status == "READY":
            return
        if status == "FAILED_REGISTRATION":
            raise RegistryError(f"{name} v{version}: MLflow reports FAILED_REGISTRATION")
        time.sleep(0.5)
    raise RegistryError(f"{name} v{version} not READY after {timeout:.0f}s")


def _description(variant: str, metrics: dict[str, Any], lineage: dict[str, Any]) -> str:
    val = metrics.get("validation", {})
    lat = metrics.get("latency_ms", {})
    return (
        f"variant {variant} ({lineage['quantisation']}); validation accuracy {val.get('accuracy')}, "
        f"macro-F1 {val.get('macro_f1')}; single-request p95 {lat.get('p95')} ms; "
        f"dataset {str(lineage['dataset_sha256'])[:12]}, commit {str(lineage['git_commit'])[:12]}"
    )


def versions() -> list[VersionRow]:
    """Every version of the platform's model with its aliases, variant, accuracy and gate/release outcome."""
    check_mlflow()
    found = list_versions()
    aliases = mlflow_client().get_registered_model(model_name()).aliases if found else {}
    by_version: dict[str, list[str]] = {}
    for alias, v in aliases.items():
        by_version.setdefault(str(v), []).append(alias)
    return [
        VersionRow(
            version=int(v.version),
            aliases=sorted(by_version.get(v.version, [])),
            variant=v.tags.get("variant", "?"),
            validation_accuracy=v.tags.get("validation_accuracy"),
            gate=v.tags.get("gate.result", "-"),
            release=v.tags.get("release.status", "-"),
        )
        for v in found
    ]


def point_alias(alias: str, ref: str) -> AliasSet:
    """Point `alias` at a version (number or another alias). Setting `candidate` starts a release by webhook."""
    check_mlflow()
    version = resolve_version(ref)
    set_at = utcnow()
    set_alias(alias, version)
    return AliasSet(model_name(), alias, version, set_at)
