"""TLS at the cluster edge, as rendered: HTTPS listeners with the cert-manager certificate, HTTP only redirected,
the lowest TLS version and the load balancer scheme taken from the policy, every object schema-checked."""

from __future__ import annotations

import copy

import pytest

from core.policy import Policy
from modules.k8s import gateway
from modules.k8s.certificates import certificate, cluster_issuer
from modules.k8s.props import GatewayProps
from modules.k8s.render import render_all
from modules.k8s.validate import validate_manifest
from tests.modules.k8s.conftest import ALL_VARIANTS, by_kind, named, props


def _with(pol: Policy, **gateway_fields: object) -> Policy:
    return pol.model_copy(update={"gateway": pol.gateway.model_copy(update=gateway_fields)})


def test_the_listeners_serve_https_with_the_certificate_and_http_only_redirects(deployments):
    (gw,) = by_kind(deployments, "Gateway")
    listeners = {ln["name"]: ln for ln in gw["spec"]["listeners"]}
    secret = GatewayProps().tls_secret
    for name in (gateway.HTTPS_LISTENER, gateway.ENDPOINTS_LISTENER):
        assert listeners[name]["protocol"] == "HTTPS" and listeners[name]["port"] == 443
        assert listeners[name]["tls"]["mode"] == "Terminate"
        assert listeners[name]["tls"]["certificateRefs"] == [{"group": "", "kind": "Secret", "name": secret}]
    assert listeners[gateway.HTTP_LISTENER]["protocol"] == "HTTP" and "tls" not in listeners[gateway.HTTP_LISTENER]
    # The certificate cert-manager keeps in that Secret covers both HTTPS hostnames.
    (cert,) = by_kind(deployments, "Certificate")
    assert cert["spec"]["secretName"] == secret
    https_hosts = {listeners[n]["hostname"] for n in (gateway.HTTPS_LISTENER, gateway.ENDPOINTS_LISTENER)}
    assert set(cert["spec"]["dnsNames"]) == https_hosts


@pytest.mark.parametrize(("mode", "gpu"), ALL_VARIANTS)
def test_only_the_redirect_attaches_to_the_plain_http_listener(mode, gpu):
    rendered = render_all(props(mode, gpu))
    for route in by_kind(rendered, "HTTPRoute"):
        sections = {ref.get("sectionName") for ref in route["spec"]["parentRefs"]}
        assert None not in sections, f"{route['metadata']['name']} would attach to every listener, HTTP included"
        if gateway.HTTP_LISTENER in sections:
            assert route["metadata"]["name"] == gateway.redirect_route_name(GatewayProps())


def test_the_redirect_is_a_308_to_https_and_forwards_nothing(deployments):
    route = named(by_kind(deployments, "HTTPRoute"), gateway.redirect_route_name(GatewayProps()))
    (rule,) = route["spec"]["rules"]
    assert "backendRefs" not in rule
    (redirect,) = rule["filters"]
    assert redirect == {"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 308}}
    assert route["spec"]["parentRefs"][0]["sectionName"] == gateway.HTTP_LISTENER


def test_a_non_default_https_port_is_named_in_the_redirect(pol):
    route = gateway.https_redirect_route(GatewayProps(https_port=8443), "ns")
    assert route["spec"]["rules"][0]["filters"][0]["requestRedirect"]["port"] == 8443


@pytest.mark.parametrize("minimum", ["1.2", "1.3"])
def test_the_lowest_tls_version_is_the_policy_value(pol, minimum):
    ctp = gateway.client_traffic_policy(
        GatewayProps(), _with(pol, tls=pol.gateway.tls.model_copy(update={"min_version": minimum})), "ns"
    )
    assert ctp["spec"]["tls"] == {"minVersion": minimum}
    assert ctp["spec"]["targetRefs"][0]["kind"] == "Gateway"
    assert validate_manifest(ctp) == []


@pytest.mark.parametrize("seconds", [3, 10])
def test_a_client_that_stalls_is_dropped_after_the_policys_timeout(pol, seconds):
    ctp = gateway.client_traffic_policy(GatewayProps(), _with(pol, client_timeout_seconds=seconds), "ns")
    assert ctp["spec"]["timeout"] == {"http": {"requestReceivedTimeout": f"{seconds}s"}}
    assert validate_manifest(ctp) == []


@pytest.mark.parametrize(("scheme", "internal"), [("internet-facing", "false"), ("internal", "true")])
def test_the_load_balancer_scheme_is_the_policy_value(pol, scheme, internal):
    proxy = gateway.envoy_proxy(GatewayProps(), _with(pol, load_balancer_scheme=scheme), "ns")
    annotations = proxy["spec"]["provider"]["kubernetes"]["envoyService"]["annotations"]
    assert annotations[gateway.LB_SCHEME] == scheme
    assert annotations[gateway.LB_INTERNAL] == internal
    assert annotations[gateway.LB_TYPE] == "nlb"
    assert validate_manifest(proxy) == []


def test_the_gateway_uses_its_envoy_proxy(deployments, pol):
    (gw,) = by_kind(deployments, "Gateway")
    (proxy,) = by_kind(deployments, "EnvoyProxy")
    ref = gw["spec"]["infrastructure"]["parametersRef"]
    assert (ref["kind"], ref["name"]) == ("EnvoyProxy", proxy["metadata"]["name"])
    assert proxy["metadata"]["namespace"] == gw["metadata"]["namespace"]  # a Gateway's ref is namespace-local
    scheme = proxy["spec"]["provider"]["kubernetes"]["envoyService"]["annotations"][gateway.LB_SCHEME]
    assert scheme == pol.gateway.load_balancer_scheme


def test_the_certificate_renews_at_the_policy_margin_with_a_new_key(pol):
    cert = certificate(GatewayProps(), pol, "ns")
    assert cert["spec"]["renewBefore"] == f"{pol.gateway.tls.renew_before_days * 24}h"
    assert cert["spec"]["privateKey"]["rotationPolicy"] == "Always"
    assert cert["spec"]["issuerRef"] == {
        "group": "cert-manager.io",
        "kind": "ClusterIssuer",
        "name": "letsencrypt-dns01",
    }
    assert validate_manifest(cert) == []


def test_the_cluster_issuer_solves_dns01_in_one_hosted_zone():
    issuer = cluster_issuer(
        "letsencrypt-dns01",
        email="ops@example.com",
        region="us-east-1",
        hosted_zone_id="Z0EXAMPLE",
        dns_zone="example.com",
    )
    (solver,) = issuer["spec"]["acme"]["solvers"]
    assert solver["dns01"]["route53"] == {"region": "us-east-1", "hostedZoneID": "Z0EXAMPLE"}
    assert solver["selector"] == {"dnsZones": ["example.com"]}
    assert "accessKeyID" not in solver["dns01"]["route53"]  # IRSA, no static key
    assert validate_manifest(issuer) == []


@pytest.mark.parametrize(
    ("kind", "path", "bad", "where"),
    [
        ("ClientTrafficPolicy", ("tls", "minVersion"), "TLSv1.2", "spec.tls.minVersion"),
        ("HTTPRoute", None, 399, "spec.rules.0.filters.0.requestRedirect.statusCode"),
        ("Gateway", None, "Reencrypt", "spec.listeners.0.tls.mode"),
    ],
)
def test_wrong_tls_fields_are_refused_by_the_schemas(deployments, kind, path, bad, where):
    if kind == "HTTPRoute":
        obj = copy.deepcopy(named(by_kind(deployments, kind), gateway.redirect_route_name(GatewayProps())))
        obj["spec"]["rules"][0]["filters"][0]["requestRedirect"]["statusCode"] = bad
    elif kind == "Gateway":
        obj = copy.deepcopy(by_kind(deployments, kind)[0])
        obj["spec"]["listeners"][0]["tls"]["mode"] = bad
    else:
        obj = copy.deepcopy(by_kind(deployments, kind)[0])
        obj["spec"]["tls"]["minVersion"] = bad
    problems = validate_manifest(obj)
    assert any(p.path == where for p in problems), problems
