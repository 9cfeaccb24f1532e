"""A RAG version on the local runtime: the servers of what it pins, its gate, and its own server.

The embedder and the generator a version pins must be the versions served: `ensure_pinned` starts (or restarts) a
model's own server on the pinned version. The RAG server then reaches them directly on their loopback ports, as a
cluster pod reaches their Services.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from core import endpoints, env
from core.policy import Policy
from infra.local import generators, serving
from infra.local.paths import model_cache
from pipelines.rag.evaluate import LabelledQuestion, RagGateReport, judge, measure, read_questions
from services.model_runtime.qdrant_edge_store import EdgeStore
from services.model_runtime.rag import Pinned, RagConfig, RagPipeline, load_index
from services.rag_server.clients import HttpEmbedder, HttpGenerator

Progress = Callable[[str], None]


def server_url(p: Policy, model: str) -> str:
    return f"http://{endpoints.HOST}:{p.catalogue_server_port(model)}"


def ensure_pinned(pinned: Pinned, progress: Progress = print) -> None:
    """The model's own server serves exactly `pinned.version` afterwards (started or replaced when it did not)."""
    live = {s.model: s for s in generators.live()}
    current = live.get(pinned.model)
    if current is not None and current.version == pinned.version and not current.model_dir:
        return
    progress(f"serving {pinned.model} v{pinned.version} (pinned)")
    serving.start_catalogue_server(pinned.model, pinned.version)


def rag_env(p: Policy, config: RagConfig) -> dict[str, str]:
    """What a RAG server of this version needs to reach the servers it pins."""
    return {
        env.EMBEDDER_URL.name: server_url(p, config.embedder.model),
        env.GENERATOR_URL.name: server_url(p, config.generator.model),
    }


def version_folder(model: str, version: int) -> Path:
    from services.registry.client import download_version

    return download_version(version, model, cache_root=model_cache())


def serve(p: Policy, model: str, version: int, progress: Progress = print) -> generators.GenerateServer:
    """Serve registered RAG version `version`: what it pins first, then its server, routed once ready."""
    config = RagConfig.read(version_folder(model, version))
    ensure_pinned(config.embedder, progress)
    ensure_pinned(config.generator, progress)
    progress(f"starting {model} v{version}")
    return serving.start_catalogue_server(model, version, extra_env=rag_env(p, config))


def pipeline_for(p: Policy, folder: Path, config: RagConfig) -> RagPipeline:
    """The version's pipeline in this process, on the embedded engine, against the pinned servers."""
    r = p.for_model(config.name).rag
    store = EdgeStore.open(Path(tempfile.mkdtemp(prefix="mlp-rag-gate-")), config.dim)
    load_index(folder, config, store)
    return RagPipeline(
        config,
        store,
        HttpEmbedder(server_url(p, config.embedder.model), "", r.embed_timeout_seconds),
        HttpGenerator(
            server_url(p, config.generator.model), "", r.generate_timeout_seconds, r.max_generations_in_flight
        ),
    )


def gate(
    p: Policy,
    folder: Path,
    report_dir: Path,
    questions: list[LabelledQuestion] | None = None,
    progress: Progress = print,
) -> RagGateReport:
    """Judge the built version in `folder` against the policy's `rag` gate; the report is written either way."""
    config = RagConfig.read(folder)
    r = p.for_model(config.name).rag
    ensure_pinned(config.embedder, progress)
    ensure_pinned(config.generator, progress)
    pipeline = pipeline_for(p, folder, config)
    qs = questions or read_questions()
    progress(f"retrieving for {len(qs)} labelled questions, answering the first {r.gate_generated_questions} in full")
    m = measure(pipeline, qs, r.gate_generated_questions, r.grounded_min_token_share)
    criteria = judge(m, r)
    passed = all(c.passed for c in criteria)
    report = RagGateReport(config.name, config.sha256(), config.index_sha256, passed, criteria, m)
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / gate_report_name(config.name)).write_text(report.to_json())
    pipeline.store.close()
    return report


def gate_report_name(model: str) -> str:
    return f"gate-{model}.json"
