"""TLS at the local gateway, on the real nginx: HTTPS verified with the local CA, nothing else accepted.

Allowed: a client holding the CA bundle gets its answer over HTTPS (TLS 1.2 and 1.3). Refused: a client that trusts
only the public roots fails verification; a TLS 1.1 handshake gets nginx's protocol-version alert; plain HTTP (on
the HTTP port or the HTTPS one) gets a 308 to HTTPS and never reaches a model server.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

import httpx
import pytest

from core import contracts, endpoints
from core.policy import policy
from infra.local import serving, tls
from infra.local.secrets import api_key

pytestmark = pytest.mark.integration

BODY = {"texts": ["A moving, beautifully acted film."]}


@pytest.fixture(scope="module")
def live(registered_versions: dict[str, int]) -> Iterator[int]:
    """One version serving behind the gateway (the champion); stopped again if this module started it."""
    version = registered_versions["fp32"]
    started = version not in {s.version for s in serving.live_model_servers()}
    serving.start_model_server(version, wait=True)
    if not serving.current_weights():
        serving.set_weights({version: 100})
    yield version
    if started and serving.current_weights().get(version, 0) == 0:
        serving.stop_model_server(version)


def headers() -> dict[str, str]:
    return {contracts.API_KEY_HEADER: api_key("demo")}


def inferences() -> float:
    """Requests every live model server has classified so far (their own counters)."""
    total = 0.0
    for server in serving.live_model_servers():
        for line in httpx.get(f"{server.url}/metrics", timeout=10).text.splitlines():
            if line.startswith("mlp_model_inferences_total{"):
                total += float(line.rsplit(" ", 1)[1])
    return total


def handshake(context: ssl.SSLContext) -> str:
    """The negotiated TLS version of a bare handshake with the gateway's HTTPS port."""
    port = policy().ports.gateway
    with (
        socket.create_connection((endpoints.HOST, port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=endpoints.HOST) as conn,
    ):
        return str(conn.version())


def test_https_with_the_ca_bundle_answers(live: int) -> None:
    with httpx.Client(base_url=endpoints.gateway_url(), verify=tls.client_context(), timeout=30) as client:
        resp = client.post(contracts.PREDICT_ROUTE, json=BODY, headers=headers())
    assert resp.status_code == 200, resp.text
    # Whichever version the split sends it to (other modules may have set the weights): one that takes traffic.
    assert resp.json()["model_version"] in {v for v, w in serving.current_weights().items() if w > 0}
    assert resp.url.scheme == "https"


def test_a_client_without_the_local_ca_fails_verification(live: int) -> None:
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.post(f"{endpoints.gateway_url()}{contracts.PREDICT_ROUTE}", json=BODY, headers=headers(), timeout=10)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_tls_1_2_and_1_3_are_accepted(live: int, version: ssl.TLSVersion) -> None:
    context = tls.client_context()
    context.minimum_version = context.maximum_version = version
    assert handshake(context) == version.name.replace("v1_", "v1.")


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_a_tls_1_1_handshake_is_refused_by_the_server(live: int) -> None:
    context = tls.client_context()
    # OpenSSL 3 will offer TLS 1.1 only at security level 0; the server must be the one that says no.
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError) as refused:
        handshake(context)
    # The server's protocol_version alert, not a client that could not offer TLS 1.1 at all.
    assert refused.value.reason == "TLSV1_ALERT_PROTOCOL_VERSION", refused.value


@pytest.mark.parametrize("url", [endpoints.gateway_http_url, lambda: endpoints.gateway_url().replace("https", "http")])
def test_plain_http_gets_a_308_to_https_and_reaches_no_model_server(live: int, url: object) -> None:
    base = url()  # type: ignore[operator]
    before = inferences()
    resp = httpx.post(f"{base}{contracts.PREDICT_ROUTE}?a=1", json=BODY, headers=headers(), timeout=10)
    assert resp.status_code == 308
    assert resp.headers["location"] == f"{endpoints.gateway_url()}{contracts.PREDICT_ROUTE}?a=1"
    assert inferences() == before
    # A client that follows it re-sends the same POST over TLS (308 keeps the method and body).
    with httpx.Client(verify=tls.client_context(), follow_redirects=True, timeout=30) as client:
        followed = client.post(f"{base}{contracts.PREDICT_ROUTE}", json=BODY, headers=headers())
    assert followed.status_code == 200, followed.text
    assert followed.url.scheme == "https"
    assert inferences() > before
