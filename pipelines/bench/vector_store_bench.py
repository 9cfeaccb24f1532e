"""Which embedded Qdrant engine the RAG model uses locally: `qdrant-edge-py` against `qdrant-client`'s local mode.

For each size N (default 1,000, 10,000 and 30,000 points) and each engine, on disk in a temporary folder: the edge
shard as the RAG server would create it (write-ahead log on, the default), the edge shard with `wal_enabled=False` (an
index built once by a job and then only read needs no WAL: durable once `flush()` returns), and `qdrant-client`'s
local mode (`QdrantClient(path=...)`), measuring

- **ingest**: upsert of N points in batches of 256 (the vector as a list of floats and a payload of the RAG model's
  shape: id, source, section and a ~300-character text), building the points included; for the edge shard also
  `optimize()` (the HNSW index, where the segment is past the indexing threshold) and `flush()`, both counted;
- **disk**: the store's folder after it is closed, allocated blocks (what `du` says) and apparent size (the sum of
  file lengths: the edge shard preallocates sparse files, which a copy or an upload without sparse support inflates);
- **resident memory the engine adds**, in a fresh spawned process per engine and size: RSS (psutil) after importing
  the engine, after opening the persisted store and answering one query, and after the 520 queries below, each
  minus the RSS measured just before the import; and how much of the last is file-backed (mapped files' pages:
  page cache the kernel can reclaim and processes mapping the same files share; the edge shard's vectors, HNSW
  graph and WAL are such maps, local mode's points are Python objects on the heap). The baseline process holds the
  interpreter, numpy, psutil, rich and the bench's own data; whatever the engine imports beyond them (qdrant-client:
  pydantic, httpx, grpc) counts against it. In the RAG server BentoML has loaded some of those already, so the
  import share is an upper bound;
- **load**: the time to re-open the persisted store (`EdgeShard.load`, `QdrantClient(path=...)`), import excluded;
- **latency**: 500 single queries with limit 4 and the payload, after 20 warm-up queries, p50 and p95;
- **recall@4** of each engine against the exact top 4 by brute-force cosine (numpy) on the same vectors.

Vectors: 384 dimensions (the embedder's), float32, L2-normalised. Not isotropic noise: in 384 dimensions independent
Gaussian vectors are all nearly orthogonal, so each query's nearest neighbours are barely nearer than any other
point. That is unlike embeddings of a corpus, which cluster by topic, and is the one case where an approximate index
looks worst and its recall means least. Instead 64 cluster centres are drawn (unit vectors) and each point is
`normalise(centre + 0.35 * noise)` with noise ~ N(0, I/384), whose norm is about 1: a point's cosine to its centre is
about 0.94, to another point of its cluster about 0.89, to other clusters' points about 0. Queries are drawn the
same way from the same centres, so each query's neighbours are the points of its cluster, ranked by the noise: a
hard but realistic case for HNSW. Fixed seed; the same data for every engine.

Per 1M vectors (resident memory and allocated disk): a line through the figures at the two largest sizes measured
(with `--sizes 1000,10000`: the smallest and the largest). The per-vector cost is its slope, `(value at the larger -
value at the smaller) / (larger N - smaller N)`, which takes out the fixed overhead (`value at the smaller - slope *
smaller N`: the engine's import, preallocated files); per 1M is the slope times 1,000,000, and the projected total
adds the fixed overhead back. The raw vector bytes, 384 * 4 = 1,536 B per vector (1.536 GB per 1M), stand beside them.
Not the smallest size by default because the edge shard changes layout between 1,000 and 10,000 points: below its
indexing threshold the points stay in one appendable segment whose preallocated 32 MiB vector chunk is resident;
`optimize()` moves them into an indexed segment (HNSW) and leaves an empty appendable one, so the fixed part at 1,000
is not the fixed part at 10,000 and a line from 1,000 comes out low (even negative from 1,000 to 10,000). Both
larger sizes are past the threshold. A line through two points is still an estimate: whatever changes shape beyond
the sizes measured is not in it; the WAL, for one, grows in 32 MiB segments that are not all kept.

`.venv/bin/python -m pipelines.bench.vector_store_bench [--sizes 1000,10000,30000] [--out build/reports/...json]`
prints progress and the tables and writes the JSON report (default `build/reports/vector-store-bench.json`); the
figures are for this machine and say so, with its load average. About a minute and a half on 2 cores with the
default sizes and nothing else running, most of it local mode at 30,000 points (which it warns is past its
recommended 20,000); other work on the machine stretches it (and the latencies) noticeably.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import math
import multiprocessing
import os
import platform
import shutil
import tempfile
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import psutil
from rich.console import Console
from rich.table import Table

DIM = 384
CENTRES = 64
SPREAD = 0.35
SEED = 20261204
LIMIT = 4
QUERIES = 500
WARMUP = 20
BATCH = 256
DEFAULT_SIZES = (1_000, 10_000, 30_000)
PER = 1_000_000  # the extrapolation's size
RAW_VECTOR_BYTES = DIM * 4  # float32
TEXT_CHARS = 300
COLLECTION = "rag"
EDGE = "qdrant-edge-py"
EDGE_NO_WAL = "qdrant-edge-py, no WAL"
CLIENT = "qdrant-client local"
ENGINES = (EDGE, EDGE_NO_WAL, CLIENT)
PACKAGES = ("qdrant-edge-py", "qdrant-client", "numpy")
VOCABULARY = (
    "canary rollout promotion gate latency budget alert runbook model version registry alias drift retraining "
    "gateway route weight shadow mirror inference log policy threshold quantisation encoder replica scaling queue "
    "snapshot bucket secret token node pod image digest probe readiness liveness metric dashboard cost instance"
)
WORDS = tuple(VOCABULARY.split())


# ---------------------------------------------------------------- data


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Each row divided by its L2 norm, as float32."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / norms).astype(np.float32)


def cluster_centres(seed: int = SEED, centres: int = CENTRES, dim: int = DIM) -> np.ndarray:
    return unit_rows(np.random.default_rng([seed, 0]).normal(size=(centres, dim)))


def clustered(
    centres: np.ndarray, n: int, stream: int, seed: int = SEED, spread: float = SPREAD
) -> tuple[np.ndarray, np.ndarray]:
    """`n` unit vectors `normalise(centre + spread * noise)`, noise ~ N(0, I/dim); and each one's centre index."""
    rng = np.random.default_rng([seed, stream])
    assign = rng.integers(0, len(centres), size=n)
    noise = rng.normal(size=(n, centres.shape[1])) / math.sqrt(centres.shape[1])
    return unit_rows(centres[assign] + spread * noise), assign


def payloads(assign: np.ndarray, seed: int = SEED) -> list[dict[str, Any]]:
    """The RAG model's chunk payload: id, source, section and a text of about TEXT_CHARS characters."""
    rng = np.random.default_rng([seed, 3])
    out = []
    for i, cluster in enumerate(assign.tolist()):
        words = rng.choice(WORDS, size=60).tolist()
        text = " ".join(words)[:TEXT_CHARS]
        out.append(
            {"id": i, "source": f"runbooks/topic-{cluster:02d}.md", "section": f"Section {i % 12}", "text": text}
        )
    return out


def exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int = LIMIT) -> np.ndarray:
    """Row i: the indices of the k vectors with the highest cosine to query i, best first (unit rows: dot = cosine)."""
    scores = queries @ vectors.T
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    top: np.ndarray = np.take_along_axis(part, order, axis=1)
    return top


# ---------------------------------------------------------------- figures


def recall_at_k(found: Sequence[Sequence[int]], exact: Sequence[Sequence[int]]) -> float:
    """Mean over queries of |found ∩ exact| / |exact|: order inside the top k does not count."""
    if len(found) != len(exact) or not exact:
        raise ValueError("one found list per exact list, and at least one")
    return sum(len(set(f) & set(e)) / len(e) for f, e in zip(found, exact, strict=True)) / len(exact)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), interpolated linearly between closest ranks (numpy's default method)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def extrapolate(small_n: int, small: float, large_n: int, large: float, per: int = PER) -> dict[str, float]:
    """A line through (small_n, small) and (large_n, large): per unit, the fixed part, per `per` units and the total."""
    if large_n <= small_n:
        raise ValueError("the large size must be larger than the small one")
    slope = (large - small) / (large_n - small_n)
    fixed = small - slope * small_n
    return {"per_vector": slope, "fixed": fixed, "per_1m": slope * per, "total_1m": fixed + slope * per}


def dir_bytes(path: Path) -> tuple[int, int]:
    """(allocated, apparent) bytes of the files under `path`: blocks on disk as `du` counts them, and their lengths."""
    allocated = apparent = 0
    for root, _, files in os.walk(path):
        for name in files:
            st = os.lstat(os.path.join(root, name))
            allocated += st.st_blocks * 512
            apparent += st.st_size
    return allocated, apparent


def peak_rss_bytes() -> int:
    """This process's high-water resident memory (Linux VmHWM). Not `ru_maxrss`: Linux carries that across exec, so
    a spawned child would report its parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def rss_bytes() -> tuple[int, int]:
    """(resident, of which file-backed or shared: mapped files' pages, reclaimable by the kernel) of this process."""
    info = psutil.Process().memory_info()
    return int(info.rss), int(info.shared)


# ---------------------------------------------------------------- engines (imported inside, so RSS sees the import)


class Store(Protocol):
    def upsert(self, ids: list[int], vectors: list[list[float]], payloads: list[dict[str, Any]]) -> None: ...

    def finish(self) -> dict[str, Any]:
        """Make the writes durable and indexed; what the engine says about its layout."""

    def query(self, vector: list[float], limit: int) -> list[int]: ...

    def close(self) -> None: ...


class EdgeStore:
    def __init__(self, path: Path, create: bool, wal: bool = True) -> None:
        from qdrant_edge import Distance, EdgeConfig, EdgeShard, EdgeVectorParams

        if create:
            vectors = {"": EdgeVectorParams(size=DIM, distance=Distance.Cosine)}
            config = EdgeConfig(vectors=vectors, wal_enabled=wal)
            self.shard = EdgeShard.create(str(path), config)
        else:
            self.shard = EdgeShard.load(str(path))

    def upsert(self, ids: list[int], vectors: list[list[float]], payloads: list[dict[str, Any]]) -> None:
        from qdrant_edge import Point, UpdateOperation

        points = [Point(id=i, vector=v, payload=p) for i, v, p in zip(ids, vectors, payloads, strict=True)]
        self.shard.update(UpdateOperation.upsert_points(points))

    def finish(self) -> dict[str, Any]:
        self.shard.optimize()
        self.shard.flush()
        info = self.shard.info()
        return {
            "segments": info.segments_count,
            "points": info.points_count,
            "indexed_vectors": info.indexed_vectors_count,
        }

    def query(self, vector: list[float], limit: int) -> list[int]:
        from qdrant_edge import Query, QueryRequest

        hits = self.shard.query(QueryRequest(limit=limit, query=Query.Nearest(vector), with_payload=True))
        return [int(h.id) for h in hits]

    def close(self) -> None:
        self.shard.close()


class ClientStore:
    def __init__(self, path: Path, create: bool) -> None:
        from qdrant_client import QdrantClient, models

        # Past 20,000 points local mode warns that it is not recommended, on every open and upsert: said once, above.
        warnings.filterwarnings("ignore", message="Local mode is not recommended", category=UserWarning)

        self.models = models
        self.client = QdrantClient(path=str(path))
        if create:
            params = models.VectorParams(size=DIM, distance=models.Distance.COSINE)
            self.client.create_collection(COLLECTION, vectors_config=params)

    def upsert(self, ids: list[int], vectors: list[list[float]], payloads: list[dict[str, Any]]) -> None:
        points = [
            self.models.PointStruct(id=i, vector=v, payload=p) for i, v, p in zip(ids, vectors, payloads, strict=True)
        ]
        self.client.upsert(COLLECTION, points=points)

    def finish(self) -> dict[str, Any]:
        # Local mode writes each upsert to its SQLite file as it goes; there is no index to build.
        return {"segments": None, "points": self.client.count(COLLECTION).count, "indexed_vectors": 0}

    def query(self, vector: list[float], limit: int) -> list[int]:
        hits = self.client.query_points(COLLECTION, query=vector, limit=limit, with_payload=True).points
        return [int(h.id) for h in hits]

    def close(self) -> None:
        self.client.close()


def open_store(engine: str, path: Path, create: bool) -> Store:
    if engine in (EDGE, EDGE_NO_WAL):
        return EdgeStore(path, create, wal=engine == EDGE)  # loading keeps the persisted choice
    if engine == CLIENT:
        return ClientStore(path, create)
    raise ValueError(f"unknown engine {engine!r}: one of {ENGINES}")


# ---------------------------------------------------------------- the two child processes


def build(engine: str, store_dir: str, data_file: str) -> dict[str, Any]:
    """Create the store and ingest every point (a fresh process: its peak RSS is the ingest's)."""
    data = np.load(data_file)
    vectors = data["vectors"]
    chunks = payloads(data["assign"])
    before = rss_bytes()[0]
    started = time.perf_counter()
    store = open_store(engine, Path(store_dir), create=True)
    create_s = time.perf_counter() - started
    started = time.perf_counter()
    for lo in range(0, len(vectors), BATCH):
        hi = min(lo + BATCH, len(vectors))
        store.upsert(list(range(lo, hi)), vectors[lo:hi].tolist(), chunks[lo:hi])
    upsert_s = time.perf_counter() - started
    started = time.perf_counter()
    layout = store.finish()
    finish_s = time.perf_counter() - started
    store.close()
    return {
        "create_s": create_s,
        "upsert_s": upsert_s,
        "optimize_flush_s": finish_s,
        "ingest_s": upsert_s + finish_s,
        "ingest_rss_before_mb": before / 1e6,  # the interpreter, numpy and this size's vectors and payloads
        "ingest_peak_rss_mb": peak_rss_bytes() / 1e6,
        **layout,
    }


def serve(engine: str, store_dir: str, data_file: str) -> dict[str, Any]:
    """Re-open the persisted store and query it as the RAG server would (a fresh process: the RSS added is its own)."""
    queries = np.load(data_file)["queries"].tolist()
    before = rss_bytes()
    started = time.perf_counter()
    if engine in (EDGE, EDGE_NO_WAL):
        import qdrant_edge  # noqa: F401
    else:
        import qdrant_client  # noqa: F401
    import_s = time.perf_counter() - started
    after_import = rss_bytes()
    started = time.perf_counter()
    store = open_store(engine, Path(store_dir), create=False)
    load_s = time.perf_counter() - started
    first = store.query(queries[0], LIMIT)
    after_open = rss_bytes()
    assert len(first) == LIMIT, first
    for q in queries[1:WARMUP]:
        store.query(q, LIMIT)
    found, latencies = [], []
    for q in queries[WARMUP:]:
        t0 = time.perf_counter_ns()
        ids = store.query(q, LIMIT)
        latencies.append((time.perf_counter_ns() - t0) / 1e6)
        found.append(ids)
    after_queries = rss_bytes()
    threads = psutil.Process().num_threads()
    store.close()
    mb = 1e6
    return {
        "import_s": import_s,
        "load_s": load_s,
        "rss_baseline_mb": before[0] / mb,
        "rss_added_import_mb": (after_import[0] - before[0]) / mb,
        "rss_added_open_mb": (after_open[0] - before[0]) / mb,
        "rss_added_after_queries_mb": (after_queries[0] - before[0]) / mb,
        "rss_added_after_queries_file_mb": (after_queries[1] - before[1]) / mb,
        "threads": threads,
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "found": found,
    }


def in_fresh_process(fn: Any, *args: Any) -> dict[str, Any]:
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        result: dict[str, Any] = pool.submit(fn, *args).result()
    return result


# ---------------------------------------------------------------- the run


def run(sizes: Sequence[int], console: Console, workdir: Path) -> list[dict[str, Any]]:
    centres = cluster_centres()
    queries, _ = clustered(centres, WARMUP + QUERIES, stream=2)
    results = []
    for n in sizes:
        vectors, assign = clustered(centres, n, stream=1)
        data_file = workdir / f"data-{n}.npz"
        np.savez(data_file, vectors=vectors, assign=assign, queries=queries)
        exact = exact_top_k(vectors, queries[WARMUP:]).tolist()
        for engine in ENGINES:
            store_dir = workdir / f"{engine.replace(' ', '-')}-{n}"
            console.print(f"  {engine}, N={n:,}: ingest ...")
            built = in_fresh_process(build, engine, str(store_dir), str(data_file))
            allocated, apparent = dir_bytes(store_dir)
            console.print(
                f"    ingest {built['ingest_s']:.2f} s, disk {allocated / 1e6:.1f} MB; "
                f"re-open and {WARMUP}+{QUERIES} queries in a fresh process ..."
            )
            served = in_fresh_process(serve, engine, str(store_dir), str(data_file))
            found = served.pop("found")
            row = {
                "engine": engine,
                "n": n,
                **built,
                "disk_allocated_mb": allocated / 1e6,
                "disk_apparent_mb": apparent / 1e6,
                **served,
                "recall_at_4": recall_at_k(found, exact),
            }
            console.print(
                f"    load {row['load_s'] * 1e3:.0f} ms, p50 {row['p50_ms']:.2f} ms, p95 {row['p95_ms']:.2f} ms, "
                f"recall@4 {row['recall_at_4']:.3f}, RSS added {row['rss_added_open_mb']:.1f} MB"
            )
            results.append(row)
    return results


EXTRAPOLATED = {  # report key -> the row's figure, in MB
    "rss_open": "rss_added_open_mb",
    "rss_after_queries": "rss_added_after_queries_mb",
    "disk_allocated": "disk_allocated_mb",
}


def per_million(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per engine: each figure of EXTRAPOLATED per vector (bytes), fixed (MB), per 1M and projected total (GB),
    from the line through the two largest sizes measured."""
    out: dict[str, dict[str, Any]] = {}
    for engine in ENGINES:
        rows = sorted((r for r in results if r["engine"] == engine), key=lambda r: r["n"])
        if len(rows) < 2:
            continue
        small, large = rows[-2], rows[-1]
        figures: dict[str, Any] = {"from_sizes": [small["n"], large["n"]], "raw_vector_bytes": RAW_VECTOR_BYTES}
        for name, key in EXTRAPOLATED.items():
            line = extrapolate(small["n"], small[key] * 1e6, large["n"], large[key] * 1e6)
            figures[name] = {
                "bytes_per_vector": line["per_vector"],
                "fixed_mb": line["fixed"] / 1e6,
                "per_1m_gb": line["per_1m"] / 1e9,
                "total_1m_gb": line["total_1m"] / 1e9,
            }
        out[engine] = figures
    return out


def table(results: list[dict[str, Any]]) -> Table:
    t = Table(
        "engine",
        "N",
        "ingest s",
        "disk MB (alloc. / apparent)",
        "RSS added MB: import / open+1q / +500q (file-backed)",
        "load ms",
        "p50 ms",
        "p95 ms",
        "recall@4",
        "index",
        title=f"Embedded Qdrant, {DIM}-dim cosine, limit {LIMIT}, {QUERIES} single queries, {os.cpu_count()} cores",
    )
    for r in results:
        index = "in-memory scan" if r["segments"] is None else f"{r['segments']} seg., {r['indexed_vectors']:,} HNSW"
        t.add_row(
            r["engine"],
            f"{r['n']:,}",
            f"{r['ingest_s']:.2f}",
            f"{r['disk_allocated_mb']:.1f} / {r['disk_apparent_mb']:.1f}",
            f"{r['rss_added_import_mb']:.1f} / {r['rss_added_open_mb']:.1f} / {r['rss_added_after_queries_mb']:.1f}"
            f" ({r['rss_added_after_queries_file_mb']:.1f})",
            f"{r['load_s'] * 1e3:.0f}",
            f"{r['p50_ms']:.2f}",
            f"{r['p95_ms']:.2f}",
            f"{r['recall_at_4']:.3f}",
            index,
        )
    return t


def extrapolation_table(extra: dict[str, dict[str, Any]]) -> Table:
    t = Table(
        "engine",
        "from N",
        "RSS B/vector (open+1q / +500q)",
        "RSS per 1M GB (+ fixed MB)",
        "disk B/vector",
        "disk per 1M GB (+ fixed MB)",
        "raw vectors",
        title="Per 1M vectors: the slope between the two largest sizes, the fixed overhead taken out",
    )
    for engine, f in extra.items():
        rss, rssq, disk = f["rss_open"], f["rss_after_queries"], f["disk_allocated"]
        t.add_row(
            engine,
            " → ".join(f"{n:,}" for n in f["from_sizes"]),
            f"{_per_vector(rss)} / {_per_vector(rssq)}",
            f"{_per_1m(rss)} / {_per_1m(rssq)} (+ {_mb(rss['fixed_mb'])} / {_mb(rssq['fixed_mb'])})",
            _per_vector(disk),
            f"{_per_1m(disk)} (+ {_mb(disk['fixed_mb'])})",
            f"{RAW_VECTOR_BYTES:,} B/vector, {RAW_VECTOR_BYTES * PER / 1e9:.3f} GB",
        )
    return t


def _per_vector(line: dict[str, float]) -> str:
    # A slope at or below zero: the per-vector cost is lost in the fixed part's variation between the two sizes.
    return f"{line['bytes_per_vector']:,.0f}" if line["bytes_per_vector"] > 0 else "≤ 0 (noise)"


def _mb(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 0.5 else "0"  # not "-0" for a fixed part a rounding error below zero


def _per_1m(line: dict[str, float]) -> str:
    return f"{line['per_1m_gb']:.2f}" if line["bytes_per_vector"] > 0 else "-"


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="points per store, comma-separated")
    parser.add_argument("--out", type=Path, help="the JSON report (default build/reports/vector-store-bench.json)")
    args = parser.parse_args(argv)
    sizes = sorted({int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()})
    if not sizes or sizes[0] < LIMIT:
        parser.error("--sizes: at least one size of at least 4 points")
    console = Console(width=max(Console().width, 180))  # a pipe or CI log is not a terminal
    load_before = os.getloadavg()[0]  # other work on the machine shows in the latencies: say how much there was
    console.print(
        f"Embedded Qdrant engines, sizes {sizes}, on {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores (load average {load_before:.2f}); {versions()}"
    )
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="vector-store-bench-"))
    try:
        results = run(sizes, console, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    extra = per_million(results)
    console.print(table(results))
    if extra:
        console.print(extrapolation_table(extra))
    if args.out is None:
        from infra.local.paths import build_dir  # here, not at the top: the spawned children need none of it

        args.out = build_dir() / "reports" / "vector-store-bench.json"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "load_average_1m": {"start": load_before, "end": os.getloadavg()[0]},
        },
        "versions": versions(),
        "parameters": {
            "dim": DIM,
            "centres": CENTRES,
            "spread": SPREAD,
            "seed": SEED,
            "limit": LIMIT,
            "queries": QUERIES,
            "warmup": WARMUP,
            "batch": BATCH,
            "text_chars": TEXT_CHARS,
        },
        "raw_vector_bytes": RAW_VECTOR_BYTES,
        "results": results,
        "per_1m_vectors": extra,
        "seconds": time.perf_counter() - started,
    }
    args.out.write_text(json.dumps(report, indent=2))
    console.print(
        f"{time.perf_counter() - started:.0f} s (load average at the end {os.getloadavg()[0]:.2f}); written {args.out}"
    )


if __name__ == "__main__":
    main()
