"""Envoy Gateway in front of the model servers: Gateway, HTTPRoute (weighted split + version pin), SecurityPolicy
(API keys) and BackendTrafficPolicy (per-key rate limits, retries, timeout, request body limit).

Every catalogue model answers on `/v1/models/<name>/<task>` (the default model on `/classify` too), rewritten to the
server's own route. A non-critical model (scaled to zero) is routed to the KEDA HTTP interceptor instead (another
namespace, so a ReferenceGrant there allows it), behind the same API keys and rate limits, with a timeout long enough
for a cold start.

TLS at the edge (decision 0135): the Gateway listens with HTTPS on `https_port` (the `<hostname>` listener and the
`*.<hostname>` one) with the certificate cert-manager keeps in `tls_secret` (modules/k8s/certificates.py); the plain
HTTP listener carries one HTTPRoute, a 308 redirect to https, and no other route may attach to it (every route names
its HTTPS listener in `sectionName`). A ClientTrafficPolicy sets the lowest TLS version (`gateway.tls.min_version`);
an EnvoyProxy gives the proxy's Service an NLB whose scheme is `gateway.load_balancer_scheme`.

The same behaviour as the local nginx gateway (infra/local/nginx.py), from the same policy section.
"""

from __future__ import annotations

from typing import Any

from core import contracts
from core.policy import ApiKey, Policy
from modules.k8s import common as c
from modules.k8s.certificates import certificate
from modules.k8s.props import GatewayProps
from modules.k8s.scaling import (
    INTERCEPTOR_PORT,
    INTERCEPTOR_SERVICE,
    KEDA_HTTP_NAMESPACE,
    cold_start_request_seconds,
    interceptor_host,
)
from modules.k8s.versions import ENVOY_GATEWAY_API, GATEWAY_API, GATEWAY_API_BETA

CONTROLLER = "gateway.envoyproxy.io/gatewayclass-controller"
HTTPS_LISTENER = "https"
ENDPOINTS_LISTENER = "endpoints"  # HTTPS too: `*.<hostname>` (the internal host of pins)
HTTP_LISTENER = "http"  # redirects only
REDIRECT_STATUS = 308  # keeps the method and body: a POST /classify sent to http is re-sent as a POST
# Service annotations of the load balancer. The in-tree AWS service controller reads `-type` and `-internal`; the AWS
# Load Balancer Controller, if installed later, reads `-scheme`: both say the same so neither guesses.
LB_TYPE = "service.beta.kubernetes.io/aws-load-balancer-type"
LB_INTERNAL = "service.beta.kubernetes.io/aws-load-balancer-internal"
LB_SCHEME = "service.beta.kubernetes.io/aws-load-balancer-scheme"
# Envoy local rate limits take whole requests per unit; the smallest unit that keeps the policy's rate exact wins.
UNITS = (("Second", 1), ("Minute", 60), ("Hour", 3600), ("Day", 86400))


def route_name(model_name: str) -> str:
    return model_name


def gateway_class(props: GatewayProps) -> c.Manifest:
    meta = c.metadata(props.gateway_class, None, {"app.kubernetes.io/part-of": c.PART_OF})
    return c.manifest(GATEWAY_API, "GatewayClass", meta, spec={"controllerName": CONTROLLER})


def _https_listener(props: GatewayProps, name: str, hostname: str) -> dict[str, Any]:
    return {
        "name": name,
        "protocol": "HTTPS",
        "port": props.https_port,
        "hostname": hostname,
        "tls": {
            "mode": "Terminate",
            "certificateRefs": [{"group": "", "kind": "Secret", "name": props.tls_secret}],
        },
        "allowedRoutes": {"namespaces": {"from": "Same"}},
    }


def gateway(props: GatewayProps, namespace: str) -> c.Manifest:
    meta = c.metadata(props.gateway_name, namespace, {"app.kubernetes.io/part-of": c.PART_OF})
    return c.manifest(
        GATEWAY_API,
        "Gateway",
        meta,
        spec={
            "gatewayClassName": props.gateway_class,
            # The proxy's Service (load balancer scheme) comes from this Gateway's own EnvoyProxy.
            "infrastructure": {
                "parametersRef": {"group": "gateway.envoyproxy.io", "kind": "EnvoyProxy", "name": props.envoy_proxy}
            },
            "listeners": [
                _https_listener(props, HTTPS_LISTENER, props.hostname),
                # The non-critical endpoints (`<endpoint>.<hostname>`) and the internal host of the pins.
                _https_listener(props, ENDPOINTS_LISTENER, f"*.{props.hostname}"),
                {
                    # Plain HTTP: only the redirect route attaches here (the others name an HTTPS listener).
                    "name": HTTP_LISTENER,
                    "protocol": "HTTP",
                    "port": props.listener_port,
                    "allowedRoutes": {"namespaces": {"from": "Same"}},
                },
            ],
        },
    )


def redirect_route_name(props: GatewayProps) -> str:
    return f"{props.gateway_name}-https-redirect"


def https_redirect_route(props: GatewayProps, namespace: str) -> c.Manifest:
    """Every request on the HTTP listener gets a 308 to the same URL over https; nothing is forwarded."""
    redirect: dict[str, Any] = {"scheme": "https", "statusCode": REDIRECT_STATUS}
    if props.https_port != 443:
        redirect["port"] = props.https_port  # 443 is implied by the https scheme
    meta = c.metadata(redirect_route_name(props), namespace, {"app.kubernetes.io/part-of": c.PART_OF})
    return c.manifest(
        GATEWAY_API,
        "HTTPRoute",
        meta,
        spec={
            "parentRefs": [_parent(props, HTTP_LISTENER)],
            "hostnames": [props.hostname, f"*.{props.hostname}"],
            "rules": [{"filters": [{"type": "RequestRedirect", "requestRedirect": redirect}]}],
        },
    )


def client_traffic_policy(props: GatewayProps, policy: Policy, namespace: str) -> c.Manifest:
    """The lowest TLS version a client may negotiate on every HTTPS listener of the Gateway, and how long a client
    may take to send a whole request (a stalled one is dropped, as nginx does locally)."""
    meta = c.metadata(f"{props.gateway_name}-tls", namespace, {"app.kubernetes.io/part-of": c.PART_OF})
    return c.manifest(
        ENVOY_GATEWAY_API,
        "ClientTrafficPolicy",
        meta,
        spec={
            "targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": props.gateway_name}],
            "tls": {"minVersion": policy.gateway.tls.min_version},
            "timeout": {"http": {"requestReceivedTimeout": f"{policy.gateway.client_timeout_seconds}s"}},
        },
    )


def envoy_proxy(props: GatewayProps, policy: Policy, namespace: str) -> c.Manifest:
    """The proxy's Service: an NLB, internet-facing or internal as the policy says."""
    scheme = policy.gateway.load_balancer_scheme
    annotations = {
        LB_TYPE: "nlb",
        LB_INTERNAL: "true" if scheme == "internal" else "false",
        LB_SCHEME: scheme,
    }
    meta = c.metadata(props.envoy_proxy, namespace, {"app.kubernetes.io/part-of": c.PART_OF})
    return c.manifest(
        ENVOY_GATEWAY_API,
        "EnvoyProxy",
        meta,
        spec={
            "provider": {
                "type": "Kubernetes",
                "kubernetes": {"envoyService": {"type": "LoadBalancer", "annotations": annotations}},
            }
        },
    )


def _parent(props: GatewayProps, listener: str) -> dict[str, str]:
    return {
        "group": "gateway.networking.k8s.io",
        "kind": "Gateway",
        "name": props.gateway_name,
        "sectionName": listener,
    }


def _backend(name: str, weight: int) -> dict[str, Any]:
    return {"group": "", "kind": "Service", "name": name, "port": c.HTTP_PORT, "weight": weight}


def public_paths(policy: Policy, model_name: str) -> list[str]:
    """The paths a model answers on: its catalogue route, and `/classify` too for the default model."""
    model = policy.model(model_name)
    paths = [contracts.model_route(model.name, model.task)]
    if model.name == policy.release.default_model:
        paths.append(contracts.PREDICT_ROUTE)
    return paths


def _predict_matches(
    policy: Policy, model_name: str, headers: list[dict[str, str]] | None = None
) -> list[dict[str, Any]]:
    """Only the prediction routes and method are routed; anything else (the servers' /metrics, /docs) is a 404."""
    matches = []
    for path in public_paths(policy, model_name):
        match: dict[str, Any] = {"path": {"type": "Exact", "value": path}, "method": "POST"}
        if headers:
            match["headers"] = headers
        matches.append(match)
    return matches


def _rewrite(path: str, hostname: str | None = None) -> dict[str, Any]:
    """The public path becomes the server's own route (and, for the interceptor, the Host it routes by)."""
    rewrite: dict[str, Any] = {"path": {"type": "ReplaceFullPath", "replaceFullPath": path}}
    if hostname:
        rewrite["hostname"] = hostname
    return {"type": "URLRewrite", "urlRewrite": rewrite}


def _pin_rule(policy: Policy, model_name: str, header: str, version: int, service: str) -> dict[str, Any]:
    """A pinned request reaches its version's Service on the server's pinned route, which the canary analysis and
    the SLO rules (selecting the prediction route) do not count."""
    return {
        "matches": _predict_matches(policy, model_name, [{"type": "Exact", "name": header, "value": str(version)}]),
        "filters": [_rewrite(contracts.PINNED_PREDICT_ROUTE)],
        "backendRefs": [_backend(service, 1)],
    }


def http_route(
    props: GatewayProps,
    policy: Policy,
    model_name: str,
    namespace: str,
    weights: dict[str, int],
    mirror: tuple[str, int] | None = None,
) -> c.Manifest:
    """The public route: `weights` (Service name -> weight). A pin header here is not a match: pins answer only on
    the internal host (`pin_route`). `mirror` (Service name, percent): a copy of that share of the requests, after
    the rewrite, goes to that Service too; its answers are dropped by Envoy, which marks the copy's Host
    (`contracts.SHADOW_HOST_SUFFIX`)."""
    filters = [_rewrite(contracts.server_route(policy.model(model_name).task))]
    if mirror is not None:
        service, percent = mirror
        backend = {"group": "", "kind": "Service", "name": service, "port": c.HTTP_PORT}
        filters.append({"type": "RequestMirror", "requestMirror": {"backendRef": backend, "percent": percent}})
    rule = {
        "matches": _predict_matches(policy, model_name),
        "filters": filters,
        "backendRefs": [_backend(name, w) for name, w in weights.items()],
        "timeouts": {"request": f"{policy.gateway.upstream_timeout_seconds:g}s"},
    }
    return _http_route(props, route_name(model_name), model_name, namespace, [rule], props.hostname, HTTPS_LISTENER)


def _http_route(
    props: GatewayProps,
    name: str,
    model_name: str,
    namespace: str,
    rules: list[dict[str, Any]],
    hostname: str,
    listener: str,
) -> c.Manifest:
    """An HTTPRoute on one HTTPS listener of the platform Gateway (never on the plain-HTTP one)."""
    meta = c.metadata(name, namespace, c.labels(model_name, component="gateway"))
    return c.manifest(
        GATEWAY_API,
        "HTTPRoute",
        meta,
        spec={
            "parentRefs": [_parent(props, listener)],
            "hostnames": [hostname],
            "rules": rules,
        },
    )


def pin_route_name(model_name: str) -> str:
    return f"{model_name}-pins"


def internal_host(props: GatewayProps) -> str:
    return f"{props.internal_host_label}.{props.hostname}"


def pin_route(props: GatewayProps, policy: Policy, model_name: str, namespace: str, pins: dict[int, str]) -> c.Manifest:
    """The version pins, on the internal host only, where `internal_security_policy` admits internal keys alone.
    A route of its own in both modes: in rollout mode the plugin owns the weighted route and never touches this one."""
    rules = [_pin_rule(policy, model_name, contracts.PIN_HEADER, v, svc) for v, svc in sorted(pins.items())]
    host = internal_host(props)  # under the `*.<hostname>` listener
    return _http_route(props, pin_route_name(model_name), model_name, namespace, rules, host, ENDPOINTS_LISTENER)


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


def interceptor_route(props: GatewayProps, policy: Policy, model_name: str, namespace: str) -> c.Manifest:
    """A non-critical model's public route: to the KEDA HTTP interceptor, which holds the request while the model
    scales up from zero. Its Host becomes the one the model's InterceptorRoute matches (scaling.py)."""
    task = policy.model(model_name).task
    rule = {
        "matches": _predict_matches(policy, model_name),
        "filters": [_rewrite(contracts.server_route(task), interceptor_host(model_name, props.hostname))],
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
    return _http_route(props, route_name(model_name), model_name, namespace, [rule], props.hostname, HTTPS_LISTENER)


def interceptor_grant(namespace: str) -> c.Manifest:
    """Lets this namespace's HTTPRoutes send to the interceptor Service, and nothing else of the KEDA namespace.
    One per namespace, shared by every non-critical model: its labels name no model."""
    labels = c.platform_labels("gateway")
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


def gateway_manifests(props: GatewayProps, policy: Policy, namespace: str) -> list[c.Manifest]:
    return [
        gateway_class(props),
        envoy_proxy(props, policy, namespace),
        gateway(props, namespace),
        https_redirect_route(props, namespace),
        client_traffic_policy(props, policy, namespace),
        certificate(props, policy, namespace),
        security_policy(props, namespace),
    ]
