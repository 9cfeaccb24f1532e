"""Register a packaged, gated generator as a version of its catalogue model: all or nothing, signed like the
classifier's versions (pipelines/registry/register.py), so a generate server can serve it from the registry.

A generator is registered only with a passing gate report of the same file (the report names the form and the
SHA-256 it measured): the version's tags carry the gate's measures, the registry never holds an ungated generator.
The same file registered again is not registered twice (tag `sha256`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow

from core.policy import REPO_ROOT
from pipelines.registry.register import (
    MANIFEST_TAG,
    Progress,
    create_complete_version,
    not_logged,
    passing_gate_measures,
    verify_and_sign,
)
from services.model_runtime.generator import GENERATOR_CONFIG, GENERATOR_FILE, GeneratorConfig
from services.registry.client import (
    RegistryError,
    check_mlflow,
    list_versions,
    tracking_uri,
)

PYFUNC_CODE = REPO_ROOT / "services" / "model_runtime" / "generator_pyfunc_model.py"
LLAMA_PIN = next(
    line.strip() for line in (REPO_ROOT / "requirements" / "llama.in").read_text().splitlines() if "==" in line
)


@dataclass(frozen=True)
class RegisteredGenerator:
    name: str
    version: int
    run_id: str
    form: str
    reused: bool


def register_generator(
    model_dir: Path, model_name: str, gate_report: Path, progress: Progress = print
) -> RegisteredGenerator:
    """Log the folder as a pyfunc model with a signed manifest, then create the version with its gate's tags."""
    for needed in (GENERATOR_FILE, GENERATOR_CONFIG):
        if not (model_dir / needed).is_file():
            raise RegistryError(f"{model_dir}: missing {needed}; run `mlp model package-generator`")
    try:
        config = GeneratorConfig.read(model_dir)
    except ValueError as exc:
        raise RegistryError(str(exc)) from exc
    measures = passing_gate_measures(gate_report, "sha256", config.sha256, "generator file", "mlp model gate-generator")
    check_mlflow()
    for v in list_versions(model_name):
        if v.tags.get("sha256") == config.sha256 and v.status == "READY" and v.tags.get(MANIFEST_TAG):
            progress(f"{model_name} v{v.version} already holds this file (sha256); not registering it twice")
            return RegisteredGenerator(model_name, int(v.version), v.run_id or "", config.name, True)
    tags = {
        "form": config.name,
        "quantisation": config.quantisation,
        "sha256": config.sha256,
        "source": config.source,
        "gate": "passed",
        **{f"gate_{k}": f"{v:.6g}" for k, v in measures.items() if isinstance(v, int | float)},
    }
    try:
        run_id, model_uri, manifest = _log_run(model_dir, model_name, config, measures, tags, progress)
    except RegistryError:
        raise
    except Exception as exc:
        raise not_logged(exc, config.name) from exc
    progress("creating the model version")
    version = create_complete_version(model_uri, model_name, {**tags, MANIFEST_TAG: manifest})
    return RegisteredGenerator(model_name, version, run_id, config.name, False)


def _log_run(
    model_dir: Path,
    model_name: str,
    config: GeneratorConfig,
    measures: dict[str, Any],
    tags: dict[str, str],
    progress: Progress,
) -> tuple[str, str, str]:
    import pandas as pd
    from mlflow.models import infer_signature

    mlflow.set_tracking_uri(tracking_uri())
    mlflow.set_experiment(model_name)
    signature = infer_signature(pd.DataFrame({"prompt": ["a prompt"]}), pd.DataFrame({"text": ["a completion"]}))
    with mlflow.start_run(run_name=f"package-{config.name}") as run:
        try:
            mlflow.set_tags(tags)
            mlflow.log_metrics({k: float(v) for k, v in measures.items() if isinstance(v, int | float)})
            progress(f"uploading {config.name} ({(model_dir / GENERATOR_FILE).stat().st_size / 2**20:.0f} MiB) to S3")
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(PYFUNC_CODE),  # models-from-code: source, never a pickle
                artifacts={"model_dir": str(model_dir)},
                code_paths=[str(REPO_ROOT / "services")],
                signature=signature,
                pip_requirements=[LLAMA_PIN, "pandas"],
                metadata={"form": config.name, "quantisation": config.quantisation},
            )
            progress("verifying the stored artifacts and signing their manifest")
            took, manifest = verify_and_sign(info.model_id, info.model_uri, model_dir)
            mlflow.log_metric("artifact_manifest_seconds", took)
            mlflow.set_tag(MANIFEST_TAG, manifest)
        except Exception:
            mlflow.set_tag("registration", "failed")
            raise
    return run.info.run_id, info.model_uri, manifest
