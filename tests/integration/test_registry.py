"""Registration against the real MLflow + PostgreSQL + S3: versions, aliases, lineage, all-or-nothing."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest

from infra.local.paths import model_cache
from pipelines.registry.register import RegistryError, register
from services.registry import client as registry

pytestmark = pytest.mark.integration


def test_two_versions_differ_for_a_real_reason(registered_versions: dict[str, int]) -> None:
    fp32 = registry.get_version(registered_versions["fp32"])
    int8 = registry.get_version(registered_versions["int8"])
    assert fp32.version != int8.version
    assert fp32.tags["quantisation"] != int8.tags["quantisation"]
    assert fp32.tags["dataset_sha256"] == int8.tags["dataset_sha256"]


def test_versions_carry_lineage_metrics_and_aliases(registered_versions: dict[str, int]) -> None:
    from pipelines.data import dataset_sha256

    version = registry.get_version(registered_versions["int8"])
    for tag in ("dataset_sha256", "git_commit", "base_model", "quantisation", "input_hash", "variant"):
        assert version.tags.get(tag), f"missing lineage tag {tag}"
    assert version.tags["dataset_sha256"] == dataset_sha256()
    run = registry.mlflow_client().get_run(version.run_id)
    assert 0.5 < run.data.metrics["validation_accuracy"] <= 1.0
    assert run.data.metrics["latency_ms_p95_ms"] > 0
    assert registry.get_alias("challenger") == registered_versions["int8"]


def test_downloaded_version_serves_without_torch(registered_versions: dict[str, int]) -> None:
    from services.model_runtime.classifier import OnnxTextClassifier

    model_dir = registry.download_version(registered_versions["int8"], cache_root=model_cache())
    requirements = (model_dir / "requirements.txt").read_text()
    assert "onnxruntime" in requirements and "torch" not in requirements
    classifier = OnnxTextClassifier.load(model_dir)
    praise, pan = classifier.predict(
        [
            "A moving, beautifully acted film: the best of the year.",
            "A dull, tedious mess with a script that never works.",
        ]
    )
    assert (praise.label, pan.label) == ("positive", "negative")


def test_registering_the_same_package_twice_returns_the_same_version(
    registered_versions: dict[str, int], packaged_variants: dict[str, Path]
) -> None:
    again = register(packaged_variants["int8"], progress=lambda _m: None)
    assert again.reused and again.version == registered_versions["int8"]


def _fresh_copy(src: Path, tmp_path: Path) -> Path:
    """The same package under a new input hash, so the registry treats it as new."""
    dst = tmp_path / "pkg"
    shutil.copytree(src, dst)
    lineage = json.loads((dst / "lineage.json").read_text())
    lineage["input_hash"] = uuid.uuid4().hex
    (dst / "lineage.json").write_text(json.dumps(lineage))
    return dst


def test_registration_with_the_artifact_store_down_leaves_no_version(
    registered_versions: dict[str, int], packaged_variants: dict[str, Path], tmp_path: Path
) -> None:
    from infra.local.s3 import program as s3_program
    from infra.local.supervisor import ctl, ensure_program, wait_healthy

    package = _fresh_copy(packaged_variants["int8"], tmp_path)
    before = [v.version for v in registry.list_versions()]
    ctl("stop", "s3")
    try:
        with pytest.raises(RegistryError) as err:
            register(package, progress=lambda _m: None)
    finally:
        ensure_program(s3_program())
        wait_healthy(s3_program())
    assert "artifact store" in str(err.value)
    assert "Nothing was registered" in str(err.value)
    assert [v.version for v in registry.list_versions()] == before


def test_incomplete_package_is_refused_before_anything_is_sent(
    packaged_variants: dict[str, Path], tmp_path: Path
) -> None:
    package = _fresh_copy(packaged_variants["int8"], tmp_path)
    (package / "tokenizer.json").unlink()
    with pytest.raises(RegistryError, match=r"missing tokenizer\.json"):
        register(package, progress=lambda _m: None)
