"""The rehearsal of llama.cpp in the cluster's CPU model-server image: the rendered Deployment of a GGUF version of
the classifier, and of the catalogue's generate model, run with `podman kube play` against the local MLflow and S3.
Each pod fetches and verifies its registered version, is ready within the rendered startupProbe budget, answers as
the same file does in this process's llama.cpp, stays within its rendered memory limit and exposes the platform's
metric names."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from core import contracts
from core import promql as q
from core.policy import policy
from infra.containers.images import MODEL_SERVER, BuiltImage, build
from infra.containers.podman import podman
from modules.k8s.serving import quantity_mib
from pipelines.rehearsal.load import memory_bytes
from pipelines.rehearsal.model_server import PodRun, classify, generate, play
from pipelines.rehearsal.pods import down
from services.model_runtime.runtimes import LLAMA_CPP, load_classifier, runtime_of
from tests.integration.conftest import generator_name

pytestmark = pytest.mark.integration
GGUF_VARIANT = "gguf-q8_0"
TEXTS = [
    "A moving, beautifully acted film.",
    "Dull, overlong and badly written; I left early.",
    "It was fine.",
]
PROMPT = "The three primary colours are"
NEW_TOKENS = 12


@pytest.fixture(scope="module")
def image() -> BuiltImage:
    return build(MODEL_SERVER)


@pytest.fixture  # one pod at a time: both take the rehearsal's port
def gguf_pod(local_env: None, registered_versions: dict[str, int], image: BuiltImage) -> Iterator[PodRun]:
    run = play(registered_versions[GGUF_VARIANT], image)
    yield run
    down(run.kube_file)


def container_of(pod: PodRun) -> dict[str, Any]:
    manifest = yaml.safe_load(pod.kube_file.read_text())
    container: dict[str, Any] = manifest["spec"]["template"]["spec"]["containers"][0]
    return container


def memory_limit_bytes(pod: PodRun) -> int:
    return quantity_mib(container_of(pod)["resources"]["limits"]["memory"]) * 2**20


def exposed_sample(pod: PodRun, metric: str, label: str) -> float:
    """The value of the pod's `/metrics` sample of `metric` carrying `label` (what its PodMonitor scrapes)."""
    with urllib.request.urlopen(f"{pod.url}/metrics", timeout=5) as resp:
        exposed = resp.read().decode()
    found = re.search(rf"^{metric}{{[^}}]*{label}[^}}]*}} (\S+)$", exposed, re.M)
    assert found, f"no {metric}{{{label}}} in the pod's /metrics:\n{exposed[:1500]}"
    return float(found.group(1))


def test_a_gguf_version_is_ready_in_the_cpu_image_and_answers_as_its_file_does_here(
    gguf_pod: PodRun, registered_versions: dict[str, int], packaged_variants: dict[str, Path]
) -> None:
    assert gguf_pod.ready_seconds <= gguf_pod.budget_seconds
    folder = packaged_variants[GGUF_VARIANT]
    assert runtime_of(folder) == LLAMA_CPP
    served = classify(gguf_pod.url, TEXTS)
    assert served["model_version"] == registered_versions[GGUF_VARIANT]
    here = load_classifier(folder, threads=policy().serving.ort_intra_op_threads).predict(TEXTS)
    # The same file on the same llama.cpp flags (requirements/llama-cpp.env): the image's build and this one agree.
    for theirs, ours in zip(served["predictions"], here, strict=True):
        assert theirs["label"] == ours.label
        for label, score in ours.scores.items():
            assert abs(theirs["scores"][label] - score) <= 1e-4, (label, theirs["scores"][label], score)
    version = registered_versions[GGUF_VARIANT]
    assert exposed_sample(gguf_pod, q.INFERENCES_TOTAL, f'model_version="{version}"') >= len(TEXTS)
    used, limit = memory_bytes(gguf_pod.container_id), memory_limit_bytes(gguf_pod)
    print(f"\n[gguf pod] ready {gguf_pod.ready_seconds:.1f} s, {used / 2**20:.0f} MiB of {limit / 2**20:.0f}")
    assert 0 < used < limit


@pytest.fixture
def generator_pod(local_env: None, registered_generator: int, image: BuiltImage) -> Iterator[PodRun]:
    run = play(registered_generator, image, generator_name())
    yield run
    down(run.kube_file)


def test_the_generate_model_runs_on_the_same_image_with_its_rendered_command(
    generator_pod: PodRun, registered_generator: int, tmp_path: Path
) -> None:
    assert container_of(generator_pod)["command"] == ["bentoml", "serve", contracts.GENERATE_SERVICE_REF]
    assert generator_pod.ready_seconds <= generator_pod.budget_seconds
    answer = generate(generator_pod.url, PROMPT, NEW_TOKENS)
    assert answer["model_name"] == generator_name() and answer["model_version"] == registered_generator
    assert answer["text"].strip() and 0 < answer["usage"]["completion_tokens"] <= NEW_TOKENS

    from services.model_runtime.generator import GgufGenerator
    from services.registry.client import download_version

    # Greedy decoding of the registered file, in this process: the pod's llama.cpp build writes the same words.
    folder = download_version(registered_generator, generator_name(), cache_root=tmp_path)
    g = policy().for_model(generator_name()).generation
    here = GgufGenerator.load(folder, context_tokens=g.context_tokens, threads=g.threads).generate(PROMPT, NEW_TOKENS)
    assert answer["text"] == here.text

    completion = exposed_sample(generator_pod, q.GENERATE_TOKENS_TOTAL, 'kind="completion"')
    assert completion >= answer["usage"]["completion_tokens"]
    state = podman("inspect", "--format", "{{.RestartCount}} {{.State.OOMKilled}}", generator_pod.container_id)
    assert state.split() == ["0", "false"]
    used, limit = memory_bytes(generator_pod.container_id), memory_limit_bytes(generator_pod)
    print(f"\n[generator pod] ready {generator_pod.ready_seconds:.1f} s, {used / 2**20:.0f} MiB of {limit / 2**20:.0f}")
    assert 0 < used < limit
