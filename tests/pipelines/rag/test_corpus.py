"""Cutting the corpus: sections by heading (not inside code), pieces at paragraphs, stable ids, a content hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.rag.corpus import chunk_corpus, pieces, read_corpus, sections

RUNBOOK = """# Canary analysis failed

Intro line.

## Checks

First check.

```bash
# not a heading: a shell comment
mlp release status
```

## Rollback
Run `mlp release abort`.
"""


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_sections_follow_headings_outside_code_blocks() -> None:
    title, secs = sections(RUNBOOK)
    assert title == "Canary analysis failed"
    assert [s.heading for s in secs] == ["Canary analysis failed", "Checks", "Rollback"]
    assert any("# not a heading" in line for line in secs[1].lines)


def test_long_sections_are_cut_at_paragraphs_and_nothing_is_lost() -> None:
    paras = ["a" * 250, "b" * 250, "c" * 250, "d" * 900]
    out = pieces("\n\n".join(paras).splitlines(), 600)
    assert all(len(p) <= 600 for p in out)
    assert out[0] == "a" * 250 + "\n\n" + "b" * 250  # two paragraphs fit, the third starts a new piece
    assert "".join(out).replace("\n", "").count("d") == 900  # an over-long paragraph is split, not dropped


def test_chunks_carry_file_section_and_title_and_ids_follow_the_corpus_order(tmp_path: Path) -> None:
    root = write(tmp_path, {"runbooks/canary.md": RUNBOOK, "docs/a.md": "# A\n\n## One\ntext\n"})
    chunks = chunk_corpus(read_corpus(root, ["runbooks", "docs"]), 600)
    assert [c.id for c in chunks] == list(range(len(chunks)))
    assert chunks[0].source == "docs/a.md"  # files in path order
    check = next(c for c in chunks if c.section == "Checks")
    assert check.source == "runbooks/canary.md" and check.text.startswith("Canary analysis failed > Checks\n")
    assert "mlp release status" in check.text


def test_the_corpus_hash_changes_with_any_file_and_only_then(tmp_path: Path) -> None:
    root = write(tmp_path, {"runbooks/canary.md": RUNBOOK})
    first = read_corpus(root, ["runbooks"]).sha256
    assert read_corpus(root, ["runbooks"]).sha256 == first
    write(root, {"runbooks/canary.md": RUNBOOK + "\nOne more line.\n"})
    assert read_corpus(root, ["runbooks"]).sha256 != first


def test_a_missing_corpus_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="'runbooks', which is not a folder"):
        read_corpus(tmp_path, ["runbooks"])


def test_the_shipped_corpus_cuts_every_runbook_into_cited_chunks() -> None:
    root = Path(__file__).resolve().parents[3]
    corpus = read_corpus(root, ["runbooks", "docs"])
    chunks = chunk_corpus(corpus, 600)
    runbooks = {p.as_posix() for p in corpus.files if p.parts[0] == "runbooks"}
    assert runbooks <= {c.source for c in chunks}
    assert all(c.section and c.text.strip() for c in chunks)
