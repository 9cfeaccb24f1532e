from __future__ import annotations

import pytest

from core import contracts
from core.policy import ApiKey
from modules.k8s import gateway
from tests.modules.k8s.conftest import IDLE_MODEL, MODEL, WEIGHTS, by_kind, catalogue_policy, named


def _default_rule(route):
    return next(r for r in route["spec"]["rules"] if "headers" not in r["matches"][0])


def test_weighted_rule_carries_the_given_weights(deployments):
    route = named(by_kind(deployments, "HTTPRoute"), MODEL)
    refs = _default_rule(route)["backendRefs"]
    assert {r["name"]: r["weight"] for r in refs} == {f"{MODEL}-v{v}": w for v, w in WEIGHTS.items()}
    assert sum(r["weight"] for r in refs) == 100
    assert all(r["port"] == 3000 for r in refs)


@pytest.mark.parametrize("mode", ["deployments", "rollout"])
def test_pins_answer_on_the_internal_host_only_on_the_pinned_route(mode, deployments, rollout):
    rendered = {"deployments": deployments, "rollout": rollout}[mode]
    public = named(by_kind(rendered, "HTTPRoute"), MODEL)
    assert not [r for r in public["spec"]["rules"] if "headers" in r["matches"][0]], "no pin on the public host"
    pins = named(by_kind(rendered, "HTTPRoute"), gateway.pin_route_name(MODEL))
    (host,) = pins["spec"]["hostnames"]
    assert host == f"internal.{public['spec']['hostnames'][0]}" != public["spec"]["hostnames"][0]
    for rule in pins["spec"]["rules"]:
        (header,) = rule["matches"][0]["headers"]
        assert header["name"] == contracts.PIN_HEADER
        if mode == "deployments":
            assert rule["backendRefs"][0]["name"] == f"{MODEL}-v{header['value']}"
        (rewrite,) = rule["filters"]
        assert rewrite["urlRewrite"]["path"]["replaceFullPath"] == contracts.PINNED_PREDICT_ROUTE
    if mode == "deployments":
        assert len(pins["spec"]["rules"]) == len(WEIGHTS)


def test_only_the_prediction_routes_and_method_are_routed(deployments):
    """The catalogue route, and `/classify` for the default model; both reach the server's own route."""
    wanted = {contracts.model_route(MODEL, "classify"), contracts.PREDICT_ROUTE}
    for route in (named(by_kind(deployments, "HTTPRoute"), n) for n in (MODEL, gateway.pin_route_name(MODEL))):
        for rule in route["spec"]["rules"]:
            assert {m["path"]["type"] for m in rule["matches"]} == {"Exact"}
            assert {m["path"]["value"] for m in rule["matches"]} == wanted
            assert {m["method"] for m in rule["matches"]} == {"POST"}
            (rewrite,) = rule["filters"]
            assert rewrite["urlRewrite"]["path"]["replaceFullPath"] in (
                contracts.PREDICT_ROUTE,
                contracts.PINNED_PREDICT_ROUTE,
            )


def test_the_pin_route_admits_internal_keys_only(deployments, pol):
    assert any(k.internal for k in pol.gateway.api_keys) and not all(k.internal for k in pol.gateway.api_keys)
    policies = {sp["spec"]["targetRefs"][0]["kind"]: sp for sp in by_kind(deployments, "SecurityPolicy")}
    route_level, gateway_level = policies["HTTPRoute"], policies["Gateway"]
    assert route_level["spec"]["targetRefs"][0]["name"] == gateway.pin_route_name(MODEL)
    secrets = {sp["spec"]["apiKeyAuth"]["credentialRefs"][0]["name"] for sp in (route_level, gateway_level)}
    assert secrets == {"mlp-api-keys-internal", "mlp-api-keys"}


def test_rollout_mode_routes_stable_and_canary_services(rollout):
    route = named(by_kind(rollout, "HTTPRoute"), MODEL)
    refs = {r["name"]: r["weight"] for r in _default_rule(route)["backendRefs"]}
    assert refs == {f"{MODEL}-stable": 100, f"{MODEL}-canary": 0}


def gateway_security_policy(rendered):
    (sp,) = [p for p in by_kind(rendered, "SecurityPolicy") if p["spec"]["targetRefs"][0]["kind"] == "Gateway"]
    return sp


def test_security_policy_takes_keys_from_a_secret_and_the_x_api_key_header(deployments):
    sp = gateway_security_policy(deployments)
    auth = sp["spec"]["apiKeyAuth"]
    assert auth["credentialRefs"][0]["kind"] == "Secret"
    assert auth["extractFrom"][0]["headers"] == ["X-API-Key"]
    assert auth["sanitize"] is True  # the key itself never reaches the model server


def test_rate_limit_rule_per_policy_key(deployments, pol):
    btp = named(by_kind(deployments, "BackendTrafficPolicy"), f"{MODEL}-traffic")
    rules = btp["spec"]["rateLimit"]["local"]["rules"]
    sp = gateway_security_policy(deployments)
    header = sp["spec"]["apiKeyAuth"]["forwardClientIDHeader"]
    by_name = {r["clientSelectors"][0]["headers"][0]["value"]: r for r in rules}
    assert set(by_name) == {k.name for k in pol.gateway.api_keys}
    for key in pol.gateway.api_keys:
        rule = by_name[key.name]
        assert rule["clientSelectors"][0]["headers"][0]["name"] == header
        per_second = {"Second": 1, "Minute": 60, "Hour": 3600, "Day": 86400}[rule["limit"]["unit"]]
        assert rule["limit"]["requests"] / per_second == pytest.approx(key.rate_per_second)
    assert btp["spec"]["requestBuffer"]["limit"] == str(pol.gateway.max_request_bytes)
    assert "connect-failure" in btp["spec"]["retry"]["retryOn"]["triggers"]


@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        (2, {"requests": 2, "unit": "Second"}),
        (0.5, {"requests": 30, "unit": "Minute"}),
        (1000, {"requests": 1000, "unit": "Second"}),
    ],
)
def test_fractional_rates_move_to_a_longer_unit(rate, expected):
    assert gateway.rate_limit(ApiKey(name="k1", rate_per_second=rate, burst=1, internal=False)) == expected


def test_a_non_critical_model_is_routed_to_the_keda_interceptor(scale_to_zero, deployments):
    pol = catalogue_policy().for_model(IDLE_MODEL)
    route = named(by_kind(scale_to_zero, "HTTPRoute"), IDLE_MODEL)
    assert route["spec"]["parentRefs"][0]["sectionName"] == gateway.HTTPS_LISTENER
    (rule,) = route["spec"]["rules"]
    # Its catalogue route only: `/classify` belongs to the default model.
    assert [m["path"]["value"] for m in rule["matches"]] == [contracts.model_route(IDLE_MODEL, "classify")]
    (rewrite,) = rule["filters"]
    interceptor = named(by_kind(scale_to_zero, "InterceptorRoute"), IDLE_MODEL)
    # The Host the interceptor routes by is the one the gateway rewrites to; the path becomes the server's.
    assert interceptor["spec"]["rules"][0]["hosts"] == [rewrite["urlRewrite"]["hostname"]]
    assert rewrite["urlRewrite"]["path"]["replaceFullPath"] == "/classify"
    (backend,) = rule["backendRefs"]
    assert backend == {
        "group": "",
        "kind": "Service",
        "name": "keda-add-ons-http-interceptor-proxy",
        "namespace": "keda",
        "port": 8080,
    }
    cold = pol.scaling.cold_start_timeout_seconds + pol.gateway.upstream_timeout_seconds
    assert rule["timeouts"]["request"] == f"{cold:g}s"
    # Same keys and limits as a critical model's route, with the cold-start timeout.
    btp = named(by_kind(scale_to_zero, "BackendTrafficPolicy"), f"{IDLE_MODEL}-traffic")
    main = named(by_kind(deployments, "BackendTrafficPolicy"), f"{MODEL}-traffic")
    assert btp["spec"]["targetRefs"][0]["name"] == IDLE_MODEL
    assert btp["spec"]["rateLimit"] == main["spec"]["rateLimit"]
    assert btp["spec"]["timeout"]["http"]["requestTimeout"] == f"{cold:g}s"
    sp = gateway_security_policy(scale_to_zero)
    assert sp["spec"]["targetRefs"][0]["kind"] == "Gateway"  # API keys cover every listener
    assert not [r for r in by_kind(scale_to_zero, "HTTPRoute") if r["metadata"]["name"].endswith("-pins")]


def test_the_reference_grant_allows_exactly_the_interceptor_service(scale_to_zero):
    (grant,) = by_kind(scale_to_zero, "ReferenceGrant")
    (route,) = [
        r
        for r in by_kind(scale_to_zero, "HTTPRoute")
        if r["spec"]["rules"][0].get("backendRefs", [{}])[0].get("namespace")
    ]
    backend = route["spec"]["rules"][0]["backendRefs"][0]
    assert grant["metadata"]["namespace"] == backend["namespace"]
    assert grant["spec"]["from"] == [
        {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": route["metadata"]["namespace"]}
    ]
    assert grant["spec"]["to"] == [{"group": "", "kind": "Service", "name": backend["name"]}]
    assert "model_name" not in grant["metadata"]["labels"]  # one grant, shared by every non-critical model


def test_a_critical_model_renders_no_interceptor_route_or_grant(deployments, rollout):
    for rendered in (deployments, rollout):
        assert not by_kind(rendered, "ReferenceGrant")
        for route in by_kind(rendered, "HTTPRoute"):
            for rule in route["spec"]["rules"]:
                assert all(b.get("namespace") is None for b in rule.get("backendRefs", []))
