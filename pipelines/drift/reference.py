"""The reference the drift check compares against: the training split, featurised by the served version's model.

Embeddings and predictions depend on the model, so the reference is per version; it is cached under
`<root>/<key>/` (the caller's folder; locally `<state>/drift/reference`) where the key joins the variant, a hash of
the model files and the data set hash (the content hash, not the version number, so a local `--model-dir` that
changes is never served stale).
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipelines.data import Split, dataset_sha256, load_split
from pipelines.drift.features import (
    CATEGORICAL_COLUMNS,
    EMBEDDING_COMPONENTS,
    FEATURE_COLUMNS,
    EmbeddingSpace,
    embed,
    feature_frame,
    predictions_from_embeddings,
    typed,
)
from services.model_runtime.classifier import TextClassifier
from services.model_runtime.runtimes import encoder_file

REFERENCE_SPLIT: Split = "train"
FORMAT = 1  # bump when the features change, so old caches are not reused
SAMPLE_SEED = 0


@dataclass(frozen=True)
class Reference:
    frame: pd.DataFrame
    space: EmbeddingSpace
    meta: dict[str, object]
    path: Path


def model_fingerprint(model_dir: Path) -> str:
    """sha256 over the files that decide embeddings and predictions."""
    digest = hashlib.sha256()
    for path in (encoder_file(model_dir), model_dir / "tokenizer.json", model_dir / "model_config.json"):
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def cache_key(variant: str, model_dir: Path, limit: int | None) -> str:
    """Model content hash + data set hash (+ sample size): a version's files never change, so this is per
    version, and two versions with the same artifacts (re-registrations) share one reference."""
    parts = [
        variant,
        model_fingerprint(model_dir)[:12],
        dataset_sha256()[:12],
        f"f{FORMAT}k{EMBEDDING_COMPONENTS}",
    ]
    if limit is not None:
        parts.append(f"n{limit}")
    return "-".join(parts)


def reference_texts(limit: int | None = None) -> list[str]:
    """Training texts; a fixed-seed sample of `limit` of them when given (tests keep the reference small)."""
    texts = [e.text for e in load_split(REFERENCE_SPLIT)]
    if limit is not None and limit < len(texts):
        texts = random.Random(SAMPLE_SEED).sample(texts, limit)
    return texts


def load_or_build(
    classifier: TextClassifier,
    version: int | None,
    root: Path,
    limit: int | None = None,
    progress: Callable[[str], None] = print,
) -> Reference:
    key = cache_key(classifier.variant, classifier.model_dir, limit)
    path = root / key
    if (path / "meta.json").exists():
        return _load(path)
    texts = reference_texts(limit)
    progress(f"building the drift reference {key}: embedding {len(texts)} {REFERENCE_SPLIT} texts (cached after)")
    embeddings = embed(classifier, texts, _every_tenth(progress))
    space = EmbeddingSpace.fit(embeddings)
    frame = feature_frame(classifier, texts, embeddings, space, predictions_from_embeddings(classifier, embeddings))
    meta: dict[str, object] = {
        "key": key,
        "split": REFERENCE_SPLIT,
        "rows": len(frame),
        "built_for_version": version,
        "variant": classifier.variant,
        "model_dir": str(classifier.model_dir),
        "dataset_sha256": dataset_sha256(),
        "columns": FEATURE_COLUMNS,
    }
    tmp = path.with_name(key + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    frame.to_csv(tmp / "features.csv.gz", index=False)
    space.save(tmp / "space.npz")
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)  # atomic: a half-written reference is never read
    return Reference(frame, space, meta, path)


def _load(path: Path) -> Reference:
    frame = pd.read_csv(path / "features.csv.gz", dtype={c: str for c in CATEGORICAL_COLUMNS})
    return Reference(
        typed(frame),
        EmbeddingSpace.load(path / "space.npz"),
        json.loads((path / "meta.json").read_text()),
        path,
    )


def _every_tenth(progress: Callable[[str], None]) -> Callable[[int, int], None]:
    last = [-1]

    def report(done: int, total: int) -> None:
        tenth = done * 10 // max(total, 1)
        if tenth != last[0]:
            last[0] = tenth
            progress(f"  embedded {done}/{total}")

    return report
