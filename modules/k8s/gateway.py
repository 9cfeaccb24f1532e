"""Envoy Gateway in front of the model servers: Gateway, HTTPRoute (weighted split + version pin), SecurityPolicy
(API keys) and BackendTrafficPolicy (per-key rate limits, retries, timeout, request body limit).

Non-critical endpoints (scaled to zero) answer on `<endpoint>.<hostname>`: their HTTPRoute sends them to the KEDA HTTP
interceptor (another namespace, so a ReferenceGrant there allows it), behind the same API keys and rate limits, with
a timeout long enough for a cold start.

The same behaviour as the local nginx gateway (infra/local/nginx.py), from the same policy section.
"""

from __future__ import annotations

from typing import Any

from core import contracts
from core.policy import ApiKey, Policy
from modules.k8s import common as c
from modules.k8s.props import GatewayProps
from modules.k8s.scaling import (
    INTERCEPTOR_PORT,
    INTERCEPTOR_SERVICE,
    KEDA_HTTP_NAMESPACE,
    cold_start_request_seconds,
    endpoint_host,
    endpoint_name,
)
from modules.k8s.versions import ENVOY_GATEWAY_API, GATEWAY_API, GATEWAY_API_BETA

CONTROLLER = "gateway.envoyproxy.io/gatewayclass-controller"
ENDPOINTS_LISTENER = "endpoints"
# Envoy local rate limits take whole requests per unit; the smallest unit that keeps the policy's rate exact wins.
UNITS = (("Second", 1), ("Minute", 60), ("Hour", 3600), ("Day", 86400))


def route_name(model_name: str) -> str:
    return model_name


def gateway_class(props: GatewayProps) -> c.Manifest:
    meta = c.metadata(props.gateway_class, None, {"app.kubernetes.io/part-of": c.PART_OF})
    return c.manifest(GATEWAY_API, "GatewayClass", meta, spec={"controllerName": CONTROLLER})


def gateway(props: GatewayProps, namespace: str) -> c.Manifest:
    meta = c.metadata(props.gateway_name, namespace, {"app.kubernetes.io/part-of": c.PART_OF})
    return c.manifest(
        GATEWAY_API,
        "Gateway",
        meta,
        spec={
            "gatewayClassName": props.gateway_class,
            "listeners": [
                {
                    "name": "http",
                    "protocol": "HTTP",
                    "port": props.listener_port,
                    "hostname": props.hostname,
                    "allowedRoutes": {"namespaces": {"from": "Same"}},
                },
                {
                    # The non-critical endpoints, one host each (`<endpoint>.<hostname>`).
                    "name": ENDPOINTS_LISTENER,
                    "protocol": "HTTP",
                    "port": props.listener_port,
                    "hostname": f"*.{props.hostname}",
                    "allowedRoutes": {"namespaces": {"from": "Same"}},
                },
            ],
        },
    )


def _backend(name: str, weight: int) -> dict[str, Any]:
    return {"group": "", "kind": "Service", "name": name, "port": c.HTTP_PORT, "weight": weight}


def _predict_match(headers: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """Only the prediction route and method are routed; anything else (the servers' /metrics, /docs) is a 404."""
    match: dict[str, Any] = {"path": {"type": "Exact", "value": contracts.PREDICT_ROUTE}, "method": "POST"}
    if headers:
        match["headers"] = headers
    return match


def _pin_rule(header: str, version: int, service: str) -> dict[str, Any]:
    """A pinned request reaches its version's Service on the server's pinned route, which the canary analysis and
    the SLO rules (selecting the prediction route) do not count."""
    return {
        "matches": [_predict_match([{"type": "Exact", "name": header, "value": str(version)}])],
        "filters": [
            {
                "type": "URLRewrite",
                "urlRewrite": {"path": {"type": "ReplaceFullPath", "replaceFullPath": contracts.PINNED_PREDICT_ROUTE}},
            }
        ],
        "backendRefs": [_backend(service, 1)],
    }


def http_route(
    props: GatewayProps,
    policy: Policy,
    model_name: str,
    namespace: str,
    weights: dict[str, int],
) -> c.Manifest:
    """The public route: `weights` (Service name -> weight). A pin header here is not a match: pins answer only on
    the internal host (`pin_route`)."""
    rule = {
        "matches": [_predict_match()],
        "backendRefs": [_backend(name, w) for name, w in weights.items()],
        "timeouts": {"request": f"{policy.gateway.upstream_timeout_seconds:g}s"},
    }
    return _http_route(props, route_name(model_name), model_name, namespace, [rule], props.hostname)


def _http_route(
    props: GatewayProps, name: str, model_name: str, namespace: str, rules: list[dict[str, Any]], hostname: str
) -> c.Manifest:
    """An HTTPRoute on the platform Gateway."""
    meta = c.metadata(name, namespace, c.labels(model_name, component="gateway"))
    return c.manifest(
        GATEWAY_API,
        "HTTPRoute",
        meta,
        spec={
            "parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": props.gateway_name}],
            "hostnames": [hostname],
            "rules": rules,
        },
    )


def pin_route_name(model_name: str) -> str:
    return f"{model_name}-pins"


def internal_host(props: GatewayProps) -> str:
    return f"{props.internal_host_label}.{props.hostname}"


def pin_route(props: GatewayProps, model_name: str, namespace: str, pins: dict[int, str]) -> c.Manifest:
    """The version pins, on the internal host only, where `internal_security_policy` admits internal keys alone.
    A route of its own in both modes: in rollout mode the plugin owns the weighted route and never touches this one."""
    rules = [_pin_rule(contracts.PIN_HEADER, v, svc) for v, svc in sorted(pins.items())]
    return _http_route(props, pin_route_name(model_name), model_name, namespace, rules, internal_host(props))


def internal_security_policy(props: GatewayProps, model_name: str, namespace: str) -> c.Manifest:
    """The pin route's own API-key check (a route-level policy overrides the Gateway's): only the keys in the
    internal Secret (`gateway.api_keys[].internal`, created from the secret store like the other one)."""
    meta = c.metadata(f"{pin_route_name(model_name)}-api-keys", namespace, {"app.kubernetes.io/part-of": c.PART_OF})
    return c.manifest(
        ENVOY_GATEWAY_API,
        "SecurityPolicy",
        meta,
        spec={
            "targetRefs": [
                {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": pin_route_name(model_name)}
            ],
            "apiKeyAuth": _api_key_auth(props, props.internal_api_key_secret),
        },
    )


def security_policy(props: GatewayProps, namespace: str) -> c.Manifest:
    """API keys live in an Opaque Secret (data key = client name, value = the key), created from the secret store,
    never rendered here. The gateway forwards the client *name* (for rate limits and logs) and drops the key."""
    meta = c.metadata(f"{props.gateway_name}-api-keys", namespace, {"app.kubernetes.io/part-of": c.PART_OF})
    return c.manifest(
        ENVOY_GATEWAY_API,
        "SecurityPolicy",
        meta,
        spec={
            "targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": props.gateway_name}],
            "apiKeyAuth": _api_key_auth(props, props.api_key_secret),
        },
    )


def _api_key_auth(props: GatewayProps, secret: str) -> dict[str, Any]:
    return {
        "credentialRefs": [{"group": "", "kind": "Secret", "name": secret}],
        "extractFrom": [{"headers": [contracts.API_KEY_HEADER]}],
        # Envoy Gateway v1.7 API (`api/v1alpha1` at v1.7.3): the client id header and key stripping sit on
        # apiKeyAuth itself; the per-source `extractFrom[].forwarding` block is newer than the pinned chart.
        "forwardClientIDHeader": props.client_id_header,
        "sanitize": True,
    }


def rate_limit(key: ApiKey) -> dict[str, Any]:
    """Policy rate (per second, may be fractional) -> whole requests per the smallest exact unit."""
    for unit, seconds in UNITS:
        requests = key.rate_per_second * seconds
        if requests >= 1 and abs(requests - round(requests)) < 1e-9:
            return {"requests": round(requests), "unit": unit}
    raise ValueError(f"gateway.api_keys[{key.name}]: rate {key.rate_per_second}/s is not a whole number per day")


def backend_traffic_policy(
    props: GatewayProps,
    policy: Policy,
    model_name: str,
    namespace: str,
    route: str | None = None,
    timeout_seconds: float | None = None,
) -> c.Manifest:
    """Rate limits, body limit, timeout and retry for `route` (default: the model's main route)."""
    g = policy.gateway
    route = route or route_name(model_name)
    timeout = g.upstream_timeout_seconds if timeout_seconds is None else timeout_seconds
    rules = [
        {
            "clientSelectors": [{"headers": [{"name": props.client_id_header, "type": "Exact", "value": key.name}]}],
            "limit": rate_limit(key),
        }
        for key in g.api_keys
    ]
    spec: dict[str, Any] = {
        "targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": route}],
        "rateLimit": {"type": "Local", "local": {"rules": rules}},
        # Bodies above the policy limit get 413 before they reach a model server.
        "requestBuffer": {"limit": str(g.max_request_bytes)},
        "timeout": {"http": {"requestTimeout": f"{timeout:g}s"}},
    }
    if g.retry_on_stable:
        # /classify is a pure function of its body: a retry is safe. One retry, on another endpoint.
        spec["retry"] = {
            "numRetries": 1,
            "retryOn": {"triggers": ["connect-failure", "refused-stream", "reset", "5xx"]},
        }
    policy_name = f"{model_name}-traffic" if route == route_name(model_name) else f"{route}-traffic"
    meta = c.metadata(policy_name, namespace, c.labels(model_name, component="gateway"))
    return c.manifest(ENVOY_GATEWAY_API, "BackendTrafficPolicy", meta, spec=spec)


def endpoint_route(props: GatewayProps, policy: Policy, model_name: str, endpoint: str, namespace: str) -> c.Manifest:
    """`<endpoint>.<hostname>` -> the KEDA HTTP interceptor, which holds the request while the endpoint scales up."""
    rule = {
        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
        "backendRefs": [
            {
                "group": "",
                "kind": "Service",
                "name": INTERCEPTOR_SERVICE,
                "namespace": KEDA_HTTP_NAMESPACE,
                "port": INTERCEPTOR_PORT,
            }
        ],
        "timeouts": {"request": f"{cold_start_request_seconds(policy):g}s"},
    }
    name = endpoint_name(model_name, endpoint)
    meta = c.metadata(name, namespace, c.labels(model_name, component="gateway"))
    return c.manifest(
        GATEWAY_API,
        "HTTPRoute",
        meta,
        spec={
            "parentRefs": [
                {
                    "group": "gateway.networking.k8s.io",
                    "kind": "Gateway",
                    "name": props.gateway_name,
                    "sectionName": ENDPOINTS_LISTENER,
                }
            ],
            "hostnames": [endpoint_host(endpoint, props.hostname)],
            "rules": [rule],
        },
    )


def interceptor_grant(model_name: str, namespace: str) -> c.Manifest:
    """Lets this namespace's HTTPRoutes send to the interceptor Service, and nothing else of the KEDA namespace."""
    labels = c.labels(model_name, component="gateway")
    meta = c.metadata(f"{namespace}-to-keda-interceptor", KEDA_HTTP_NAMESPACE, labels)
    return c.manifest(
        GATEWAY_API_BETA,
        "ReferenceGrant",
        meta,
        spec={
            "from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": namespace}],
            "to": [{"group": "", "kind": "Service", "name": INTERCEPTOR_SERVICE}],
        },
    )


def endpoint_manifests(
    props: GatewayProps, policy: Policy, model_name: str, namespace: str, endpoints: list[str]
) -> list[c.Manifest]:
    """Route, rate limits (with the cold-start timeout) per endpoint, and the one grant they share."""
    out: list[c.Manifest] = []
    for endpoint in endpoints:
        out.append(endpoint_route(props, policy, model_name, endpoint, namespace))
        route, timeout = endpoint_name(model_name, endpoint), cold_start_request_seconds(policy)
        out.append(backend_traffic_policy(props, policy, model_name, namespace, route, timeout))
    if endpoints:
        out.append(interceptor_grant(model_name, namespace))
    return out


def gateway_manifests(props: GatewayProps, namespace: str) -> list[c.Manifest]:
    return [gateway_class(props), gateway(props, namespace), security_policy(props, namespace)]
