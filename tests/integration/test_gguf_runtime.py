"""A GGUF version of the classifier on the real local servers: registered and verified like any version, served
by llama.cpp behind the gateway with the same routes and metrics, judged by the gate against the ONNX reference."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from core import contracts, endpoints
from core.policy import policy
from infra.local import serving as ms
from infra.local import tls
from infra.local.paths import model_cache
from infra.local.secrets import api_key
from pipelines.gate import run_gate
from services.model_runtime.gguf import GgufTextClassifier
from services.model_runtime.runtimes import LLAMA_CPP, load_classifier, runtime_of
from services.registry import client as registry

pytestmark = pytest.mark.integration
VARIANT = "gguf-q8_0"
REFERENCE_ALIAS = "gguf-reference"  # this file's own ONNX reference: releases moving `champion` cannot interfere
TEXTS = ["A moving, beautifully acted film.", "Dull, long and badly written.", "It was fine, I suppose."]


@pytest.fixture(scope="module")
def gguf_version(registered_versions: dict[str, int]) -> int:
    return registered_versions[VARIANT]


@pytest.fixture(scope="module")
def served(gguf_version: int) -> Iterator[int]:
    """The GGUF version's server, live beside whatever serves, with no weight: reached by pinning only."""
    before = {s.version for s in ms.live_model_servers()}
    ms.start_model_server(gguf_version, wait=True)
    yield gguf_version
    if gguf_version not in before:
        ms.stop_model_server(gguf_version)


@pytest.fixture(scope="module")
def internal() -> Iterator[httpx.Client]:
    key = api_key(policy().gateway.internal_key())
    verify = tls.client_context()
    with httpx.Client(base_url=endpoints.gateway_url(), headers={"X-API-Key": key}, timeout=30, verify=verify) as c:
        yield c


def test_a_gguf_version_is_registered_verified_and_loads_on_llama_cpp(gguf_version: int) -> None:
    version = registry.get_version(gguf_version)
    model_dir = registry.download_version(
        gguf_version, cache_root=model_cache()
    )  # verifies the signed manifest of every file
    assert runtime_of(model_dir) == LLAMA_CPP and not (model_dir / "model.onnx").exists()
    assert isinstance(load_classifier(model_dir), GgufTextClassifier)
    lineage = json.loads((model_dir / "lineage.json").read_text())
    assert lineage["runtime"] == LLAMA_CPP and lineage["quantisation"] == VARIANT
    assert version.tags.get("quantisation", lineage["quantisation"]) == VARIANT


def test_a_gguf_version_serves_behind_the_gateway_as_its_package_answers(served: int, internal: httpx.Client) -> None:
    expected = load_classifier(registry.download_version(served, cache_root=model_cache())).predict(TEXTS)
    response = internal.post("/classify", json={"texts": TEXTS}, headers={contracts.PIN_HEADER: str(served)})
    assert response.status_code == 200, response.text
    assert response.headers[contracts.VERSION_HEADER] == str(served)
    answers = response.json()["predictions"]
    assert [a["label"] for a in answers] == [p.label for p in expected]
    assert all(abs(a["confidence"] - p.confidence) < 1e-5 for a, p in zip(answers, expected, strict=True))
    # The platform's metrics, labelled with the version, from the llama.cpp-backed server as from any other.
    (server,) = [s for s in ms.live_model_servers() if s.version == served]
    metrics = httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=10).text
    assert f'model_version="{served}"' in metrics


def test_bad_input_to_a_gguf_version_is_a_clear_4xx(served: int, internal: httpx.Client) -> None:
    response = internal.post("/classify", json={"texts": []}, headers={contracts.PIN_HEADER: str(served)})
    assert 400 <= response.status_code < 500 and "texts" in response.text


def test_the_gate_judges_a_gguf_version_against_the_onnx_reference(
    registered_versions: dict[str, int], gguf_version: int
) -> None:
    registry.set_alias(REFERENCE_ALIAS, registered_versions["fp32"])
    report = run_gate(gguf_version, champion_alias=REFERENCE_ALIAS)
    packaged = json.loads(
        (registry.download_version(gguf_version, cache_root=model_cache()) / "metrics.json").read_text()
    )
    # Measured by the gate on the llama.cpp runtime, not copied from the package: the same data, the same numbers.
    assert report.candidate_metrics["accuracy"] == pytest.approx(packaged["validation"]["accuracy"], abs=1e-9)
    assert report.champion_version == registered_versions["fp32"]
    assert report.passed, [c for c in report.failures()]
