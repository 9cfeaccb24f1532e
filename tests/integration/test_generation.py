"""The generative catalogue model in the local runtime: packaged, gated and registered as a signed version;
`mlp serve generator start <version>` fetches and verifies it and runs its server under supervisord; the gateway
routes `/v1/models/<model>/generate` to it with the same keys and limits as prediction; Prometheus scrapes it with its
model's labels; `stop` takes the route away before the server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from core import contracts, dashboards, endpoints
from core.policy import REPO_ROOT, policy
from infra.local import generators, tls
from infra.local.prometheus import query
from infra.local.secrets import api_key
from infra.local.supervisor import program_state
from tests.integration.conftest import generator_name, mlp

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def registered(registered_generator: int) -> int:
    return registered_generator


@pytest.fixture(scope="module")
def served(registered: int) -> Iterator[str]:
    started = mlp("serve", "generator", "start", str(registered), "--model", generator_name(), timeout=300)
    assert contracts.model_route(generator_name(), "generate") in started.stdout
    yield contracts.model_route(generator_name(), "generate")
    if generator_name() in {s.model for s in generators.live()}:
        mlp("serve", "generator", "stop", "--model", generator_name(), check=False)


def gateway(key: str | None) -> httpx.Client:
    headers = {contracts.API_KEY_HEADER: api_key(key)} if key else {}
    return httpx.Client(base_url=endpoints.gateway_url(), headers=headers, timeout=60, verify=tls.client_context())


def test_the_gateway_answers_the_generate_route_with_the_keys_checks(served: str, registered: int) -> None:
    with gateway("demo") as client:
        resp = client.post(served, json={"prompt": "The largest ocean on Earth is the", "max_tokens": 8})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["model_name"] == generator_name() and body["text"].strip()
        assert resp.headers[contracts.VERSION_HEADER] == str(registered)
        bad = client.post(served, json={"prompt": "", "max_tokens": 8})
        assert bad.status_code == 400 and "prompt is empty" in bad.text  # the server's reason reaches the client
        assert client.get(served).status_code == 405
    cli = mlp("serve", "generate", "The largest ocean on Earth is the", "--max-tokens", "8")
    assert f"{generator_name()} v{registered}: " in cli.stdout and "tokens/s" in cli.stdout
    with gateway(None) as anonymous:
        assert anonymous.post(served, json={"prompt": "Hi"}).status_code == 401
    with gateway("limited") as limited:  # the key's own rate limit applies to this route too
        codes = [limited.post(served, json={"prompt": "Hi", "max_tokens": 1}).status_code for _ in range(8)]
        assert 429 in codes and codes[0] == 200


def test_prometheus_scrapes_it_with_its_models_labels(served: str, registered: int) -> None:
    name = generator_name()
    with gateway("demo") as client:  # requests over a few scrapes: rates and quantiles need two samples apart
        for _ in range(8):
            assert client.post(served, json={"prompt": "Snow is", "max_tokens": 4}).status_code == 200
            time.sleep(policy().alerting.local_scrape_interval_seconds / 2)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        up = query(f'up{{model_name="{name}"}}')
        tokens = query(f'mlp_generate_tokens_total{{model_name="{name}",kind="completion"}}')
        if up and tokens and float(up[0]["value"][1]) == 1 and float(tokens[0]["value"][1]) > 0:
            break
        time.sleep(2)
    else:
        pytest.fail(f"Prometheus has no scraped series of {name}: up={up}, tokens={tokens}")
    assert up[0]["metric"]["model_version"] == str(registered)


def test_the_dashboards_generation_panels_have_data(served: str) -> None:
    """The generate model's panels (`generate_only`: no data unless a generate server serves) after the requests
    above; each query as Grafana runs it with every model and version selected."""
    specs = [spec for spec in dashboards.panels() if spec.generate_only]
    assert specs
    empty = []
    for spec in specs:
        for panel_query in spec.queries:
            expr = dashboards.local_expr(panel_query.expr)
            deadline = time.monotonic() + 90
            while not query(expr) and time.monotonic() < deadline:
                time.sleep(3)
            if not query(expr):
                empty.append(f"{spec.title}: {expr}")
    assert not empty, "generation panels without data:\n" + "\n".join(empty)


def test_stop_takes_the_route_away_and_stops_the_server(served: str) -> None:
    name = generator_name()
    mlp("serve", "generator", "stop", "--model", name)
    with gateway("demo") as client:
        assert client.post(served, json={"prompt": "Hi"}).status_code == 404
    assert program_state(generators.program_name(name)) == "ABSENT"
    assert name not in {s.model for s in generators.live()}  # other catalogue servers (embed, rag) may run
    again = mlp("serve", "generator", "stop", "--model", name, check=False)
    assert again.returncode == 1 and f"no server of {name} is running" in again.stderr


def test_the_registered_version_holds_the_signed_file_and_its_gate(registered: int) -> None:
    from services.registry.client import mlflow_client

    version = mlflow_client().get_model_version(generator_name(), str(registered))
    tags = version.tags
    config = json.loads((REPO_ROOT / "build" / "models" / generator_name() / "generator.json").read_text())
    assert tags["sha256"] == config["sha256"] and tags["gate"] == "passed"
    assert float(tags["gate_choice_accuracy"]) >= policy().generation.gate_min_choice_accuracy
    assert tags["artifact_manifest_sha256"]  # signed like every version the servers accept
