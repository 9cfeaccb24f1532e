"""The nginx gateway of the local runtime: a supervised program, its rendered config, and the traffic weights.

It routes to the live model servers it is GIVEN (`live`: version -> port) and knows nothing of how they start or
stop; `infra.local.serving` calls it after each change.

- `program(live)` renders `<state>/gateway/nginx.conf` and returns the nginx program (foreground, own prefix).
- `set_weights({3: 90, 4: 10}, live)` validates (live versions, integer percents summing to 100), renders the
  config, checks it with `nginx -t`, installs it atomically and reloads nginx gracefully (in-flight requests finish
  on the old workers; model servers are never restarted), then waits until `/healthz` reports the new generation.
  Weights persist in `<state>/gateway/weights.json`, so a restart of nginx or of the machine keeps them.
- `stable_version(live)`: the version with the highest weight, fixed when the weights are set (a tie keeps the
  previous stable). It is the retry target when another version's server fails (docs/serving.md).
- TLS: every render first makes sure the server certificate is valid for a while yet (`infra.local.tls.ensure`,
  re-issued near expiry), so a start or reload serves a good one. Plain HTTP on `ports.gateway_http` is redirected.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from core import contracts, endpoints
from core.policy import policy
from infra.local import generators, tls
from infra.local.files import atomic_write_text, locked
from infra.local.nginx import (
    ERROR_LOG,
    HEALTH_PATH,
    GatewaySpec,
    KeyLimit,
    ShadowSpec,
    WeightsError,
    generation,
    pick_stable,
    render,
    validate_weights,
)
from infra.local.paths import logs_dir, sub
from infra.local.secrets import api_key, sha256_hex
from infra.local.supervisor import Program

NGINX = "/usr/sbin/nginx"
JS_DIR = Path(__file__).resolve().parent / "njs"  # auth.js: hashes the presented API key for the map lookup
PROGRAM = "gateway"
TMP_DIRS = ("body", "proxy", "fastcgi", "uwsgi", "scgi")

Live = Mapping[int, int]  # version -> port of each live model server

__all__ = [
    "GatewayError",
    "WeightsError",
    "current_shadow",
    "current_weights",
    "program",
    "refresh",
    "set_shadow",
    "set_weights",
    "stable_version",
]


class GatewayError(RuntimeError):
    """nginx refused the config or did not pick it up; the message carries nginx's words."""


# ---------------------------------------------------------------- state


def gateway_dir() -> Path:
    return sub("gateway")


def conf_path() -> Path:
    return gateway_dir() / "nginx.conf"


def weights_path() -> Path:
    return gateway_dir() / "weights.json"


def shadow_path() -> Path:
    return gateway_dir() / "shadow.json"


def current_shadow() -> tuple[int, int] | None:
    """(candidate version, percent of stable's split traffic mirrored to it) while a shadow phase is on."""
    try:
        raw: dict[str, Any] = json.loads(shadow_path().read_text())
        return int(raw["version"]), int(raw["share_percent"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def _locked() -> AbstractContextManager[None]:
    """One writer at a time (CLI, release executor, model-server start/stop)."""
    return locked(gateway_dir() / ".lock")


def _read_state() -> tuple[dict[int, int], int | None]:
    try:
        raw: dict[str, Any] = json.loads(weights_path().read_text())
    except (FileNotFoundError, ValueError):
        return {}, None
    weights = {int(v): int(w) for v, w in raw.get("weights", {}).items() if int(w) > 0}
    stable = raw.get("stable")
    return weights, int(stable) if stable is not None else None


def _write_state(weights: Mapping[int, int], stable: int | None) -> None:
    data = {"weights": {str(v): w for v, w in sorted(weights.items())}, "stable": stable, "updated": time.time()}
    atomic_write_text(weights_path(), json.dumps(data, indent=2) + "\n")


# ---------------------------------------------------------------- public API


def current_weights(live: Live) -> dict[int, int]:
    """Percent per version that receives traffic now (versions at 0% are left out)."""
    weights, _ = _read_state()
    return {v: w for v, w in weights.items() if v in live}


def stable_version(live: Live) -> int | None:
    weights, stable = _read_state()
    if stable is not None and stable in live:
        return stable
    return pick_stable({v: w for v, w in weights.items() if v in live}, None)


def set_weights(weights: dict[int, int], live: Live) -> None:
    """Route `weights` (percent per live version, summing to 100) and reload nginx gracefully."""
    with _locked():
        clean = validate_weights(weights, set(live))
        _, previous = _read_state()
        _apply(clean, pick_stable(clean, previous), live)


def set_shadow(version: int | None, share_percent: int, live: Live) -> None:
    """Mirror `share_percent` of stable's split traffic to `version` through the shadow relay (None: stop
    mirroring), and reload nginx. The weights are unchanged: clients keep getting stable's answers."""
    with _locked():
        if version is None:
            shadow_path().unlink(missing_ok=True)
        else:
            if version not in live:
                raise WeightsError(f"no live model server for v{version}: start it before mirroring to it")
            data = {"version": version, "share_percent": share_percent, "updated": time.time()}
            atomic_write_text(shadow_path(), json.dumps(data, indent=2) + "\n")
        weights, stable = _read_state()
        kept = {v: w for v, w in weights.items() if v in live}
        _apply(kept, stable if stable in live else pick_stable(kept, None), live)


def refresh(live: Live) -> None:
    """Re-render after a model server started or stopped (pins and retry targets change); weights are kept."""
    with _locked():
        weights, stable = _read_state()
        kept = {v: w for v, w in weights.items() if v in live}
        if kept and sum(kept.values()) != 100:
            # A weighted version vanished (stopped by hand): its share goes to the stable one left.
            top = pick_stable(kept, stable)
            assert top is not None
            kept[top] += 100 - sum(kept.values())
        _apply(kept, pick_stable(kept, stable) if kept else None, live)


def is_running() -> bool:
    pid = _pid()
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def program(live: Live) -> Program:
    weights, stable = _read_state()
    kept = {v: w for v, w in weights.items() if v in live}
    write_config(spec(kept, stable if stable in live else pick_stable(kept, None), live))
    return Program(
        name=PROGRAM,
        command=[
            NGINX,
            "-p",
            str(gateway_dir()),
            "-c",
            str(conf_path()),
            "-e",
            str(logs_dir() / ERROR_LOG),
            "-g",
            "daemon off;",
        ],
        priority=50,
        stopsignal="QUIT",  # graceful: finish in-flight requests
        stopwaitsecs=15,
        health_url=f"{endpoints.gateway_url()}{HEALTH_PATH}",
        health_cafile=tls.ca_bundle(),
    )


# ---------------------------------------------------------------- rendering and reload


def spec(weights: Mapping[int, int], stable: int | None, servers: Mapping[int, int]) -> GatewaySpec:
    p = policy()
    cert = tls.ensure(p.gateway.tls)
    keys = tuple(
        KeyLimit(k.name, sha256_hex(api_key(k.name)), k.rate_per_second, k.burst, k.internal)
        for k in p.gateway.api_keys
    )
    return GatewaySpec(
        port=p.ports.gateway,
        prefix=gateway_dir(),
        logs_dir=logs_dir(),
        js_dir=JS_DIR,
        keys=keys,
        max_request_bytes=p.gateway.max_request_bytes,
        pin_header=contracts.PIN_HEADER,
        # The local runtime serves the default model: its catalogue route and the compatibility one.
        predict_paths=(contracts.PREDICT_ROUTE, contracts.model_route(p.release.default_model, "classify")),
        upstream_timeout_seconds=p.gateway.upstream_timeout_seconds,
        client_timeout_seconds=p.gateway.client_timeout_seconds,
        retry_on_stable=p.gateway.retry_on_stable,
        http_port=p.ports.gateway_http,
        tls_cert=cert.cert,
        tls_key=cert.key,
        tls_min_version=p.gateway.tls.min_version,
        servers=dict(servers),
        generate_routes=generators.routes(),
        weights=dict(weights),
        stable=stable,
        shadow=_shadow_spec(stable, servers),
        # nginx started as root runs its workers as `nobody`; they write only the temp dirs.
        worker_user="nobody nogroup" if os.geteuid() == 0 else None,
    )


def _shadow_spec(stable: int | None, servers: Mapping[int, int]) -> ShadowSpec | None:
    """The recorded shadow phase, while its candidate is live and is not the stable version itself."""
    shadow = current_shadow()
    if shadow is None or shadow[0] not in servers or shadow[0] == stable:
        return None
    return ShadowSpec(shadow[0], shadow[1], policy().ports.shadow_relay)


def write_config(gateway: GatewaySpec) -> Path:
    """Render and install the config (atomic; checked with `nginx -t` first). Unchanged files are left alone."""
    _make_tmp_dirs(gateway)
    text = render(gateway)
    if conf_path().exists() and conf_path().read_text() == text:
        return conf_path()
    # Checked under its own name first, then renamed into place: nginx never reads a config `nginx -t` refused.
    candidate = conf_path().with_name("nginx.conf.new")
    candidate.write_text(text)
    result = _nginx("-t", "-q", "-c", str(candidate))
    if result.returncode != 0:
        raise GatewayError(f"nginx rejected the rendered config {candidate}: {result.stderr.strip()}")
    os.replace(candidate, conf_path())
    return conf_path()


def _apply(weights: dict[int, int], stable: int | None, live: Live) -> None:
    gateway = spec(weights, stable, live)
    write_config(gateway)
    _write_state(weights, stable)
    if is_running():
        reload(generation(gateway))


def reload(expected_generation: str, timeout: float = 15.0) -> None:
    """`nginx -s reload` (graceful), then wait until new workers answer with the expected generation."""
    result = _nginx("-s", "reload", "-c", str(conf_path()))
    if result.returncode != 0:
        raise GatewayError(f"nginx reload failed: {result.stderr.strip()} (see {logs_dir() / ERROR_LOG})")
    deadline = time.monotonic() + timeout
    confirmed, seen = 0, ""
    while time.monotonic() < deadline:
        seen = _served_generation()
        # Old workers may still take a connection for a moment after the signal: confirm a few times.
        confirmed = confirmed + 1 if seen == expected_generation else 0
        if confirmed >= 3:
            return
        time.sleep(0.05)
    raise GatewayError(
        f"nginx did not pick up the new config within {timeout:.0f}s (serving generation {seen or 'unknown'}, "
        f"expected {expected_generation}); see {logs_dir() / ERROR_LOG}"
    )


def _served_generation() -> str:
    try:
        url, context = f"{endpoints.gateway_url()}{HEALTH_PATH}", tls.client_context()
        with urllib.request.urlopen(url, timeout=2, context=context) as resp:
            return str(json.loads(resp.read()).get("generation", ""))
    except (urllib.error.URLError, OSError, ValueError):
        return ""


def _nginx(*args: str) -> subprocess.CompletedProcess[str]:
    base = [NGINX, "-p", str(gateway_dir()), "-e", str(logs_dir() / ERROR_LOG)]
    return subprocess.run([*base, *args], capture_output=True, text=True, timeout=30)


def _pid() -> int | None:
    try:
        return int((gateway_dir() / "nginx.pid").read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _make_tmp_dirs(gateway: GatewaySpec) -> None:
    for name in TMP_DIRS:
        path = gateway.prefix / "tmp" / name
        path.mkdir(parents=True, exist_ok=True)
        if gateway.worker_user:
            shutil.chown(path, user=gateway.worker_user.split()[0])
