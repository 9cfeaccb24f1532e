"""RAG benchmark: what the served RAG model needs and costs, measured on this machine (docs/rag.md).

Needs the RAG model served locally (`mlp rag serve <version>`; `make bench` does the steps before). Measures:
- ingestion: the corpus chunked and embedded through the gateway by the served embedder, into a scratch folder;
- the index: the snapshot's bytes per chunk, and the embedded engine's shard built from it (seconds, bytes on disk);
- answers through the gateway at 1, 5 and 10 concurrent users (closed loop: each user asks its next question when the
  last is answered), the labelled questions in turn: end-to-end p50/p95 at the client, the server's embed, retrieve
  and generate p50/p95, the share answered with generation (the rest fell back: the generator's budget ran out),
  answers/s, and decode tokens/s of the generated answers;
- cost per 1,000 answers on the policy's CPU instance: the three models' replicas (RAG server, embedder,
  generator: each its pod's share of the instance, core/cost.py) over the answers/s one set of replicas gave with
  every answer generated (1 user: the generator decodes one request at a time).
Writes build/reports/rag-bench.json and prints a table.
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from core import contracts, endpoints
from core.cost import cost_per_1k, replica_usd_per_hour
from core.policy import REPO_ROOT, Policy, policy
from infra.local import tls
from infra.local.paths import build_dir
from infra.local.secrets import api_key
from pipelines.rag.evaluate import read_questions
from pipelines.rag.ingest import GatewayEmbedder, ingest
from services.model_runtime.qdrant_edge_store import EdgeStore
from services.model_runtime.rag import INDEX_DIR, RagConfig, load_index

USERS = (1, 5, 10)
QUESTIONS_PER_LEVEL = {1: 8, 5: 15, 10: 20}


@dataclass
class Level:
    users: int
    answers: int
    generated_share: float
    answers_per_second: float
    e2e_p50_ms: float
    e2e_p95_ms: float
    embed_p50_ms: float
    embed_p95_ms: float
    retrieve_p50_ms: float
    retrieve_p95_ms: float
    generate_p50_ms: float
    generate_p95_ms: float
    decode_tokens_per_second: float  # median over the generated answers: completion tokens / generate time
    errors: dict[str, int]  # HTTP status -> count of questions not answered


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0


def summarise(users: int, results: list[dict[str, Any]], wall: float, errors: dict[str, int]) -> Level:
    def stage(name: str) -> list[float]:
        return [r["timings_ms"][name] for r in results if name in r["timings_ms"]]

    generated = [r for r in results if r["mode"] == "generated"]
    speeds = [
        r["completion_tokens"] / (r["timings_ms"]["generate"] / 1000) for r in generated if r["completion_tokens"]
    ]
    e2e = [r["client_ms"] for r in results]
    return Level(
        users=users,
        answers=len(results),  # answered (HTTP 200); `errors` holds the others
        generated_share=len(generated) / len(results) if results else 0.0,
        answers_per_second=len(results) / wall,  # answered ones only
        e2e_p50_ms=pct(e2e, 50),
        e2e_p95_ms=pct(e2e, 95),
        embed_p50_ms=pct(stage("embed"), 50),
        embed_p95_ms=pct(stage("embed"), 95),
        retrieve_p50_ms=pct(stage("retrieve"), 50),
        retrieve_p95_ms=pct(stage("retrieve"), 95),
        generate_p50_ms=pct(stage("generate"), 50),
        generate_p95_ms=pct(stage("generate"), 95),
        decode_tokens_per_second=statistics.median(speeds) if speeds else 0.0,
        errors=errors,
    )


def run_level(client: httpx.Client, route: str, questions: list[str], users: int, total: int) -> Level:
    todo = list(range(total))
    lock = threading.Lock()
    results: list[dict[str, Any]] = []
    errors: dict[str, int] = {}

    def user() -> None:
        while True:
            with lock:
                if not todo:
                    return
                i = todo.pop(0)
            started = time.perf_counter()
            r = client.post(route, json={"question": questions[i % len(questions)]})
            took = (time.perf_counter() - started) * 1000
            with lock:
                if r.status_code == 200:
                    results.append({**r.json(), "client_ms": took})
                else:
                    errors[str(r.status_code)] = errors.get(str(r.status_code), 0) + 1

    started = time.perf_counter()
    threads = [threading.Thread(target=user) for _ in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return summarise(users, results, time.perf_counter() - started, errors)


def folder_bytes(path: Path) -> int:
    """Bytes on disk: the engine's files are sparse (pre-allocated far beyond what they hold, decision 0180)."""
    return sum(p.stat().st_blocks * 512 for p in path.rglob("*") if p.is_file())


def measure_ingestion(p: Policy, model: str, client: httpx.Client, generator_version: int) -> dict[str, Any]:
    out = Path(tempfile.mkdtemp(prefix="mlp-rag-bench-")) / model
    embedder = GatewayEmbedder(client, p.for_model(model).rag.embedder_model)
    started = time.perf_counter()
    config = ingest(REPO_ROOT, p, model, out, embedder, generator_version, progress=lambda m: print(f"  {m}"))
    seconds = time.perf_counter() - started
    index_bytes = folder_bytes(out / INDEX_DIR)
    shard = out.parent / "shard"
    started = time.perf_counter()
    store = EdgeStore.open(shard, config.dim)
    load_index(out, config, store)
    build = time.perf_counter() - started
    store.close()
    shard_bytes = folder_bytes(shard)
    shutil.rmtree(out.parent, ignore_errors=True)
    return {
        "files": config.corpus_files,
        "chunks": config.chunks,
        "seconds": round(seconds, 2),
        "chunks_per_second": round(config.chunks / seconds, 1),
        "snapshot_bytes": index_bytes,
        "snapshot_bytes_per_chunk": round(index_bytes / config.chunks),
        "edge_shard_build_seconds": round(build, 3),
        "edge_shard_bytes": shard_bytes,
    }


def costs(p: Policy, model: str, answers_per_second: float) -> dict[str, Any]:
    r = p.for_model(model).rag
    parts = {m: replica_usd_per_hour(p.for_model(m)) for m in (model, r.embedder_model, r.generator_model)}
    per_hour = sum(parts.values())
    return {
        "instance": p.prices.cpu_instance,
        "replica_usd_per_hour": {k: round(v, 5) for k, v in parts.items()},
        "answers_per_second_per_replica_set": round(answers_per_second, 4),
        "usd_per_1k_answers": round(cost_per_1k(per_hour, answers_per_second), 4),
    }


def main() -> None:
    p = policy()
    model = next(m.name for m in p.models if m.task == "rag")
    route = contracts.model_route(model, "rag")
    headers = {contracts.API_KEY_HEADER: api_key("loadtest")}
    with httpx.Client(base_url=endpoints.gateway_url(), headers=headers, timeout=120, verify=tls.client_context()) as c:
        probe = c.post(route, json={"question": "warm-up", "generate": False})
        if probe.status_code != 200:
            raise SystemExit(f"{route} answered {probe.status_code}: serve the RAG model first (`mlp rag serve 1`)")
        served = RagConfig.read(build_dir() / "rag" / model) if (build_dir() / "rag" / model).is_dir() else None
        generator_version = served.generator.version if served else int(probe.json()["generator_version"])
        print("ingestion (a scratch copy, through the gateway):")
        ingestion = measure_ingestion(p, model, c, generator_version)
        questions = [q.question for q in read_questions()]
        levels = []
        for users in USERS:
            print(f"{users} concurrent user(s), {QUESTIONS_PER_LEVEL[users]} questions ...", flush=True)
            levels.append(run_level(c, route, questions, users, QUESTIONS_PER_LEVEL[users]))
    single = levels[0]
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": "this machine (2 cores): the RAG server, the embedder, the generator and the gateway share them",
        "model": model,
        "ingestion": ingestion,
        "levels": [asdict(level) for level in levels],
        "cost_cpu": costs(p, model, single.answers_per_second),
        "method": __doc__,
    }
    out = build_dir() / "reports" / "rag-bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(ingestion, indent=2))
    header = (
        "users answers generated ans/s e2e_p50 e2e_p95 embed_p50/p95 retrieve_p50/p95 generate_p50/p95 tok/s errors"
    )
    print(header)
    for lv in levels:
        print(
            f"{lv.users:5d} {lv.answers:7d} {lv.generated_share:9.2f} {lv.answers_per_second:5.2f} "
            f"{lv.e2e_p50_ms:7.0f} {lv.e2e_p95_ms:7.0f} {lv.embed_p50_ms:6.1f}/{lv.embed_p95_ms:<6.1f} "
            f"{lv.retrieve_p50_ms:6.2f}/{lv.retrieve_p95_ms:<6.2f} "
            f"{lv.generate_p50_ms:6.0f}/{lv.generate_p95_ms:<6.0f} "
            f"{lv.decode_tokens_per_second:5.1f} {lv.errors or ''}"
        )
    print(json.dumps(report["cost_cpu"], indent=2))
    print(f"report: {out}")


if __name__ == "__main__":
    main()
