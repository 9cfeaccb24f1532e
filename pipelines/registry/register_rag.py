"""Register a built, gated RAG version (`mlp rag ingest`, `mlp rag gate`) as a version of its catalogue model: all or
nothing, signed like every version (pipelines/registry/register.py), so a RAG server can serve it from the registry.

A RAG version is registered only with a passing gate report of the same build (the report names `RagConfig.sha256`,
which covers the index, the pins, the prompt and its settings); the version's tags carry what it pins and its
lineage, so `mlp model list`-style reads need no download. The same build registered again is not registered twice
(tag `version_sha256`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
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
from services.model_runtime.rag import RAG_CONFIG, RagConfig, index_sha256
from services.registry.client import RegistryError, check_mlflow, list_versions, tracking_uri

PYFUNC_CODE = REPO_ROOT / "services" / "model_runtime" / "rag_pyfunc_model.py"
QDRANT_EDGE_PIN = next(
    line.split("#")[0].strip()
    for line in (REPO_ROOT / "requirements" / "main.in").read_text().splitlines()
    if line.startswith("qdrant-edge-py")
)


@dataclass(frozen=True)
class RegisteredRag:
    name: str
    version: int
    run_id: str
    reused: bool


# Tag of `RagConfig.sha256`: the whole version (index, pins, prompt, settings), as its gate report names it.
VERSION_SHA_TAG = "version_sha256"


def lineage_tags(config: RagConfig) -> dict[str, str]:
    return {
        "embedder": f"{config.embedder.model}/{config.embedder.version}",
        "generator": f"{config.generator.model}/{config.generator.version}",
        "corpus_sha256": config.corpus_sha256,
        "corpus_files": str(config.corpus_files),
        "index_sha256": config.index_sha256,
        "chunks": str(config.chunks),
        "chunk_max_chars": str(config.chunk_max_chars),
        "top_k": str(config.top_k),
    }


def register_rag(folder: Path, model_name: str, gate_report: Path, progress: Progress = print) -> RegisteredRag:
    """Log the folder as a pyfunc model with a signed manifest, then create the version with its pins and gate."""
    try:
        config = RagConfig.read(folder)
    except ValueError as exc:
        raise RegistryError(str(exc)) from exc
    if config.name != model_name:
        raise RegistryError(f"{folder} was built for {config.name}, not {model_name}")
    if index_sha256(folder) != config.index_sha256:
        raise RegistryError(f"{folder}: the index does not match {RAG_CONFIG}; rebuild it with `mlp rag ingest`")
    fingerprint = config.sha256()
    measures = passing_gate_measures(gate_report, VERSION_SHA_TAG, fingerprint, "RAG version", "mlp rag gate")
    check_mlflow()
    tags = {**lineage_tags(config), VERSION_SHA_TAG: fingerprint, "gate": "passed"}
    tags.update({f"gate_{k}": f"{v:.6g}" for k, v in measures.items() if isinstance(v, int | float)})
    for v in list_versions(model_name):
        if v.tags.get(VERSION_SHA_TAG) == fingerprint and v.status == "READY" and v.tags.get(MANIFEST_TAG):
            progress(f"{model_name} v{v.version} already holds this very build; not registering it twice")
            return RegisteredRag(model_name, int(v.version), v.run_id or "", True)
    try:
        run_id, model_uri, manifest = _log_run(folder, model_name, config, measures, tags, progress)
    except RegistryError:
        raise
    except Exception as exc:
        raise not_logged(exc, f"the RAG version of {model_name}") from exc
    progress("creating the model version")
    version = create_complete_version(model_uri, model_name, {**tags, MANIFEST_TAG: manifest})
    return RegisteredRag(model_name, version, run_id, False)


def _log_run(
    folder: Path, model_name: str, config: RagConfig, measures: dict[str, Any], tags: dict[str, str], progress: Progress
) -> tuple[str, str, str]:
    mlflow.set_tracking_uri(tracking_uri())
    mlflow.set_experiment(model_name)
    with mlflow.start_run(run_name=f"rag-{config.index_sha256[:12]}") as run:
        try:
            mlflow.set_tags(tags)
            mlflow.log_metrics({k: float(v) for k, v in measures.items() if isinstance(v, int | float)})
            mlflow.log_dict(asdict(config), "rag.json")
            progress(f"uploading the index ({config.chunks} chunks) and what it pins")
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(PYFUNC_CODE),  # models-from-code: source, never a pickle
                artifacts={"model_dir": str(folder)},
                code_paths=[str(REPO_ROOT / "services")],
                pip_requirements=[QDRANT_EDGE_PIN, "pandas", "numpy"],
                metadata={"embedder": tags["embedder"], "generator": tags["generator"]},
            )
            progress("verifying the stored artifacts and signing their manifest")
            took, manifest = verify_and_sign(info.model_id, info.model_uri, folder)
            mlflow.log_metric("artifact_manifest_seconds", took)
            mlflow.set_tag(MANIFEST_TAG, manifest)
        except Exception:
            mlflow.set_tag("registration", "failed")
            raise
    return run.info.run_id, info.model_uri, manifest
