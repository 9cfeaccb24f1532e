"""The shipped data set: splits are disjoint, balanced enough, well-formed, and hashed as lineage says."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from pipelines.data import LABELS, SPLIT_FILES, DataError, dataset_sha256, load_shifted, load_split


@pytest.mark.parametrize("split", ["train", "validation", "heldout"])
def test_every_split_has_both_labels_and_non_empty_texts(split: str) -> None:
    examples = load_split(split)  # type: ignore[arg-type]
    counts = Counter(ex.label for ex in examples)
    assert set(counts) == set(LABELS)
    assert min(counts.values()) / max(counts.values()) > 0.7, counts
    assert all(ex.text.strip() for ex in examples)


def test_splits_share_no_text_and_no_movie() -> None:
    texts = {name: {ex.text for ex in load_split(name)} for name in ("train", "validation", "heldout")}  # type: ignore[arg-type]
    assert not texts["train"] & texts["validation"]
    assert not texts["train"] & texts["heldout"]
    assert not texts["validation"] & texts["heldout"]
    movies = {}
    for name, path in SPLIT_FILES.items():
        with path.open(encoding="utf-8") as fh:
            movies[name] = {row["movie"] for row in csv.DictReader(fh)}
    assert not movies["train"] & movies["validation"] and not movies["train"] & movies["heldout"]


def test_split_sizes_follow_the_documented_shares() -> None:
    sizes = {name: len(load_split(name)) for name in ("train", "validation", "heldout")}  # type: ignore[arg-type]
    total = sum(sizes.values())
    assert abs(sizes["train"] / total - 0.70) < 0.02
    assert abs(sizes["validation"] / total - 0.15) < 0.02


def test_hash_changes_when_a_split_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pipelines.data as data

    before = dataset_sha256()
    copies = {}
    for name, path in SPLIT_FILES.items():
        copies[name] = tmp_path / path.name
        copies[name].write_bytes(path.read_bytes())
    monkeypatch.setattr(data, "SPLIT_FILES", copies)
    assert dataset_sha256() == before
    copies["validation"].write_text(copies["validation"].read_text().replace("positive", "negative", 1))
    assert dataset_sha256() != before


def test_malformed_row_is_refused_with_its_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pipelines.data as data

    bad = tmp_path / "train.csv"
    bad.write_text("text,label,movie\nfine film,positive,a\nodd row,maybe,b\n")
    monkeypatch.setattr(data, "SPLIT_FILES", {**SPLIT_FILES, "train": bad})
    with pytest.raises(DataError, match=r"train\.csv:3"):
        load_split("train")


def test_shifted_set_is_out_of_domain_news() -> None:
    shifted = load_shifted()
    assert len(shifted) > 1000
    reviews = {ex.text for ex in load_split("train")}
    assert not reviews & set(shifted)
