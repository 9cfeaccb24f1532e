"""The shipped shifted-domain set: hashed as documented, split by article, labelled by the documented rule."""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path

import pytest

from pipelines.data import (
    LABELS,
    SHIFTED_SPLIT_FILES,
    DataError,
    dataset_sha256,
    load_shifted_split,
    load_split,
    shifted_dataset_sha256,
)
from pipelines.data.prepare_nyt import label_of

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_hash_recorded_in_docs_is_the_files_hash() -> None:
    """docs/model.md records the content hash; it must be the hash of the committed files."""
    text = (REPO_ROOT / "docs" / "model.md").read_text()
    recorded = re.search(r"shifted_dataset_sha256\(\)` = `([0-9a-f]{64})`", text)
    assert recorded, "docs/model.md lost the NYT editorial set's content hash"
    assert recorded.group(1) == shifted_dataset_sha256()


def test_hash_differs_from_the_in_domain_hash_and_follows_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipelines.data as data

    before = shifted_dataset_sha256()
    assert before != dataset_sha256()
    copies = {name: tmp_path / path.name for name, path in SHIFTED_SPLIT_FILES.items()}
    for name, path in SHIFTED_SPLIT_FILES.items():
        copies[name].write_bytes(path.read_bytes())
    monkeypatch.setattr(data, "SHIFTED_SPLIT_FILES", copies)
    assert shifted_dataset_sha256() == before
    copies["heldout"].write_text(copies["heldout"].read_text().replace("negative", "positive", 1))
    assert shifted_dataset_sha256() != before


@pytest.mark.parametrize("split", ["train", "validation", "heldout"])
def test_every_split_is_labelled_with_both_labels(split: str) -> None:
    examples = load_shifted_split(split)  # type: ignore[arg-type]
    counts = Counter(ex.label for ex in examples)
    assert set(counts) == set(LABELS)
    assert all(ex.text.strip() for ex in examples)


def test_splits_share_no_article_and_no_text_and_follow_the_shares() -> None:
    articles, texts = {}, {}
    for name, path in SHIFTED_SPLIT_FILES.items():
        with path.open(encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        articles[name] = {r["article"] for r in rows}
        texts[name] = {r["text"] for r in rows}
    for a, b in (("train", "validation"), ("train", "heldout"), ("validation", "heldout")):
        assert not articles[a] & articles[b]
        assert not texts[a] & texts[b]
    total = sum(len(t) for t in texts.values())
    assert abs(len(texts["train"]) / total - 0.70) < 0.02


def test_no_text_is_also_in_the_in_domain_data() -> None:
    reviews = {ex.text for split in ("train", "validation", "heldout") for ex in load_split(split)}  # type: ignore[arg-type]
    shifted = {ex.text for split in ("train", "validation", "heldout") for ex in load_shifted_split(split)}  # type: ignore[arg-type]
    assert not reviews & shifted


@pytest.mark.parametrize(("rating", "label"), [(0.5, "positive"), (2.1, "positive"), (-0.5, "negative"), (0.49, None)])
def test_ratings_map_to_labels_with_a_dropped_neutral_band(rating: float, label: str | None) -> None:
    assert label_of(rating) == label


def test_malformed_row_is_refused_with_its_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pipelines.data as data

    bad = tmp_path / "train.csv"
    bad.write_text("text,label,article\nrates rise,negative,1\nodd row,neutral,2\n")
    monkeypatch.setattr(data, "SHIFTED_SPLIT_FILES", {**SHIFTED_SPLIT_FILES, "train": bad})
    with pytest.raises(DataError, match=r"train\.csv:3"):
        load_shifted_split("train")
