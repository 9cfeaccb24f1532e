"""The rehearsal of the RAG model's pod: its rendered Deployment on the CPU model-server image, run with `podman kube
play` against the local MLflow and S3 and the embedder's and generator's local servers. The pod fetches and verifies
its registered version, loads the index into the embedded Qdrant engine, is ready within its startupProbe budget,
answers with citations from the runbooks, and stays within its rendered memory limit."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest
import yaml

from core import contracts, env
from core import promql as q
from core.policy import policy
from infra.containers.images import MODEL_SERVER, BuiltImage, build
from infra.containers.podman import podman
from modules.k8s.serving import quantity_mib
from pipelines.rag.local import ensure_pinned, server_url, version_folder
from pipelines.rehearsal.changes import Change, Manifest, rag_server_for_this_machine
from pipelines.rehearsal.load import memory_bytes
from pipelines.rehearsal.model_server import PodRun, ask, play
from pipelines.rehearsal.pods import down
from services.model_runtime.rag import RagConfig

pytestmark = pytest.mark.integration
QUESTION = "the canary was rolled back with latency ratio 1.6, what do I check?"


def rag_name() -> str:
    return next(m.name for m in policy().models if m.task == "rag")


@pytest.fixture(scope="module")
def rag_pod(local_env: None, registered_rag: int) -> Iterator[PodRun]:
    config = RagConfig.read(version_folder(rag_name(), registered_rag))
    ensure_pinned(config.embedder)
    ensure_pinned(config.generator)
    p = policy()

    def adapt(deployment: Manifest) -> tuple[Manifest, list[Change]]:
        return rag_server_for_this_machine(
            deployment,
            embedder_url=server_url(p, config.embedder.model),
            generator_url=server_url(p, config.generator.model),
        )

    image: BuiltImage = build(MODEL_SERVER)
    run = play(registered_rag, image, rag_name(), adapt=adapt)
    yield run
    down(run.kube_file)


def test_the_rag_pod_starts_from_its_rendered_manifest_and_answers_with_citations(
    rag_pod: PodRun, registered_rag: int
) -> None:
    container = yaml.safe_load(rag_pod.kube_file.read_text())["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["bentoml", "serve", contracts.RAG_SERVICE_REF]
    names = {e["name"] for e in container["env"]}
    assert env.QDRANT_URL.name not in names and env.EMBEDDER_URL.name in names  # the two edits, and only them
    assert rag_pod.ready_seconds <= rag_pod.budget_seconds
    answer = ask(rag_pod.url, QUESTION)
    assert answer["model_name"] == rag_name() and answer["model_version"] == registered_rag
    assert "runbooks/canary-analysis-failed.md" in [c["source"] for c in answer["citations"]]
    # Generated, or retrieval-only when the suite's load pushed the generator past its budget: never an error.
    assert answer["mode"] == "generated" or "generator" in answer["fallback_reason"]
    state = podman("inspect", "--format", "{{.RestartCount}} {{.State.OOMKilled}}", rag_pod.container_id)
    assert state.split() == ["0", "false"]
    used = memory_bytes(rag_pod.container_id)
    limit = quantity_mib(container["resources"]["limits"]["memory"]) * 2**20
    print(f"\n[rag pod] ready {rag_pod.ready_seconds:.1f} s, {used / 2**20:.0f} MiB of {limit / 2**20:.0f}")
    assert 0 < used < limit
    with urllib.request.urlopen(f"{rag_pod.url}/metrics", timeout=5) as resp:
        assert q.RAG_ANSWERS_TOTAL in resp.read().decode()
