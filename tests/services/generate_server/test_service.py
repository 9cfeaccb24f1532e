"""The generate server and the generate gate against the real model: Gemma 3 270M (GGUF Q4_K_M) on llama.cpp,
packaged from PyPI by its recipe, served by `bentoml serve` exactly as the local runtime starts it."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core import contracts
from core.policy import policy
from pipelines.generation_gate import judge, run_generation_gate
from pipelines.packaging.generator import package_generator

REPO = Path(__file__).resolve().parents[3]
MODELS = REPO / "build" / "models"
pytestmark = pytest.mark.slow


def generator_name() -> str:
    (name,) = [m.name for m in policy().models if m.task == "generate"]
    return name


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return package_generator(MODELS / generator_name(), MODELS / ".cache", progress=lambda _: None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "MLP_MODEL_NAME": generator_name(),
        "MLP_MODEL_DIR": str(model_dir),
        "MLP_MODEL_VERSION": "7",
        "BENTOML_HOME": str(tmp_path_factory.mktemp("bentoml")),
        "BENTOML_DO_NOT_TRACK": "True",
    }
    bentoml = Path(sys.executable).parent / "bentoml"
    cmd = [str(bentoml), "serve", "services.generate_server.service:GenerateService", "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                log = proc.stderr.read()[-2000:] if proc.stderr else ""
                pytest.fail(f"the generate server exited {proc.returncode}: {log}")
            try:
                if httpx.get(f"{url}{contracts.READINESS_ROUTE}", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("the generate server was not ready within 120 s")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def generate(url: str, **body: object) -> httpx.Response:
    return httpx.post(f"{url}/generate", json=body, timeout=60)


def test_it_completes_greedily_within_the_tokens_asked_for(server: str) -> None:
    first = generate(server, prompt="The capital city of France is", max_tokens=12)
    assert first.status_code == 200, first.text
    out = first.json()
    assert first.headers[contracts.VERSION_HEADER] == "7"
    assert (out["model_name"], out["model_version"]) == (generator_name(), 7)
    assert out["text"].strip() and 1 <= out["usage"]["completion_tokens"] <= 12
    if out["finish_reason"] == "length":
        assert out["usage"]["completion_tokens"] == 12
    assert out["usage"]["prompt_tokens"] >= 6 and out["ttft_ms"] > 0 and out["tokens_per_second"] > 0
    # Greedy decoding: the same prompt gets the same answer, so a canary can compare versions answer by answer.
    assert generate(server, prompt="The capital city of France is", max_tokens=12).json()["text"] == out["text"]


def test_no_max_tokens_means_the_policy_default(server: str) -> None:
    out = generate(server, prompt="Once upon a time").json()
    assert out["usage"]["completion_tokens"] <= policy().for_model(generator_name()).generation.default_new_tokens


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"prompt": "   "}, "prompt is empty"),
        ({"prompt": "Hello", "max_tokens": 0}, "max_tokens is 0"),
        ({"prompt": "Hello", "max_tokens": 100000}, "max_tokens is 100000"),
        ({"prompt": "x" * 100000}, "characters, at most"),
        ({"prompt": "Hello", "temperature": 0.7}, "temperature"),
        ({"text": "Hello"}, "prompt"),
    ],
)
def test_bad_requests_get_a_400_naming_what_was_wrong(server: str, body: dict[str, object], reason: str) -> None:
    resp = generate(server, **body)
    assert resp.status_code == 400 and reason in resp.text


def test_a_prompt_that_leaves_no_room_for_the_answer_is_a_400(server: str) -> None:
    g = policy().for_model(generator_name()).generation
    prompt = ("word " * g.max_prompt_chars)[: g.max_prompt_chars - 1]  # within the characters, not the context
    resp = generate(server, prompt=prompt, max_tokens=g.max_new_tokens)
    assert resp.status_code == 400 and "context" in resp.text
    assert generate(server, prompt="Still answering after that:", max_tokens=3).status_code == 200


def test_metrics_count_tokens_and_time_the_first_token_at_its_objective(server: str) -> None:
    before = _tokens(httpx.get(f"{server}/metrics").text)
    out = generate(server, prompt="Water boils at", max_tokens=8).json()
    text = httpx.get(f"{server}/metrics").text
    after = _tokens(text)
    assert after["prompt"] - before["prompt"] == out["usage"]["prompt_tokens"]
    assert after["completion"] - before["completion"] == out["usage"]["completion_tokens"]
    ttft_slo = policy().for_model(generator_name()).generation.ttft_p95_ms / 1000
    labels = f'model_name="{generator_name()}",model_version="7"'
    assert f'mlp_generate_time_to_first_token_seconds_bucket{{le="{ttft_slo}",{labels}}}' in text
    assert f"mlp_generate_inter_token_seconds_count{{{labels}}}" in text
    assert 'endpoint="/generate"' in text  # BentoML's request metrics, as the classifier's servers label them


def _tokens(metrics: str) -> dict[str, float]:
    found = dict.fromkeys(("prompt", "completion"), 0.0)
    for kind, value in re.findall(r'mlp_generate_tokens_total\{kind="(\w+)",[^}]*\} ([0-9.e+]+)', metrics):
        found[kind] = float(value)
    return found


def test_the_gate_finds_the_packaged_model_well_above_chance_and_prices_it(model_dir: Path, tmp_path: Path) -> None:
    p = policy()
    report = run_generation_gate(model_dir, generator_name(), p, tmp_path)
    m = report.measures
    # Quality does not depend on the machine's load; speed does (llama.cpp's threads wait for each other when another
    # process holds a core, and `make test` runs the integration suite beside this), so speed is asserted measured
    # here and judged in tests/pipelines/test_generation_gate.py.
    quality = report.criteria[0]
    assert quality.name.startswith("choice accuracy") and quality.passed, quality
    assert m.choice_accuracy >= p.generation.gate_min_choice_accuracy > 2 * m.chance
    assert report.passed == all(c.passed for c in report.criteria) and len(report.criteria) == 3
    assert m.tokens_per_second > 0 and 0 < m.ttft_p50_ms <= m.ttft_p95_ms
    assert report.cost["usd_per_million_tokens"] > 0 and report.cost["usd_per_1k_requests"] > 0
    assert (tmp_path / f"gate-{generator_name()}-{report.form}.json").is_file()
    # The same measurements against a policy stricter on decode speed only (its TTFT limit set above what was
    # measured, since a loaded machine can miss the real one): the gate names the one criterion the model misses.
    strict_speed = {"gate_min_tokens_per_second": 10 * m.tokens_per_second, "gate_max_ttft_p95_ms": 2 * m.ttft_p95_ms}
    strict = p.model_copy(update={"generation": p.generation.model_copy(update=strict_speed)})
    assert [c.name for c in judge(m, strict) if not c.passed] == ["decode speed (tokens/s, median)"]
