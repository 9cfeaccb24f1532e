"""The nginx gateway config, rendered from the policy and the live model servers (pure functions: unit-tested).

What the rendered config does, in request order:
1. `client_max_body_size` -> 413 for bodies over `gateway.max_request_bytes`.
2. `X-API-Key`: missing -> 401; njs hashes the presented key (SHA-256) and a `map` looks the hash up among the
   hashes of the known keys -> unknown -> 403. Keys never appear in the config, only their hashes.
3. Routing: the pin header (`gateway.pin_header`) of an internal key (`gateway.api_keys[].internal`) names a live
   version -> that version's server only, on its pinned route (unknown -> 404); otherwise (no pin, or a key that
   may not pin) `split_clients` on the request id picks a version by percent weight (weight 0: no traffic).
4. Per-key rate limit: one `limit_req_zone` per key (rates differ per key), 429 + `Retry-After` when exceeded.
5. Proxy with keep-alive to the version's server; if that server fails (refused, 502/503/504, timeout) the
   request is retried once on the stable version's server (`backup`), so clients see no error.
6. During a release's shadow phase (`shadow`): a share of the requests the split sends to stable (`split_clients` on
   the request id, so the sample is fixed per request) is mirrored, body and `X-Request-ID` included, to the local
   shadow relay, which answers at once and forwards to the candidate's pinned route (infra/local/shadow_relay.py).
   The client gets stable's answer; pinned requests are never mirrored.
7. JSON access log: status, api_key_name, upstream_version (the `X-Model-Version` the answering server sent),
   request_time, upstream_response_time...
All of it is served over TLS only (`gateway.tls.min_version` and up, certificate from `infra.local.tls`). The
plain-HTTP port (`ports.gateway_http`) answers every request with a 308 to the HTTPS port and does nothing else: no
key lookup, no upstream (its own small log). Plain HTTP sent to the HTTPS port gets the same redirect.
Every error the gateway itself answers is a JSON body naming what was wrong and what to do.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from core import contracts, endpoints

NJS_MODULE = "/usr/lib/nginx/modules/ngx_http_js_module.so"
ACCESS_LOG = "gateway-access.log"
ERROR_LOG = "gateway-error.log"
ERROR_PREFIX = "/_mlp_errors/"  # internal locations answering each refusal with its JSON body
REDIRECT_LOG = "gateway-redirect.log"
TLS_PROTOCOLS = ("TLSv1.2", "TLSv1.3")  # what nginx 1.22 / OpenSSL 3.0 can be told; older ones are never offered
PREDICT_PATH = contracts.PREDICT_ROUTE
PINNED_PREDICT_PATH = contracts.PINNED_PREDICT_ROUTE
HEALTH_PATH = "/healthz"
SHADOW_PATH = "/_mlp_shadow"  # internal: the mirror subrequest's location


class WeightsError(ValueError):
    """Weights that cannot be applied; the message says why and what would be valid."""


@dataclass(frozen=True)
class KeyLimit:
    name: str
    sha256: str
    rate_per_second: float
    burst: int
    internal: bool = False  # may pin a version (policy gateway.api_keys[].internal)


@dataclass(frozen=True)
class ShadowSpec:
    """What the shadow phase mirrors: a share of stable's split traffic, to the relay in front of `version`."""

    version: int
    share_percent: int
    relay_port: int


@dataclass(frozen=True)
class GatewaySpec:
    port: int
    prefix: Path  # nginx prefix: config, pid, temp dirs
    logs_dir: Path
    js_dir: Path  # where auth.js lives
    keys: tuple[KeyLimit, ...]
    max_request_bytes: int
    pin_header: str
    upstream_timeout_seconds: float
    retry_on_stable: bool
    client_timeout_seconds: int  # request headers or body not received in time: the connection is dropped
    http_port: int  # plain HTTP: redirects only
    tls_cert: Path  # PEM of the server certificate (infra.local.tls)
    tls_key: Path  # its key, in the secret store
    tls_min_version: str  # policy gateway.tls.min_version: "1.2" or "1.3"
    # The public prediction routes (the same location each): `/classify` and the catalogue's
    # `/v1/models/<default model>/classify`; the model servers themselves answer `/classify`.
    predict_paths: tuple[str, ...] = (PREDICT_PATH,)
    servers: Mapping[int, int] = field(default_factory=dict)  # version -> port of its live model server
    # Public route -> (port, percent) of each of a catalogue model's own servers with traffic (generate, embed, rag):
    # one, or two during a release's canary.
    generate_routes: Mapping[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    weights: Mapping[int, int] = field(default_factory=dict)  # version -> percent; empty: no traffic anywhere
    stable: int | None = None
    shadow: ShadowSpec | None = None  # a release's shadow phase is on
    worker_user: str | None = None  # only when nginx starts as root


def tls_protocols(min_version: str) -> tuple[str, ...]:
    """nginx `ssl_protocols` from the policy's lowest version: "1.2" -> TLSv1.2 TLSv1.3."""
    wanted = f"TLSv{min_version}"
    if wanted not in TLS_PROTOCOLS:
        raise ValueError(f"gateway.tls.min_version {min_version!r}: one of {', '.join(TLS_PROTOCOLS)} without 'TLSv'")
    return TLS_PROTOCOLS[TLS_PROTOCOLS.index(wanted) :]


def validate_weights(weights: Mapping[int, int], live: set[int]) -> dict[int, int]:
    """Percent per version: live versions only, integers 0..100 summing to 100. Returns the non-zero weights."""
    if not weights:
        raise WeightsError("no weights given: name at least one live version, e.g. {3: 100}")
    unknown = sorted(v for v in weights if v not in live)
    if unknown:
        live_text = ", ".join(f"v{v}" for v in sorted(live)) or "none"
        raise WeightsError(
            f"no live model server for {', '.join(f'v{v}' for v in unknown)} (live: {live_text}); "
            "start it first with `mlp serve start VERSION`"
        )
    for version, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
            raise WeightsError(f"weight of v{version} must be an integer percent 0..100, got {weight!r}")
    total = sum(weights.values())
    if total != 100:
        raise WeightsError(f"weights must sum to 100, got {total} ({dict(sorted(weights.items()))})")
    return {v: w for v, w in sorted(weights.items()) if w > 0}


def pick_stable(weights: Mapping[int, int], previous: int | None) -> int | None:
    """The stable version: highest weight; on a tie the previous stable if tied, else the lowest version."""
    if not weights:
        return None
    top = max(weights.values())
    tied = sorted(v for v, w in weights.items() if w == top)
    return previous if previous in tied else tied[0]


def limit_rate(rate_per_second: float) -> str:
    """nginx `rate=`: whole requests per second, or per minute for slower or fractional rates."""
    if rate_per_second >= 1 and float(rate_per_second).is_integer():
        return f"{int(rate_per_second)}r/s"
    return f"{max(1, round(rate_per_second * 60))}r/m"


def retry_after_seconds(rate_per_second: float) -> int:
    return max(1, math.ceil(1 / rate_per_second))


def header_variable(header: str) -> str:
    return "$http_" + header.lower().replace("-", "_")


def _json(obj: object) -> str:
    """A JSON body inside a single-quoted nginx string."""
    return json.dumps(obj).replace("\\", "\\\\").replace("'", "\\'")


def error_body(message: str, status: int) -> str:
    return _json({"error": message, "status": status})


def generation(spec: GatewaySpec) -> str:
    """A short fingerprint of what the config routes; `/healthz` reports it, so a reload can be confirmed."""
    basis = {
        "servers": sorted(spec.servers.items()),
        "generate_routes": sorted(spec.generate_routes.items()),
        "weights": sorted(spec.weights.items()),
        "stable": spec.stable,
        "keys": [(k.name, k.sha256, k.rate_per_second, k.burst) for k in spec.keys],
        "limits": [spec.max_request_bytes, spec.pin_header, spec.upstream_timeout_seconds, spec.retry_on_stable],
        "tls": [spec.http_port, str(spec.tls_cert), spec.tls_min_version],
        "shadow": None if spec.shadow is None else [spec.shadow.version, spec.shadow.share_percent],
    }
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()[:12]


def _upstreams(spec: GatewaySpec) -> list[str]:
    lines = []
    stable_port = spec.servers.get(spec.stable) if spec.stable is not None else None
    for version, port in sorted(spec.servers.items()):
        backup = ""
        if spec.retry_on_stable and stable_port is not None and version != spec.stable:
            backup = f"        server 127.0.0.1:{stable_port} backup;  # retry on stable v{spec.stable}\n"
        # Split traffic may fall back to stable; a pinned request goes to its version only.
        lines.append(
            f"    upstream split_{version} {{\n"
            f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;\n"
            f"{backup}"
            f"        keepalive 16;\n"
            f"    }}\n"
            f"    upstream pin_{version} {{\n"
            f"        server 127.0.0.1:{port};\n"
            f"        keepalive 4;\n"
            f"    }}\n"
        )
    return lines


def _split(spec: GatewaySpec) -> str:
    if not spec.weights:
        return '    map $request_id $split_version {\n        default "";\n    }\n'
    entries = sorted(spec.weights.items())
    lines = ['    split_clients "${request_id}" $split_version {']
    for i, (version, weight) in enumerate(entries):
        share = "*" if i == len(entries) - 1 else f"{weight}%"
        lines.append(f'        {share} "{version}";  # {weight}%')
    lines.append("    }")
    return "\n".join(lines) + "\n"


def _shadow(spec: GatewaySpec) -> str:
    """The sample of stable's split traffic to mirror (decided by the request id, salted so that it is independent
    of the split) and the relay it goes to."""
    s = spec.shadow
    if s is None or spec.stable is None:
        return ""
    share = '        * "1";' if s.share_percent >= 100 else f'        {s.share_percent}% "1";\n        * "";'
    return (
        f'    split_clients "${{request_id}}:shadow" $shadow_pick {{\n{share}\n    }}\n'
        f'    map "$route_upstream:$shadow_pick" $shadow_mirrored {{\n'
        f'        "split_{spec.stable}:1" "1";  # stable\'s share of the split only: never a pinned request\n'
        f'        default "";\n    }}\n'
        f"    upstream shadow_relay {{\n        server 127.0.0.1:{s.relay_port};\n        keepalive 8;\n    }}\n"
    )


def _shadow_location(spec: GatewaySpec) -> str:
    if spec.shadow is None or spec.stable is None:
        return ""
    return f"""        location = {SHADOW_PATH} {{
            internal;
            if ($shadow_mirrored = "") {{ return 204; }}
            # The relay answers at once: this subrequest never holds the client's connection for the candidate.
            proxy_pass http://shadow_relay/mirror;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Request-ID $request_id;
            proxy_set_header Content-Type "application/json";
            proxy_set_header X-API-Key "";
            proxy_connect_timeout 200ms;
            proxy_send_timeout 1s;
            proxy_read_timeout 1s;
        }}

"""


def _routing(spec: GatewaySpec) -> str:
    """Only an internal key's pin header pins (other keys' requests follow the weights, as on the cluster's public
    host); a pinned request goes to the server's pinned route, which the canary analysis does not count."""
    pin = header_variable(spec.pin_header)
    lines = ["    map $api_key_name $api_key_internal {"]
    lines += [f'        "{k.name}" "1";' for k in spec.keys if k.internal]
    lines += ['        default "";', "    }"]
    # The ":" keeps a non-internal key's header ("12") from reading as internal ("1") + pin "2".
    lines += [f'    map "$api_key_internal:{pin}" $requested_pin {{', '        "~^1:(?<pin>.+)$" $pin;']
    lines += ['        default "";', "    }"]
    lines += ["    map $requested_pin $route_upstream {", '        ""  "split_${split_version}";']
    lines += [f'        "{v}" "pin_{v}";' for v in sorted(spec.servers)]
    lines += ['        default "";', "    }"]
    lines += ["    map $route_upstream $upstream_uri {", f'        "~^pin_" "{PINNED_PREDICT_PATH}";']
    lines += [f'        default "{PREDICT_PATH}";', "    }"]
    return "\n".join(lines) + "\n"


def _keys(spec: GatewaySpec) -> str:
    lines = ["    map $api_key_hash $api_key_name {", '        default "";', '        "" "";']
    lines += [f'        "{k.sha256}" "{k.name}";' for k in spec.keys]
    lines.append("    }")
    lines.append("    map $api_key_name $retry_after {")
    lines += [f'        "{k.name}" "{retry_after_seconds(k.rate_per_second)}";' for k in spec.keys]
    lines += ['        default "1";', "    }"]
    for k in spec.keys:
        lines.append(f'    map $api_key_name $limit_{_ident(k.name)} {{ "{k.name}" "{k.name}"; default ""; }}')
        ident, rate = _ident(k.name), limit_rate(k.rate_per_second)
        lines.append(f"    limit_req_zone $limit_{ident} zone=key_{ident}:1m rate={rate};")
    return "\n".join(lines) + "\n"


def _ident(name: str) -> str:
    return name.replace("-", "_")


def _error_locations(spec: GatewaySpec) -> str:
    live = ", ".join(str(v) for v in sorted(spec.servers)) or "none"
    messages = {
        400: "malformed HTTP request",
        401: "missing API key: send it in the X-API-Key header",
        403: "unknown API key: check the X-API-Key value (keys are issued per client)",
        404: f'unknown path: send POST {PREDICT_PATH} with JSON {{"texts": [...]}}',
        405: f"method not allowed: use POST {PREDICT_PATH}",
        413: f"request body too large: at most {spec.max_request_bytes} bytes; split the batch",
        414: f"request URI too long: send POST {PREDICT_PATH} with the texts in the body",
        431: "request headers too large: send only the API key and Content-Type headers",
        429: "rate limit of this API key exceeded: slow down and retry after the Retry-After seconds",
        502: "the model server did not answer; retry, and see runbooks/high-error-rate.md if it persists",
        503: "no model version is receiving traffic: start one with `mlp serve start VERSION`",
        504: "the model server did not answer in time; retry, and see runbooks/high-latency.md",
    }
    out = []
    for status, message in messages.items():
        extra = "        add_header Retry-After $retry_after always;\n" if status == 429 else ""
        out.append(
            f"    location = {ERROR_PREFIX}{status} {{\n        internal;\n{extra}"
            f"        return {status} '{error_body(message, status)}\\n';\n    }}\n"
        )
    unknown_pin = (
        f"{spec.pin_header} names no live model version (live versions: {live}); "
        f"omit the header to use the weighted split"
    )
    out.append(f"    location @unknown_version {{\n        return 404 '{error_body(unknown_pin, 404)}\\n';\n    }}\n")
    return "".join(out)


def _error_pages(unknown_version: bool = False) -> str:
    # Internal URIs, not named locations: a request whose request line did not parse has no URI, and nginx cannot
    # redirect such a request to a named location (it would answer 500 instead of the 400 it means).
    pages = [f"error_page {s} {ERROR_PREFIX}{s};" for s in (400, 401, 403, 405, 413, 414, 429, 502, 503, 504)]
    pages.append(f"error_page 494 =431 {ERROR_PREFIX}431;")  # nginx's own code for an oversized header
    pages.append("error_page 404 @unknown_version;" if unknown_version else f"error_page 404 {ERROR_PREFIX}404;")
    return " ".join(pages)


LOG_FORMAT = (
    '{"time":"$time_iso8601","request_id":"$request_id","method":"$request_method","uri":"$request_uri",'
    '"status":"$status","api_key_name":"$api_key_name","pinned_version":"$pinned_version",'
    '"routed":"$route_upstream","upstream_version":"$upstream_http_x_model_version",'
    '"upstream_addr":"$upstream_addr","upstream_status":"$upstream_status","request_time":"$request_time",'
    '"upstream_response_time":"$upstream_response_time","request_length":"$request_length",'
    '"bytes_sent":"$bytes_sent"}'
)


REDIRECT_LOG_FORMAT = (
    '{"time":"$time_iso8601","method":"$request_method","uri":"$request_uri","status":"$status",'
    '"remote_addr":"$remote_addr"}'
)


def _predict_location(path: str, limits: str, timeout: str, retry: str, mirror: bool = False) -> str:
    """One public prediction route: the checks in order (method, key, route), the key's rate limit, the proxy."""
    mirrored = f"\n            mirror {SHADOW_PATH};\n            mirror_request_body on;" if mirror else ""
    return f"""        location = {path} {{
            {_error_pages(unknown_version=True)}
            if ($request_method != POST) {{ return 405; }}
            if ($http_x_api_key = "") {{ return 401; }}
            if ($api_key_name = "") {{ return 403; }}
            if ($route_upstream = "") {{ return 404; }}
            if ($route_upstream = "split_") {{ return 503; }}
{limits}{mirrored}

            proxy_pass http://$route_upstream$upstream_uri;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $upstream_host;
            proxy_set_header X-Request-ID $request_id;
            proxy_set_header Content-Type "application/json";  # the API speaks JSON only
            proxy_set_header X-API-Key "";  # the key stops here
            proxy_connect_timeout 1s;
            proxy_send_timeout {timeout};
            proxy_read_timeout {timeout};
{retry}        }}

"""


def _catalogue_upstream_name(path: str) -> str:
    return "catalogue_" + re.sub(r"[^A-Za-z0-9]+", "_", path.removeprefix(contracts.MODEL_ROUTE_PREFIX)).strip("_")


def _catalogue_upstreams(spec: GatewaySpec) -> list[str]:
    """One upstream per catalogue route: its servers weighted by their percent (nginx's smooth weighted round robin
    sends a 10% canary exactly one request in ten). `max_fails=0`: a failing canary keeps its share, so the
    analysis sees its errors instead of nginx hiding them by sending everything to stable."""
    lines = []
    for path, servers in sorted(spec.generate_routes.items()):
        members = "".join(
            f"        server 127.0.0.1:{port} weight={percent} max_fails=0;\n" for port, percent in servers
        )
        lines.append(f"    upstream {_catalogue_upstream_name(path)} {{\n{members}        keepalive 8;\n    }}\n")
    return lines


def _generate_location(path: str, limits: str, timeout: str) -> str:
    """A generate, embed or rag model's route: the same checks and rate limits as prediction, proxied to its servers'
    `/<task>` by their weights. Retried on the model's other server only when the connection failed before any answer
    began (refused, or reset by a server that died with the request: `non_idempotent` lets nginx resend that POST), so
    a crashed canary costs its clients nothing; never on a timeout or an answer, since a generation is not idempotent
    in cost and the analysis must see a canary's own errors."""
    upstream_path = contracts.server_route(path.rsplit("/", 1)[1])
    return f"""        location = {path} {{
            {_error_pages()}
            if ($request_method != POST) {{ return 405; }}
            if ($http_x_api_key = "") {{ return 401; }}
            if ($api_key_name = "") {{ return 403; }}
{limits}

            proxy_pass http://{_catalogue_upstream_name(path)}{upstream_path};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Request-ID $request_id;
            proxy_set_header Content-Type "application/json";
            proxy_set_header X-API-Key "";
            proxy_connect_timeout 1s;
            proxy_send_timeout {timeout};
            proxy_read_timeout {timeout};
            proxy_next_upstream error non_idempotent;
            proxy_next_upstream_tries 2;
        }}

"""


def render(spec: GatewaySpec) -> str:
    prefix, logs = spec.prefix, spec.logs_dir
    gen = generation(spec)
    limits = "\n".join(f"            limit_req zone=key_{_ident(k.name)} burst={k.burst} nodelay;" for k in spec.keys)
    weights_json = json.dumps({str(v): w for v, w in sorted(spec.weights.items())})
    health = _json({"status": "ok", "generation": gen, "stable": spec.stable, "weights": json.loads(weights_json)})
    timeout = f"{spec.upstream_timeout_seconds:g}s"
    retry = (
        "            proxy_next_upstream error timeout http_502 http_503 http_504 non_idempotent;\n"
        "            proxy_next_upstream_tries 2;\n"
        if spec.retry_on_stable
        else "            proxy_next_upstream off;\n"
    )
    user = f"user {spec.worker_user};\n" if spec.worker_user else ""
    mirror = spec.shadow is not None and spec.stable is not None
    predict_locations = "".join(_predict_location(path, limits, timeout, retry, mirror) for path in spec.predict_paths)
    predict_locations += _shadow_location(spec)
    predict_locations += "".join(_generate_location(path, limits, timeout) for path in sorted(spec.generate_routes))
    return f"""# Rendered by infra/local/nginx.py from policy.yaml and the live model servers. Do not edit.
# generation {gen}
load_module {NJS_MODULE};
{user}worker_processes 1;  # the model servers need the cores more
pid {prefix / "nginx.pid"};
error_log {logs / ERROR_LOG} warn;

events {{
    worker_connections 2048;
}}

http {{
    default_type application/json;
    server_tokens off;
    map_hash_bucket_size 128;  # keys are 64-character SHA-256 hex digests
    client_max_body_size {spec.max_request_bytes};
    client_body_buffer_size {spec.max_request_bytes};  # bodies stay in memory
    client_body_temp_path {prefix / "tmp" / "body"};
    proxy_temp_path {prefix / "tmp" / "proxy"};
    fastcgi_temp_path {prefix / "tmp" / "fastcgi"};
    uwsgi_temp_path {prefix / "tmp" / "uwsgi"};
    scgi_temp_path {prefix / "tmp" / "scgi"};
    keepalive_timeout 30s;
    client_header_timeout {spec.client_timeout_seconds}s;  # a stalled client is dropped, never waited on
    client_body_timeout {spec.client_timeout_seconds}s;
    keepalive_requests 10000;

    js_path {spec.js_dir};
    js_import auth from auth.js;
    js_set $api_key_hash auth.key_hash;

{_keys(spec)}
    limit_req_status 429;
    limit_req_log_level warn;

{_split(spec)}
{_routing(spec)}
{_shadow(spec)}
    map $requested_pin $pinned_version {{
        "~^[0-9]+$" $requested_pin;
        default "";
    }}
    # A Host with the mirror's mark (contracts.SHADOW_HOST_SUFFIX) would make a model server treat a client's own
    # request as a mirrored copy (uncounted, unread by drift): only the shadow relay may send one.
    map $host $upstream_host {{
        "~{contracts.SHADOW_HOST_SUFFIX}$" "{endpoints.HOST}";
        default $host;
    }}

{"".join(_upstreams(spec))}{"".join(_catalogue_upstreams(spec))}
    log_format mlp_json escape=json '{LOG_FORMAT}';
    log_format mlp_redirect escape=json '{REDIRECT_LOG_FORMAT}';

    # Plain HTTP: a redirect to HTTPS and nothing else. No key is read, no upstream is named; the client sends its
    # key again over TLS (a key it already sent here in the clear should be rotated: docs/security.md).
    server {{
        listen 127.0.0.1:{spec.http_port};
        server_name 127.0.0.1;  # $host when the request has no Host header
        access_log {logs / REDIRECT_LOG} mlp_redirect;
        location / {{
            return 308 https://$host:{spec.port}$request_uri;
        }}
    }}

    server {{
        listen 127.0.0.1:{spec.port} ssl;
        server_name 127.0.0.1;
        ssl_certificate {spec.tls_cert};
        ssl_certificate_key {spec.tls_key};
        ssl_protocols {" ".join(tls_protocols(spec.tls_min_version))};
        ssl_session_cache shared:tls:1m;  # resumed sessions skip the full handshake
        ssl_session_timeout 1h;
        access_log {logs / ACCESS_LOG} mlp_json;
        {_error_pages()}
        error_page 497 =308 https://$host:{spec.port}$request_uri;  # plain HTTP sent to this port

        location = {HEALTH_PATH} {{
            access_log off;
            return 200 '{health}\\n';
        }}

{predict_locations}        location / {{
            return 404;
        }}

{_error_locations(spec)}    }}
}}
"""
