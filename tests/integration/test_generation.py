"""The generative catalogue model in the local runtime: `mlp serve generator start` runs its server under
supervisord, the gateway routes `/v1/models/<model>/generate` to it with the same keys and limits as prediction,
Prometheus scrapes it with its model's labels, and `stop` takes the route away before the server."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from core import contracts, endpoints
from core.policy import policy
from infra.local import generators, tls
from infra.local.prometheus import query
from infra.local.secrets import api_key
from infra.local.supervisor import program_state
from tests.integration.conftest import mlp

pytestmark = pytest.mark.integration


def generator_name() -> str:
    (name,) = [m.name for m in policy().models if m.task == "generate"]
    return name


@pytest.fixture(scope="module")
def served(local_env: None) -> Iterator[str]:
    mlp("model", "package-generator", timeout=900)
    started = mlp("serve", "generator", "start", "--model", generator_name(), timeout=300)
    assert contracts.model_route(generator_name(), "generate") in started.stdout
    yield contracts.model_route(generator_name(), "generate")
    if generators.live():
        mlp("serve", "generator", "stop", "--model", generator_name(), check=False)


def gateway(key: str | None) -> httpx.Client:
    headers = {contracts.API_KEY_HEADER: api_key(key)} if key else {}
    return httpx.Client(base_url=endpoints.gateway_url(), headers=headers, timeout=60, verify=tls.client_context())


def test_the_gateway_answers_the_generate_route_with_the_keys_checks(served: str) -> None:
    with gateway("demo") as client:
        resp = client.post(served, json={"prompt": "The largest ocean on Earth is the", "max_tokens": 8})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["model_name"] == generator_name() and body["text"].strip()
        assert resp.headers[contracts.VERSION_HEADER] == "1"
        bad = client.post(served, json={"prompt": "", "max_tokens": 8})
        assert bad.status_code == 400 and "prompt is empty" in bad.text  # the server's reason reaches the client
        assert client.get(served).status_code == 405
    with gateway(None) as anonymous:
        assert anonymous.post(served, json={"prompt": "Hi"}).status_code == 401
    with gateway("limited") as limited:  # the key's own rate limit applies to this route too
        codes = [limited.post(served, json={"prompt": "Hi", "max_tokens": 1}).status_code for _ in range(8)]
        assert 429 in codes and codes[0] == 200


def test_prometheus_scrapes_it_with_its_models_labels(served: str) -> None:
    name = generator_name()
    with gateway("demo") as client:
        assert client.post(served, json={"prompt": "Snow is", "max_tokens": 4}).status_code == 200
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        up = query(f'up{{model_name="{name}"}}')
        tokens = query(f'mlp_generate_tokens_total{{model_name="{name}",kind="completion"}}')
        if up and tokens and float(up[0]["value"][1]) == 1 and float(tokens[0]["value"][1]) > 0:
            break
        time.sleep(2)
    else:
        pytest.fail(f"Prometheus has no scraped series of {name}: up={up}, tokens={tokens}")
    assert up[0]["metric"]["model_version"] == "1"


def test_stop_takes_the_route_away_and_stops_the_server(served: str) -> None:
    name = generator_name()
    mlp("serve", "generator", "stop", "--model", name)
    with gateway("demo") as client:
        assert client.post(served, json={"prompt": "Hi"}).status_code == 404
    assert program_state(generators.program_name(name)) == "ABSENT"
    assert not generators.live()
    again = mlp("serve", "generator", "stop", "--model", name, check=False)
    assert again.returncode == 1 and "no generate server" in again.stderr
