"""The vector-store benchmark's arithmetic, on inputs small enough to check by hand: percentiles, recall against the
exact top k, the per-1M line and the disk count. Nothing here is timed and no engine is opened."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from pipelines.bench import vector_store_bench as bench


def test_percentile_interpolates_between_ranks_as_numpy_does() -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0]  # unsorted on purpose
    assert bench.percentile(values, 0) == 1.0
    assert bench.percentile(values, 50) == 3.0
    assert bench.percentile(values, 100) == 5.0
    assert bench.percentile(values, 95) == pytest.approx(4.8)  # rank 3.8: 4 + 0.8 * (5 - 4)
    assert bench.percentile([7.0], 95) == 7.0
    rng = np.random.default_rng(0)
    sample = rng.exponential(size=101).tolist()
    for q in (50, 95, 99):
        assert bench.percentile(sample, q) == pytest.approx(float(np.percentile(sample, q)))
    with pytest.raises(ValueError):
        bench.percentile([], 50)


def test_recall_counts_the_overlap_with_the_exact_top_k_whatever_its_order() -> None:
    exact = [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert bench.recall_at_k([[3, 2, 1, 0], [4, 5, 6, 7]], exact) == 1.0
    assert bench.recall_at_k([[3, 2, 1, 0], [4, 5, 8, 9]], exact) == 0.75  # (4/4 + 2/4) / 2
    assert bench.recall_at_k([[9, 9, 9, 9], [8, 8, 8, 8]], exact) == 0.0
    with pytest.raises(ValueError):
        bench.recall_at_k([[0, 1, 2, 3]], exact)


def test_exact_top_k_ranks_by_cosine_best_first() -> None:
    vectors = bench.unit_rows(np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1]], dtype=np.float32))
    queries = bench.unit_rows(np.array([[1, 0, 0], [0, 0.1, 1]], dtype=np.float32))
    top = bench.exact_top_k(vectors, queries, k=3).tolist()
    assert top[0] == [0, 3, 4] or top[0] == [0, 4, 3]  # e0 itself, then the two at 45 degrees (a tie)
    assert top[1][0] == 2 and top[1][1] == 4  # nearest e2, then (1, 0, 1)


def test_the_line_takes_the_fixed_overhead_out() -> None:
    # 50 MB fixed plus 100 bytes a vector, measured at 1,000 and 10,000 vectors.
    line = bench.extrapolate(1_000, 50e6 + 1_000 * 100, 10_000, 50e6 + 10_000 * 100)
    assert line["per_vector"] == pytest.approx(100)
    assert line["fixed"] == pytest.approx(50e6)
    assert line["per_1m"] == pytest.approx(100e6)
    assert line["total_1m"] == pytest.approx(150e6)
    with pytest.raises(ValueError):
        bench.extrapolate(10_000, 1.0, 1_000, 2.0)


def row(engine: str, n: int, mb: float) -> dict[str, Any]:
    return {
        "engine": engine,
        "n": n,
        "rss_added_open_mb": mb,
        "rss_added_after_queries_mb": mb,
        "disk_allocated_mb": mb,
    }


def test_per_million_fits_the_two_largest_sizes_and_shows_a_slope_below_zero_as_noise() -> None:
    # The smallest size's figure is off the line (a layout that changes past it): it must not bend the fit.
    results = [
        row(bench.EDGE, 1_000, 99.0),
        row(bench.EDGE, 10_000, 20.0),  # 10 MB fixed + 1,000 B a vector
        row(bench.EDGE, 50_000, 60.0),
        row(bench.CLIENT, 1_000, 60.0),
        row(bench.CLIENT, 10_000, 50.0),  # falls: a slope below zero
    ]
    extra = bench.per_million(results)
    assert set(extra) == {bench.EDGE, bench.CLIENT}  # the no-WAL variant was not measured
    edge = extra[bench.EDGE]
    assert edge["from_sizes"] == [10_000, 50_000]
    assert edge["raw_vector_bytes"] == 384 * 4 == 1_536
    assert edge["rss_open"]["bytes_per_vector"] == pytest.approx(1_000)
    assert edge["disk_allocated"]["fixed_mb"] == pytest.approx(10.0)
    assert edge["disk_allocated"]["per_1m_gb"] == pytest.approx(1.0)
    assert edge["disk_allocated"]["total_1m_gb"] == pytest.approx(1.01)
    console = Console(width=400, record=True)
    console.print(bench.extrapolation_table(extra))
    text = console.export_text()
    client_line = next(line for line in text.splitlines() if bench.CLIENT in line)
    assert "≤ 0 (noise)" in client_line and "-1,111" not in client_line
    assert "1,536 B/vector, 1.536 GB" in client_line


def test_clustered_vectors_are_unit_float32_near_their_centre_and_reproducible() -> None:
    centres = bench.cluster_centres()
    vectors, assign = bench.clustered(centres, 500, stream=1)
    assert vectors.shape == (500, bench.DIM) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    to_centre = np.einsum("ij,ij->i", vectors, centres[assign])
    assert abs(float(to_centre.mean()) - 0.94) < 0.01  # 1 / sqrt(1 + 0.35²)
    again, _ = bench.clustered(bench.cluster_centres(), 500, stream=1)
    assert np.array_equal(vectors, again)
    other, _ = bench.clustered(centres, 500, stream=2)
    assert not np.array_equal(vectors, other)


def test_payloads_have_the_rag_chunk_shape() -> None:
    chunks = bench.payloads(np.array([3, 7]))
    assert [c["id"] for c in chunks] == [0, 1]
    assert chunks[1]["source"] == "runbooks/topic-07.md"
    assert all(250 <= len(c["text"]) <= bench.TEXT_CHARS for c in chunks)
    assert set(chunks[0]) == {"id", "source", "section", "text"}


def test_disk_counts_allocated_blocks_and_apparent_length_apart(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x" * 10)
    sub = tmp_path / "sub"
    sub.mkdir()
    with open(sub / "sparse", "wb") as f:
        f.truncate(8 * 1024 * 1024)  # preallocated and never written, as the edge shard's chunks are
    allocated, apparent = bench.dir_bytes(tmp_path)
    assert apparent == 10 + 8 * 1024 * 1024
    assert allocated < 1024 * 1024  # the sparse file takes (next to) no blocks
    assert allocated >= os.stat(tmp_path / "a").st_blocks * 512


def test_an_unknown_engine_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown engine"):
        bench.open_store("faiss", tmp_path, create=True)
