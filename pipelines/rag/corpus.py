"""The RAG corpus: the repository's Markdown (policy `rag.corpus` folders), versioned by content hash, cut into chunks.

A chunk is one Markdown section (a heading and the text under it, up to the next heading), cut at paragraph breaks
when it is longer than `rag.chunk_max_chars`; its text starts with `<document title> > <section>` so a short section
still says what it is about. Fenced code blocks are never split and a `#` inside them is not a heading. Chunk ids
follow the corpus order (files sorted by path): the same corpus gives the same chunks and ids.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from services.model_runtime.vector_store import Chunk

HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True)
class Corpus:
    root: Path
    files: list[Path]  # relative to root, sorted
    sha256: str


def read_corpus(root: Path, folders: Sequence[str]) -> Corpus:
    """Every `*.md` under the folders, and the hash of their paths and contents (the version's lineage)."""
    files: list[Path] = []
    for folder in folders:
        base = root / folder
        if not base.is_dir():
            raise FileNotFoundError(f"rag.corpus names {folder!r}, which is not a folder of {root}")
        files += [p.relative_to(root) for p in base.rglob("*.md") if p.is_file()]
    files = sorted(set(files))
    if not files:
        raise FileNotFoundError(f"no Markdown files under {list(folders)} in {root}: nothing to index")
    digest = hashlib.sha256()
    for rel in files:
        digest.update(rel.as_posix().encode() + b"\0" + (root / rel).read_bytes() + b"\0")
    return Corpus(root, files, digest.hexdigest())


@dataclass(frozen=True)
class Section:
    heading: str
    lines: list[str]


def sections(text: str) -> tuple[str, list[Section]]:
    """The document's title (its first heading) and its sections in order; text before the first heading is a
    section named after the title."""
    title = ""
    out: list[Section] = [Section("", [])]
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        match = None if fenced else HEADING.match(line)
        if match:
            heading = match.group(2).strip()
            title = title or heading
            out.append(Section(heading, []))
        else:
            out[-1].lines.append(line)
    first = out[0]
    if not "".join(first.lines).strip():
        out = out[1:]
    elif not first.heading:
        out[0] = Section(title, first.lines)
    return title, out


def _paragraphs(lines: list[str]) -> Iterator[str]:
    """Blank-line separated blocks, a fenced code block kept whole."""
    block: list[str] = []
    fenced = False
    for line in lines:
        if FENCE.match(line):
            fenced = not fenced
        if not line.strip() and not fenced:
            if block:
                yield "\n".join(block).strip()
            block = []
        else:
            block.append(line)
    if block:
        yield "\n".join(block).strip()


def pieces(body_lines: list[str], max_chars: int) -> list[str]:
    """The section's text in pieces of at most `max_chars` at paragraph breaks (one paragraph longer than that is
    its own piece, cut at the limit: nothing is dropped)."""
    out: list[str] = []
    current = ""
    for para in _paragraphs(body_lines):
        while len(para) > max_chars:
            if current:
                out.append(current)
                current = ""
            out.append(para[:max_chars])
            para = para[max_chars:].lstrip()
        if current and len(current) + 2 + len(para) > max_chars:
            out.append(current)
            current = ""
        current = f"{current}\n\n{para}" if current else para
    if current:
        out.append(current)
    return [p for p in out if p.strip()]


def chunk_corpus(corpus: Corpus, max_chars: int) -> list[Chunk]:
    chunks: list[Chunk] = []
    for rel in corpus.files:
        title, secs = sections((corpus.root / rel).read_text(encoding="utf-8"))
        for sec in secs:
            label = f"{title} > {sec.heading}" if sec.heading and sec.heading != title else (title or rel.stem)
            for piece in pieces(sec.lines, max_chars):  # a heading with no text of its own adds nothing
                text = f"{label}\n{piece}".strip()
                chunks.append(Chunk(len(chunks), rel.as_posix(), sec.heading or title, text))
    return chunks
