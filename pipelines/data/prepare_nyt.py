"""How the shifted-domain labelled set was made (run once; the CSVs it writes are committed).

Source: the New York Times editorial snippets of Hutto & Gilbert's VADER evaluation (ICWSM 2014): 5,190 sentences
from 500 NYT opinion articles, each rated by at least 20 screened raters on a -4..+4 scale. They ship in the PyPI
package `vaderSentiment==3.3.2` (MIT) inside its source distribution, as
`additional_resources/hutto_ICWSM_2014.tar.gz` (the wheel holds only the lexicons). Usage:

    pip download --no-deps --no-binary :all: vaderSentiment==3.3.2 -d /tmp/vs
    tar xzf /tmp/vs/vaderSentiment-3.3.2.tar.gz -C /tmp/vs
    tar xzf /tmp/vs/vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz -C /tmp/vs
    python -m pipelines.data.prepare_nyt /tmp/vs/hutto_ICWSM_2014/nytEditorialSnippets_GroundTruth.txt

Labels come from the raters' mean: >= +0.5 positive, <= -0.5 negative; the near-neutral band between is dropped
(the model has no neutral class). Splits are by article (every sentence of one article in one split), 70/15/15 of
sentences, with the same seed and cut as the review-polarity splits (`prepare.split_by_group`).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from pipelines.data import SHIFTED_SPLIT_FILES
from pipelines.data.prepare import split_by_group, write_csv

# SHA-256 of nytEditorialSnippets_GroundTruth.txt as vaderSentiment 3.3.2 ships it
SOURCE_SHA256 = "7d8fbcce7dde5d716da53e78f4ef4be6b706e9ef1e1d51887e6d0ad4b69cc27e"
NEUTRAL_BAND = 0.5  # |mean rating| below this: too close to neutral to call either way


def label_of(mean_rating: float) -> str | None:
    if mean_rating >= NEUTRAL_BAND:
        return "positive"
    if mean_rating <= -NEUTRAL_BAND:
        return "negative"
    return None


def read_rows(source: Path) -> list[dict[str, str]]:
    """(text, label, article) rows from the tab-separated ground-truth file: ID, mean rating, text."""
    found = hashlib.sha256(source.read_bytes()).hexdigest()
    if found != SOURCE_SHA256:
        raise SystemExit(f"{source}: SHA-256 {found} is not the recorded {SOURCE_SHA256}; wrong file or version")
    rows, seen = [], set()
    for line in source.read_text(encoding="utf-8").splitlines():
        snippet_id, rating, text = line.split("\t", 2)
        text = " ".join(text.split())
        label = label_of(float(rating))
        if label is None or text in seen:
            continue
        seen.add(text)
        rows.append({"text": text, "label": label, "article": snippet_id.split("_")[0]})
    return rows


def main(source: Path) -> None:
    for name, part in split_by_group(read_rows(source), key="article").items():
        part.sort(key=lambda r: hashlib.sha256(r["text"].encode()).hexdigest())  # stable, label-mixed order
        SHIFTED_SPLIT_FILES[name].parent.mkdir(parents=True, exist_ok=True)
        write_csv(SHIFTED_SPLIT_FILES[name], part, ["text", "label", "article"])
        negative = sum(r["label"] == "negative" for r in part)
        print(f"{name}: {len(part)} snippets ({negative} negative / {len(part) - negative} positive)")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
