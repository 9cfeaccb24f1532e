"""The labelled data set the repository ships: review polarity (Rotten Tomatoes snippets).

Three splits (train / validation / held-out, split by movie) and a shifted set (news headlines) for drift
tests. Provenance, licence and numbers: docs/model.md. `dataset_sha256()` is the content hash recorded as
lineage on every registered version.
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
LABELS = ("negative", "positive")


@dataclass(frozen=True)
class Example:
    text: str
    label: str


class DataError(ValueError):
    """A data file is missing or malformed; the message names the file and the row."""


def load_split(split: Split) -> list[Example]:
    path = SPLIT_FILES.get(split)
    if path is None:
        raise DataError(f"unknown split {split!r}; choose from {', '.join(SPLIT_FILES)}")
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
    digest = hashlib.sha256()
    for name in sorted(SPLIT_FILES):
        digest.update(name.encode())
        digest.update(SPLIT_FILES[name].read_bytes())
    return digest.hexdigest()
