"""Model servers of the local runtime: one supervised `bentoml serve` per live model version.

Each live version holds a slot (persisted in `<state>/serving/slots.json`); its port is
`ports.model_server_base + slot`, its program `model-v<version>`. Starting or stopping one server never touches
another, nor the gateway's weights: the gateway is re-rendered (pins, retry target) and reloaded gracefully.
Every start and stop rewrites the Prometheus file_sd targets (`<state>/prometheus/targets/model-servers.json`)
with the labels `model_name`, `model_version`, `job`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from core import env, promql
from core.policy import policy
from infra.local import endpoints
from infra.local.paths import REPO_ROOT, state_dir
from infra.local.supervisor import VENV_BIN, Program, ensure_program, remove_program, wait_healthy

SERVICE_REF = "services.model_server.service:ModelService"


class ModelServerError(RuntimeError):
    """A model server could not be started or stopped; the message says why and what to do."""


@dataclass(frozen=True)
class ModelServer:
    version: int
    port: int
    program: str
    url: str


# ---------------------------------------------------------------- slots


def serving_dir() -> Path:
    path = state_dir() / "serving"
    path.mkdir(parents=True, exist_ok=True)
    return path


def slots_path() -> Path:
    return serving_dir() / "slots.json"


def targets_path() -> Path:
    return state_dir() / "prometheus" / "targets" / "model-servers.json"


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    with open(serving_dir() / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_slots() -> dict[int, int]:
    try:
        return {int(v): int(s) for v, s in json.loads(slots_path().read_text()).items()}
    except (FileNotFoundError, ValueError):
        return {}


def _write_slots(slots: dict[int, int]) -> None:
    _atomic_write(slots_path(), json.dumps({str(v): s for v, s in sorted(slots.items())}, indent=2) + "\n")


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # Prometheus watches the file: never show it half-written


def _free_slot(slots: dict[int, int]) -> int:
    used = set(slots.values())
    for slot in range(policy().ports.model_server_slots):
        if slot not in used:
            return slot
    live = ", ".join(f"v{v}" for v in sorted(slots))
    raise ModelServerError(
        f"all {policy().ports.model_server_slots} model server slots are in use ({live}); "
        "stop a version first (`mlp serve stop VERSION`) or raise ports.model_server_slots in policy.yaml"
    )


def _server(version: int, slot: int) -> ModelServer:
    port = endpoints.model_server_port(slot)
    return ModelServer(version, port, program_name(version), f"http://{endpoints.HOST}:{port}")


def program_name(version: int) -> str:
    return f"model-v{version}"


# ---------------------------------------------------------------- programs


def model_server_program(version: int, port: int) -> Program:
    from infra.local.stack import S3_SECRET_ENV, s3_env

    server_env = {
        **s3_env(),
        env.MODEL_VERSION.name: str(version),
        "MLFLOW_TRACKING_URI": endpoints.mlflow_url(),
        # One BENTOML_HOME per version: BentoML keeps its Prometheus multiprocess files under it, and a shared
        # dir makes every server's /metrics report the sum of all servers (canary and stable indistinguishable).
        "BENTOML_HOME": str(serving_dir() / "bentoml" / f"v{version}"),
        "BENTOML_DO_NOT_TRACK": "True",  # no usage reporting (and no internet here)
        env.STATE_DIR.name: str(state_dir()),  # the model cache and secrets of this environment
        env.PORT_OFFSET.name: str(env.PORT_OFFSET.get()),
    }
    if env.POLICY.is_set():
        server_env[env.POLICY.name] = str(env.POLICY.get())
    return Program(
        name=program_name(version),
        command=[str(VENV_BIN / "bentoml"), "serve", SERVICE_REF, "--port", str(port), "--host", endpoints.HOST],
        env=server_env,
        secret_env=S3_SECRET_ENV,
        cwd=REPO_ROOT,
        priority=40,
        stopsignal="TERM",  # BentoML finishes in-flight requests and flushes the inference log
        stopwaitsecs=20,
        startsecs=3,
        health_url=f"http://{endpoints.HOST}:{port}/readyz",
    )


def model_server_programs() -> list[Program]:
    """Programs of the model servers that are configured now (for `mlp env status`)."""
    return [model_server_program(s.version, s.port) for s in live_model_servers()]


def write_targets() -> None:
    """Prometheus file_sd: one target per live model server, labelled with its model and version."""
    name = policy().release.model_name
    targets = [
        {
            "targets": [f"{endpoints.HOST}:{s.port}"],
            "labels": {"model_name": name, "model_version": str(s.version), "job": promql.MODEL_SERVER_JOB},
        }
        for s in live_model_servers()
    ]
    _atomic_write(targets_path(), json.dumps(targets, indent=2) + "\n")


# ---------------------------------------------------------------- API


def live_model_servers() -> list[ModelServer]:
    """Versions with a configured server (started and not stopped), by version."""
    return [_server(v, s) for v, s in sorted(_read_slots().items())]


def start_model_server(version: int, wait: bool = True, timeout: float = 180) -> ModelServer:
    """Start (idempotent) the server of `version`; with `wait`, return once `/readyz` answers 200.

    The version's artifacts are fetched here first, so a bad version fails in the caller with the registry's
    message instead of inside a restarting server. The first live version gets 100% of the traffic.
    """
    from pipelines.registry.client import RegistryError, download_version
    from services.gateway import local as gateway

    try:
        download_version(version)
    except RegistryError as exc:
        raise ModelServerError(f"cannot start a server for v{version}: {exc}") from exc
    with _locked():
        slots = _read_slots()
        if version not in slots:
            slots[version] = _free_slot(slots)
            _write_slots(slots)
        server = _server(version, slots[version])
        program = model_server_program(version, server.port)
        ensure_program(program)
        write_targets()
    if wait:
        try:
            wait_healthy(program, timeout=timeout)
        except Exception as exc:
            raise ModelServerError(
                f"the server of v{version} did not become ready: {exc}\nSee runbooks/model-fails-to-load.md"
            ) from exc
    gateway.refresh()
    if not gateway.current_weights() and (not wait or is_ready(version)):
        gateway.set_weights({version: 100})  # the first live version takes all traffic
    return server


def stop_model_server(version: int, drain_seconds: float = 0) -> None:
    """Take `version` out of the gateway, let in-flight requests finish for `drain_seconds`, then stop it.

    A version that still receives traffic while another version is live is refused: move its weight first
    (`mlp serve weights`), so stopping a server never drops requests.
    """
    from services.gateway import local as gateway

    weights = gateway.current_weights()
    others = [s.version for s in live_model_servers() if s.version != version]
    if weights.get(version, 0) > 0 and others:
        raise ModelServerError(
            f"v{version} still receives {weights[version]}% of the traffic; move it first, e.g. "
            f"`mlp serve weights {others[0]}=100`, then stop v{version}"
        )
    with _locked():
        slots = _read_slots()
        slots.pop(version, None)
        _write_slots(slots)
    gateway.refresh()  # no route to it from here on; requests already proxied finish
    if drain_seconds > 0:
        time.sleep(drain_seconds)
    with _locked():
        remove_program(program_name(version))
        write_targets()


def is_ready(version: int, timeout: float = 2.0) -> bool:
    slot = _read_slots().get(version)
    if slot is None:
        return False
    url = f"{_server(version, slot).url}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError):
        return False
