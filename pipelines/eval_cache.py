"""Evaluation results cached by what determines them: the model's content, the data set and the code.

A registered version never changes, so re-gating it (a release re-runs the gate) need not re-classify the whole
validation split. Latency is never cached: it is measured fresh on every gate run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from core.policy import REPO_ROOT
from infra.local.paths import sub
from pipelines.data import dataset_sha256
from pipelines.evaluation import EvalResult

CODE = ("pipelines/evaluation.py", "pipelines/baseline.py", "services/model_runtime/classifier.py")


def cache_key(subject: str) -> str:
    digest = hashlib.sha256(subject.encode())
    digest.update(dataset_sha256().encode())
    for path in CODE:
        digest.update((REPO_ROOT / path).read_bytes())
    return digest.hexdigest()


def model_subject(model_dir: Path) -> str:
    """The packaged model's content hash (lineage.json input_hash), or its files' hashes if absent."""
    lineage = model_dir / "lineage.json"
    if lineage.exists():
        input_hash = json.loads(lineage.read_text()).get("input_hash")
        if input_hash:
            return f"model:{input_hash}"
    digest = hashlib.sha256()
    for name in ("model.onnx", "tokenizer.json", "model_config.json"):
        digest.update((model_dir / name).read_bytes())
    return f"model:{digest.hexdigest()}"


def cached(subject: str, compute: Callable[[], EvalResult]) -> EvalResult:
    path = sub("eval-cache") / f"{cache_key(subject)}.json"
    if path.exists():
        raw = json.loads(path.read_text())
        return EvalResult(int(raw["n"]), float(raw["accuracy"]), float(raw["macro_f1"]), raw["per_class"])
    result = compute()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result.as_dict()))
    tmp.replace(path)
    return result
