"""The rendered nginx config: auth by key hash, per-key limits, weighted split, pins, retry on stable.

Rendering is pure; the last tests run the real `nginx -t` on what was rendered.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from core import env
from infra.local import nginx as c
from infra.local import tls

KEYS = {"demo": "demo-secret-key-1", "limited": "limited-secret-key-2"}


def spec(tmp_path: Path, **overrides: object) -> c.GatewaySpec:
    base = dict(
        port=18999,
        prefix=tmp_path,
        logs_dir=tmp_path / "logs",
        js_dir=Path(c.__file__).parent / "njs",
        keys=(
            c.KeyLimit("demo", hashlib.sha256(KEYS["demo"].encode()).hexdigest(), 200, 200, internal=True),
            c.KeyLimit("limited", hashlib.sha256(KEYS["limited"].encode()).hexdigest(), 2, 2),
        ),
        max_request_bytes=65536,
        pin_header="X-Model-Version",
        upstream_timeout_seconds=10,
        retry_on_stable=True,
        client_timeout_seconds=7,
        http_port=18998,
        tls_cert=tmp_path / "tls" / "gateway.pem",
        tls_key=tmp_path / "secrets" / "tls_gateway_key",
        tls_min_version="1.2",
        servers={3: 13000, 4: 13001},
        weights={3: 80, 4: 20},
        stable=3,
    )
    base.update(overrides)
    return c.GatewaySpec(**base)  # type: ignore[arg-type]


def upstream(conf: str, name: str) -> str:
    match = re.search(rf"upstream {name} \{{(.*?)\}}", conf, re.S)
    assert match, f"no upstream {name}"
    return match.group(1)


def test_keys_appear_only_as_sha256_hashes(tmp_path: Path) -> None:
    conf = c.render(spec(tmp_path))
    for name, key in KEYS.items():
        assert key not in conf
        assert f'"{hashlib.sha256(key.encode()).hexdigest()}" "{name}";' in conf
    assert "js_set $api_key_hash auth.key_hash;" in conf


def test_missing_key_401_unknown_key_403(tmp_path: Path) -> None:
    conf = c.render(spec(tmp_path))
    assert 'if ($http_x_api_key = "") { return 401; }' in conf
    assert 'if ($api_key_name = "") { return 403; }' in conf
    # The hash of an absent header must not match a key.
    assert '"" "";' in conf.split("map $api_key_hash $api_key_name")[1].split("}")[0]


def test_per_key_rate_limits_with_429_and_retry_after(tmp_path: Path) -> None:
    conf = c.render(spec(tmp_path))
    assert "limit_req_zone $limit_demo zone=key_demo:1m rate=200r/s;" in conf
    assert "limit_req_zone $limit_limited zone=key_limited:1m rate=2r/s;" in conf
    assert "limit_req zone=key_limited burst=2 nodelay;" in conf
    assert "limit_req_status 429;" in conf
    assert "add_header Retry-After $retry_after always;" in conf
    # A key's zone variable is empty for every other key, so one key's traffic never counts against another.
    assert 'map $api_key_name $limit_demo { "demo" "demo"; default ""; }' in conf


@pytest.mark.parametrize(
    ("rate", "expected"), [(200, "200r/s"), (1, "1r/s"), (0.5, "30r/m"), (2.5, "150r/m"), (0.001, "1r/m")]
)
def test_limit_rate_units(rate: float, expected: str) -> None:
    assert c.limit_rate(rate) == expected


def test_body_size_limit(tmp_path: Path) -> None:
    conf = c.render(spec(tmp_path, max_request_bytes=4096))
    assert "client_max_body_size 4096;" in conf
    assert "at most 4096 bytes" in conf


def test_weighted_split_leaves_out_zero_weights(tmp_path: Path) -> None:
    conf = c.render(spec(tmp_path, servers={3: 13000, 4: 13001, 5: 13002}, weights={3: 90, 5: 10}))
    block = conf.split('split_clients "${request_id}" $split_version {')[1].split("}")[0]
    assert '90% "3";' in block
    assert '* "5";' in block  # the last share takes the rest, so rounding never leaves a gap
    assert '"4"' not in block


def test_no_weights_means_503_not_a_random_server(tmp_path: Path) -> None:
    conf = c.render(spec(tmp_path, weights={}, stable=None))
    assert "split_clients" not in conf
    assert 'if ($route_upstream = "split_") { return 503; }' in conf


def test_pin_routes_to_the_version_only_and_unknown_is_404(tmp_path: Path) -> None:
    conf = c.render(spec(tmp_path))
    routing = conf.split("map $requested_pin $route_upstream {")[1].split("\n    }")[0]
    assert '"3" "pin_3";' in routing and '"4" "pin_4";' in routing
    assert 'default "";' in routing
    assert "backup" not in upstream(conf, "pin_4")  # a pinned request never lands on another version
    assert "error_page 404 @unknown_version;" in conf
    assert "names no live model version (live versions: 3, 4)" in conf


def test_only_internal_keys_pin_and_pinned_requests_go_to_the_pinned_route(tmp_path: Path) -> None:
    conf = c.render(spec(tmp_path))
    internal = conf.split("map $api_key_name $api_key_internal {")[1].split("\n    }")[0]
    assert '"demo" "1";' in internal and "limited" not in internal
    # The header counts only behind an internal key's "1:"; "12" from another key is ":12", not "1" + pin "2".
    requested = conf.split('map "$api_key_internal:$http_x_model_version" $requested_pin {')[1].split("\n    }")[0]
    assert '"~^1:(?<pin>.+)$" $pin;' in requested and 'default "";' in requested
    uri = conf.split("map $route_upstream $upstream_uri {")[1].split("\n    }")[0]
    assert f'"~^pin_" "{c.PINNED_PREDICT_PATH}";' in uri and f'default "{c.PREDICT_PATH}";' in uri
    assert "proxy_pass http://$route_upstream$upstream_uri;" in conf
    assert c.PINNED_PREDICT_PATH != c.PREDICT_PATH


def test_retry_on_stable_is_a_backup_server(tmp_path: Path) -> None:
    conf = c.render(spec(tmp_path))
    assert "server 127.0.0.1:13000 backup;" in upstream(conf, "split_4")
    assert "backup" not in upstream(conf, "split_3")  # stable has nowhere else to go
    assert "proxy_next_upstream error timeout http_502 http_503 http_504 non_idempotent;" in conf
    off = c.render(spec(tmp_path, retry_on_stable=False))
    assert "backup" not in off and "proxy_next_upstream off;" in off


def test_access_log_is_json_with_the_answering_version(tmp_path: Path) -> None:
    conf = c.render(spec(tmp_path))
    fmt = conf.split("log_format mlp_json escape=json '")[1].split("';")[0]
    for field in ("status", "api_key_name", "upstream_version", "request_time", "upstream_response_time"):
        assert f'"{field}":' in fmt
    assert '"upstream_version":"$upstream_http_x_model_version"' in fmt


def test_every_gateway_error_is_json(tmp_path: Path) -> None:
    import json

    conf = c.render(spec(tmp_path))
    bodies = re.findall(r"return (\d{3}) '(.*?)\\n';", conf)
    assert {int(s) for s, _ in bodies} >= {400, 401, 403, 404, 405, 413, 429, 502, 503, 504}
    for status, body in bodies:
        text = body.replace("\\\\", "\\").replace("\\'", "'")
        if status == "200":
            continue
        parsed = json.loads(text)
        assert parsed["status"] == int(status) and len(parsed["error"]) > 10


@pytest.mark.parametrize(
    ("weights", "live", "message"),
    [
        ({}, {3}, "no weights"),
        ({3: 90, 9: 10}, {3, 4}, "no live model server for v9"),
        ({3: 90, 4: 5}, {3, 4}, "sum to 100"),
        ({3: 110, 4: -10}, {3, 4}, "0..100"),
        ({3: 50.5, 4: 49.5}, {3, 4}, "integer percent"),
    ],
)
def test_invalid_weights_are_refused(weights: dict[int, int], live: set[int], message: str) -> None:
    with pytest.raises(c.WeightsError, match=message):
        c.validate_weights(weights, live)


def test_valid_weights_drop_zero_entries() -> None:
    assert c.validate_weights({3: 100, 4: 0}, {3, 4}) == {3: 100}


def test_stable_is_the_heaviest_and_a_tie_keeps_the_previous() -> None:
    assert c.pick_stable({3: 90, 4: 10}, None) == 3
    assert c.pick_stable({3: 10, 4: 90}, 3) == 4
    assert c.pick_stable({3: 50, 4: 50}, 4) == 4
    assert c.pick_stable({3: 50, 4: 50}, None) == 3
    assert c.pick_stable({}, 3) is None


def test_generation_changes_with_weights(tmp_path: Path) -> None:
    a = c.generation(spec(tmp_path))
    assert a == c.generation(spec(tmp_path))
    assert a != c.generation(spec(tmp_path, weights={3: 70, 4: 30}))


needs_nginx = pytest.mark.skipif(shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(), reason="nginx")


@needs_nginx
@pytest.mark.parametrize(
    ("weights", "generate_routes", "shadow"),
    [
        ({3: 80, 4: 20}, {}, None),
        ({}, {}, None),
        ({4: 100}, {}, None),
        ({3: 100}, {"/v1/models/gemma3-270m/generate": ((13050, 100),)}, None),
        ({3: 100}, {"/v1/models/oncall-rag/rag": ((13052, 90), (13055, 10))}, None),
        ({3: 100}, {}, c.ShadowSpec(4, 50, 18086)),
    ],
)
def test_nginx_accepts_the_rendered_config(
    tmp_path: Path,
    weights: dict[int, int],
    generate_routes: dict[str, tuple[tuple[int, int], ...]],
    shadow: c.ShadowSpec | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(env.STATE_DIR.name, str(tmp_path))  # the certificate and key land where spec() says
    tls.ensure()
    (tmp_path / "logs").mkdir()
    for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp_path / "tmp" / d).mkdir(parents=True)
    stable = c.pick_stable(weights, None)
    conf = tmp_path / "nginx.conf"
    rendered = spec(tmp_path, weights=weights, stable=stable, generate_routes=generate_routes, shadow=shadow)
    conf.write_text(c.render(rendered))
    result = subprocess.run(
        ["/usr/sbin/nginx", "-t", "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "logs" / "e.log")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("minimum", "protocols"), [("1.2", "TLSv1.2 TLSv1.3"), ("1.3", "TLSv1.3")])
def test_tls_only_from_the_policy_minimum(tmp_path: Path, minimum: str, protocols: str) -> None:
    conf = c.render(spec(tmp_path, tls_min_version=minimum))
    assert f"ssl_protocols {protocols};" in conf
    assert "listen 127.0.0.1:18999 ssl;" in conf
    assert f"ssl_certificate {tmp_path / 'tls' / 'gateway.pem'};" in conf


def test_an_unknown_tls_minimum_is_refused_with_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"TLSv1\.2, TLSv1\.3"):
        c.render(spec(tmp_path, tls_min_version="1.1"))


def test_plain_http_port_only_redirects(tmp_path: Path) -> None:
    """The HTTP server block names no upstream and reads no key: a 308 to the HTTPS port and nothing else."""
    conf = c.render(spec(tmp_path))
    block = re.search(r"server \{\s*listen 127\.0\.0\.1:18998;(.*?)\n    \}\n", conf, re.S)
    assert block, "no plain-HTTP server block"
    body = block.group(1)
    assert "return 308 https://$host:18999$request_uri;" in body
    for forbidden in ("proxy_pass", "api_key", "limit_req", "x_api_key"):
        assert forbidden not in body


def test_a_stalled_client_is_dropped_and_protocol_errors_get_their_own_answer(tmp_path: Path) -> None:
    conf = c.render(spec(tmp_path, client_timeout_seconds=7))
    assert "client_header_timeout 7s;" in conf and "client_body_timeout 7s;" in conf
    # nginx reports an oversized header as 494; the client gets 431 with a reason, like every other refusal.
    assert f"error_page 494 =431 {c.ERROR_PREFIX}431;" in conf and f"error_page 414 {c.ERROR_PREFIX}414;" in conf
    for status in (400, 414, 431):
        block = re.search(
            rf"location = {c.ERROR_PREFIX}{status} \{{\s*internal;\s*return {status} '(.*?)\\n';", conf, re.S
        )
        assert block is not None, status
        assert '"status": ' + str(status) in block.group(1) or f'"status":{status}' in block.group(1)


def test_a_generate_route_is_keyed_limited_and_proxied_to_its_one_server(tmp_path: Path) -> None:
    route = "/v1/models/gemma3-270m/generate"
    conf = c.render(spec(tmp_path, generate_routes={route: ((13050, 100),)}))
    block = re.search(rf"location = {re.escape(route)} \{{(.*?)\n        \}}\n", conf, re.S)
    assert block, f"no location for {route}"
    body = block.group(1)
    for check in ("return 405;", "return 401;", "return 403;", "limit_req zone=key_demo", "limit_req zone=key_limited"):
        assert check in body
    assert "proxy_pass http://catalogue_gemma3_270m_generate/generate;" in body
    assert upstream(conf, "catalogue_gemma3_270m_generate").count("server ") == 1
    assert "server 127.0.0.1:13050 weight=100 max_fails=0;" in conf
    assert 'proxy_set_header X-API-Key "";' in body  # the key stops at the gateway here too
    # Retried only when the connection failed before any answer (refused or reset): never a timeout or an answer.
    assert "proxy_next_upstream error non_idempotent;" in body and "proxy_next_upstream_tries 2;" in body
    assert "$route_upstream" not in body  # not the classifier's split
    # Routed or not changes what the gateway serves: the generation fingerprint tells the reload apart.
    assert c.generation(spec(tmp_path, generate_routes={route: ((13050, 100),)})) != c.generation(spec(tmp_path))


def test_a_catalogue_canary_splits_its_route_by_weight_and_keeps_a_failing_canary_in(tmp_path: Path) -> None:
    route = "/v1/models/oncall-rag/rag"
    split = {route: ((13052, 90), (13055, 10))}
    conf = c.render(spec(tmp_path, generate_routes=split))
    members = upstream(conf, "catalogue_oncall_rag_rag")
    assert "server 127.0.0.1:13052 weight=90 max_fails=0;" in members
    assert "server 127.0.0.1:13055 weight=10 max_fails=0;" in members  # never marked down: its errors are counted
    assert "backup" not in members  # a canary's failure is not retried on stable
    moved = {route: ((13052, 50), (13055, 50))}
    assert c.generation(spec(tmp_path, generate_routes=moved)) != c.generation(spec(tmp_path, generate_routes=split))


def test_the_shadow_phase_mirrors_a_sample_of_stables_split_traffic_to_the_relay(tmp_path: Path) -> None:
    conf = c.render(spec(tmp_path, weights={3: 100}, stable=3, shadow=c.ShadowSpec(4, 30, 18086)))
    for path in ("/classify",):
        location = conf.split(f"location = {path} {{")[1].split("\n        }")[0]
        assert f"mirror {c.SHADOW_PATH};" in location and "mirror_request_body on;" in location
    # The sample: fixed per request id, salted so that it does not coincide with the split's own draw.
    assert 'split_clients "${request_id}:shadow" $shadow_pick {\n        30% "1";\n        * "";' in conf
    # Only stable's share of the split is mirrored: a pinned request (route pin_N) never is.
    assert '"split_3:1" "1";' in conf and "pin_" not in conf.split("$shadow_mirrored {")[1].split("}")[0]
    shadow = conf.split(f"location = {c.SHADOW_PATH} {{")[1].split("\n        }")[0]
    assert "internal;" in shadow and 'if ($shadow_mirrored = "") { return 204; }' in shadow
    assert "proxy_pass http://shadow_relay/mirror;" in shadow and "proxy_set_header X-Request-ID $request_id;" in shadow
    assert "server 127.0.0.1:18086;" in upstream(conf, "shadow_relay")
    assert c.generation(spec(tmp_path, weights={3: 100}, stable=3)) != c.generation(
        spec(tmp_path, weights={3: 100}, stable=3, shadow=c.ShadowSpec(4, 30, 18086))
    ), "turning the mirror on is a new config that a reload must confirm"


def test_no_mirror_without_a_shadow_phase(tmp_path: Path) -> None:
    conf = c.render(spec(tmp_path, weights={3: 100}, stable=3))
    assert "mirror " not in conf and c.SHADOW_PATH not in conf and "shadow_relay" not in conf
