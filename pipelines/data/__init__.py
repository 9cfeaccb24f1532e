"""The labelled data sets the repository ships.

- review polarity (Rotten Tomatoes snippets): the model's own domain, three splits (train / validation / held-out,
  split by movie); `dataset_sha256()` is the content hash recorded as lineage on every registered version;
- NYT editorial snippets (news, human-rated): the shifted domain retraining adds, three splits (split by article);
  `shifted_dataset_sha256()` is its hash, recorded on every retrained version;
- Guardian headlines (unlabelled): the shifted traffic of the drift tests.

Provenance, licences and numbers: docs/model.md.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

DATA_DIR = Path(__file__).resolve().parent
Split = Literal["train", "validation", "heldout"]
SPLIT_FILES: dict[str, Path] = {
    "train": DATA_DIR / "review_polarity" / "train.csv",
    "validation": DATA_DIR / "review_polarity" / "validation.csv",
    "heldout": DATA_DIR / "review_polarity" / "heldout.csv",
}
SHIFT_FILE = DATA_DIR / "shift" / "guardian_headlines.csv"
SHIFTED_SPLIT_FILES: dict[str, Path] = {
    "train": DATA_DIR / "nyt_editorials" / "train.csv",
    "validation": DATA_DIR / "nyt_editorials" / "validation.csv",
    "heldout": DATA_DIR / "nyt_editorials" / "heldout.csv",
}
LABELS = ("negative", "positive")


@dataclass(frozen=True)
class Example:
    text: str
    label: str


class DataError(ValueError):
    """A data file is missing or malformed; the message names the file and the row."""


def load_split(split: Split) -> list[Example]:
    """One split of the in-domain data (review polarity)."""
    return _load(SPLIT_FILES, split)


def load_shifted_split(split: Split) -> list[Example]:
    """One split of the labelled shifted-domain data (NYT editorial snippets)."""
    return _load(SHIFTED_SPLIT_FILES, split)


def _load(files: dict[str, Path], split: str) -> list[Example]:
    path = files.get(split)
    if path is None:
        raise DataError(f"unknown split {split!r}; choose from {', '.join(files)}")
    examples = []
    with path.open(encoding="utf-8", newline="") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            if row.get("label") not in LABELS or not row.get("text"):
                raise DataError(f"{path}:{line}: expected a text and a label in {LABELS}, got {row!r}")
            examples.append(Example(row["text"], row["label"]))
    return examples


def load_shifted() -> list[str]:
    """Out-of-domain texts (news headlines): the shifted traffic of the drift tests."""
    with SHIFT_FILE.open(encoding="utf-8", newline="") as fh:
        return [row["text"] for row in csv.DictReader(fh)]


def dataset_sha256() -> str:
    """One hash over the three split files (name + bytes), recorded as lineage on every version."""
    return _hash(SPLIT_FILES)


def shifted_dataset_sha256() -> str:
    """The same hash over the shifted-domain splits, recorded as lineage on every retrained version."""
    return _hash(SHIFTED_SPLIT_FILES)


def _hash(files: dict[str, Path]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode())
        digest.update(files[name].read_bytes())
    return digest.hexdigest()
