"""Single-version servers of the local runtime: one supervised `bentoml serve` per catalogue model of task
`generate`, `embed` or `rag` (the classifier's versions are `infra.local.model_servers`', behind the canary).

Such a model's server listens on `ports.catalogue_server_base + i` (its place among those models in the catalogue),
runs the task's service (`core.contracts.SERVICE_REFS`) as the program `<task>-<model>`, and is routed by the gateway
at `/v1/models/<model>/<task>` once it is ready. The servers started are recorded in
`<state>/serving/generators.json`; Prometheus finds them through `<state>/prometheus/targets/generate-servers.json`
with the same `model_name`/`model_version` labels as the
classifier's servers. The order of starting, routing and stopping is `infra.local.serving`'s.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from core import contracts, endpoints, env, promql
from core.policy import policy
from infra.local import registry_auth, s3
from infra.local.files import atomic_write_text, locked
from infra.local.paths import REPO_ROOT, model_cache, state_dir, sub
from infra.local.secrets import artifact_public_key
from infra.local.supervisor import VENV_BIN, Program, ensure_program, remove_program, wait_healthy
from services.model_runtime.classifier import CONFIG_FILE
from services.model_runtime.generator import GENERATOR_CONFIG
from services.model_runtime.rag import RAG_CONFIG

OWN_SERVER_TASKS = ("generate", "embed", "rag")
# The file that makes a folder a packaged model of the task (what `--path` must point at).
PACKAGED_MARKERS = {"generate": GENERATOR_CONFIG, "embed": CONFIG_FILE, "rag": RAG_CONFIG}


class GeneratorError(RuntimeError):
    """A catalogue model's server could not be started or stopped; the message says why and what to do."""


@dataclass(frozen=True)
class GenerateServer:
    model: str
    version: int
    model_dir: str  # a packaged folder served as is; "": the registry version `version`, fetched and verified
    port: int
    task: str = "generate"
    extra_env: tuple[tuple[str, str], ...] = ()  # e.g. a RAG server's embedder and generator URLs

    @property
    def url(self) -> str:
        return f"http://{endpoints.HOST}:{self.port}"

    @property
    def route(self) -> str:
        return contracts.model_route(self.model, self.task)


def _state_path() -> Path:
    return sub("serving") / "generators.json"


def targets_path() -> Path:
    return state_dir() / "prometheus" / "targets" / "generate-servers.json"


def program_name(model: str) -> str:
    return f"{policy().model(model).task}-{model}"


def live() -> list[GenerateServer]:
    """The generate servers started (and not stopped), by model."""
    try:
        raw = json.loads(_state_path().read_text())
    except (FileNotFoundError, ValueError):
        return []
    return [
        GenerateServer(**{**entry, "extra_env": tuple(tuple(kv) for kv in entry.get("extra_env", ()))}) for entry in raw
    ]


def routes() -> dict[str, int]:
    """Public route -> port of each live generate server: what the gateway proxies."""
    return {s.route: s.port for s in live()}


def _record(servers: list[GenerateServer]) -> None:
    atomic_write_text(_state_path(), json.dumps([s.__dict__ for s in servers], indent=2) + "\n")
    targets = [
        {
            "targets": [f"{endpoints.HOST}:{s.port}"],
            "labels": {"model_name": s.model, "model_version": str(s.version), "job": promql.MODEL_SERVER_JOB},
        }
        for s in servers
    ]
    atomic_write_text(targets_path(), json.dumps(targets, indent=2) + "\n")  # Prometheus watches the folder


def program(server: GenerateServer) -> Program:
    server_env = {
        env.MODEL_NAME.name: server.model,
        env.MODEL_VERSION.name: str(server.version),
        # Its own BENTOML_HOME: BentoML's Prometheus multiprocess files must not mix with another server's.
        "BENTOML_HOME": str(sub("serving") / "bentoml" / program_name(server.model)),
        "BENTOML_DO_NOT_TRACK": "True",
        env.STATE_DIR.name: str(state_dir()),
        env.PORT_OFFSET.name: str(env.PORT_OFFSET.get()),
        **dict(server.extra_env),
    }
    secret_env: dict[str, str] = {}
    if server.model_dir:
        server_env[env.MODEL_DIR.name] = server.model_dir
    else:  # from the registry, as a classifier's server: read-only identity, verified against the signing key
        auth_env, auth_secret_env = registry_auth.program_env(contracts.REGISTRY_MODEL_SERVER)
        server_env.update(
            {
                **s3.client_env(),
                **auth_env,
                "MLFLOW_TRACKING_URI": endpoints.mlflow_url(),
                env.MODEL_CACHE.name: str(model_cache()),
                env.ARTIFACT_PUBLIC_KEY.name: artifact_public_key(),
            }
        )
        secret_env = {**s3.SECRET_ENV, **auth_secret_env}
    if env.POLICY.is_set():
        server_env[env.POLICY.name] = str(env.POLICY.get())
    return Program(
        name=program_name(server.model),
        command=[
            str(VENV_BIN / "bentoml"),
            "serve",
            contracts.service_ref(server.task),
            "--port",
            str(server.port),
            "--host",
            endpoints.HOST,
        ],
        env=server_env,
        secret_env=secret_env,
        cwd=REPO_ROOT,
        priority=40,
        stopsignal="TERM",  # BentoML finishes the request in flight
        stopwaitsecs=20,
        startsecs=3,
        health_url=f"{server.url}{contracts.READINESS_ROUTE}",
    )


def start(
    model: str,
    version: int,
    model_dir: Path | None = None,
    timeout: float = 180,
    extra_env: dict[str, str] | None = None,
) -> GenerateServer:
    """Start (or restart) the server of catalogue model `model` (task generate, embed or rag) and wait until it is
    ready; then record it (the gateway routes what is recorded: `infra.local.serving` re-renders it after this). It
    serves registry version `version` (fetched and verified here first, so a bad version fails with the registry's
    reason), or the packaged `model_dir` labelled `version`. A server that does not become ready is removed and never
    recorded."""
    p = policy()
    entry = p.model(model)
    if entry.task not in OWN_SERVER_TASKS:
        raise GeneratorError(
            f"{model} is a {entry.task} model, served by versioned model servers behind the canary (`mlp serve start`)"
        )
    marker = PACKAGED_MARKERS[entry.task]
    if model_dir is not None and not (model_dir / marker).is_file():
        raise GeneratorError(f"{model_dir} is not a packaged {entry.task} model (no {marker})")
    if model_dir is None:
        from services.registry.client import RegistryError, download_version

        try:
            download_version(version, model, cache_root=model_cache())
        except RegistryError as exc:
            raise GeneratorError(f"cannot serve {model} v{version}: {exc}") from exc
    folder = str(model_dir.resolve()) if model_dir is not None else ""
    extra = tuple(sorted((extra_env or {}).items()))
    server = GenerateServer(model, version, folder, p.catalogue_server_port(model), entry.task, extra)
    with locked(_lock()):
        prog = program(server)
        ensure_program(prog)
        try:
            wait_healthy(prog, timeout=timeout)
        except Exception as exc:
            remove_program(prog.name)
            raise GeneratorError(
                f"the {entry.task} server of {model} did not become ready: {exc}\nSee runbooks/model-fails-to-load.md"
            ) from exc
        _record([*(s for s in live() if s.model != model), server])
    return server


def unrecord(model: str) -> None:
    """Take the model's server off the live list (the gateway stops routing it once re-rendered); it keeps
    running until `remove`."""
    with locked(_lock()):
        if not any(s.model == model for s in live()):
            raise GeneratorError(f"no server of {model} is running (running: {[s.model for s in live()]})")
        _record([s for s in live() if s.model != model])


def remove(model: str) -> None:
    """Stop the model's server process (TERM: the request in flight finishes)."""
    with locked(_lock()):
        remove_program(program_name(model))


def _lock() -> Path:
    return sub("serving") / ".generators.lock"
