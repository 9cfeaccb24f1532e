"""Model servers of the local runtime: one supervised `bentoml serve` per live model version.

Each live version holds a slot (persisted in `<state>/serving/slots.json`); its port is
`ports.model_server_base + slot`, its program `model-v<version>`. Starting or stopping one server never touches
another. Every start and stop rewrites the Prometheus file_sd targets (`<state>/prometheus/targets/model-servers.json`)
with the labels `model_name`, `model_version`, `job`. Routing to them is the gateway's job, and the order of the
two (start, then route; unroute, drain, then stop) is `infra.local.serving`'s.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from core import contracts, endpoints, env, promql
from core.policy import policy
from infra.local import registry_auth, s3
from infra.local.files import atomic_write_text, locked
from infra.local.paths import REPO_ROOT, model_cache, state_dir, sub
from infra.local.secrets import artifact_public_key
from infra.local.supervisor import VENV_BIN, Program, ensure_program, remove_program, wait_healthy

SERVICE_REF = contracts.CLASSIFY_SERVICE_REF


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
    return sub("serving")


def slots_path() -> Path:
    return serving_dir() / "slots.json"


def targets_path() -> Path:
    return state_dir() / "prometheus" / "targets" / "model-servers.json"


def _lock() -> Path:
    return serving_dir() / ".lock"


def _read_slots() -> dict[int, int]:
    try:
        return {int(v): int(s) for v, s in json.loads(slots_path().read_text()).items()}
    except (FileNotFoundError, ValueError):
        return {}


def _write_slots(slots: dict[int, int]) -> None:
    atomic_write_text(slots_path(), json.dumps({str(v): s for v, s in sorted(slots.items())}, indent=2) + "\n")


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
    server_env = {
        **s3.client_env(),
        env.MODEL_VERSION.name: str(version),
        "MLFLOW_TRACKING_URI": endpoints.mlflow_url(),
        # One BENTOML_HOME per version: BentoML keeps its Prometheus multiprocess files under it, and a shared
        # dir makes every server's /metrics report the sum of all servers (canary and stable indistinguishable).
        "BENTOML_HOME": str(serving_dir() / "bentoml" / f"v{version}"),
        "BENTOML_DO_NOT_TRACK": "True",  # no usage reporting (and no internet here)
        env.MODEL_CACHE.name: str(model_cache()),  # the cache `infra.local.serving` fetched the version into
        env.ARTIFACT_PUBLIC_KEY.name: artifact_public_key(),  # verifies the version before it is loaded (not secret)
        env.STATE_DIR.name: str(state_dir()),
        env.PORT_OFFSET.name: str(env.PORT_OFFSET.get()),
    }
    if env.POLICY.is_set():
        server_env[env.POLICY.name] = str(env.POLICY.get())
    # Read-only registry identity; its password is resolved from the secret store inside the process only.
    auth_env, auth_secret_env = registry_auth.program_env(contracts.REGISTRY_MODEL_SERVER)
    server_env.update(auth_env)
    return Program(
        name=program_name(version),
        command=[str(VENV_BIN / "bentoml"), "serve", SERVICE_REF, "--port", str(port), "--host", endpoints.HOST],
        env=server_env,
        secret_env={**s3.SECRET_ENV, **auth_secret_env},
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
    name = policy().release.default_model
    targets = [
        {
            "targets": [f"{endpoints.HOST}:{s.port}"],
            "labels": {"model_name": name, "model_version": str(s.version), "job": promql.MODEL_SERVER_JOB},
        }
        for s in live_model_servers()
    ]
    atomic_write_text(targets_path(), json.dumps(targets, indent=2) + "\n")  # Prometheus watches the file


# ---------------------------------------------------------------- API


def live_model_servers() -> list[ModelServer]:
    """Versions with a configured server (started and not stopped), by version."""
    return [_server(v, s) for v, s in sorted(_read_slots().items())]


def live_ports() -> dict[int, int]:
    """version -> port of each live server: what the gateway routes to."""
    return {s.version: s.port for s in live_model_servers()}


def start(version: int) -> ModelServer:
    """Give `version` a slot and make sure its program runs (idempotent); returns without waiting for it."""
    with locked(_lock()):
        slots = _read_slots()
        if version not in slots:
            slots[version] = _free_slot(slots)
            _write_slots(slots)
        server = _server(version, slots[version])
        ensure_program(model_server_program(version, server.port))
        write_targets()
    return server


def wait_ready(server: ModelServer, timeout: float) -> None:
    """Block until the server's `/readyz` answers 200 (model loaded and warmed up)."""
    try:
        wait_healthy(model_server_program(server.version, server.port), timeout=timeout)
    except Exception as exc:
        raise ModelServerError(
            f"the server of v{server.version} did not become ready: {exc}\nSee runbooks/model-fails-to-load.md"
        ) from exc


def release_slot(version: int) -> None:
    """Take `version` off the live list; its process keeps running (and answering) until `remove`."""
    with locked(_lock()):
        slots = _read_slots()
        slots.pop(version, None)
        _write_slots(slots)


def remove(version: int) -> None:
    """Stop the server's process and drop it from the Prometheus targets."""
    with locked(_lock()):
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
