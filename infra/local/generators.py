"""The catalogue models' own servers on the local runtime: supervised `bentoml serve` processes for each catalogue
model of task `generate`, `embed` or `rag` (the classifier's versions are `infra.local.model_servers`').

A model has two slots. Slot 0 listens on `ports.catalogue_server_base + i` (its place among those models in the
catalogue), slot 1 on `catalogue_server_base + n + i`; the program is `<task>-<model>` in slot 0 and
`<task>-<model>-slot1` in slot 1. A model serves one version; during a release its candidate runs in the other slot
and the model's route is split between them by percent (`set_weights`). `start` replaces the serving version in its
own slot (ports of the embedder and the generator never move: RAG servers call them directly) or, with `beside`,
starts a release's candidate in the free slot with no traffic.

The servers started are recorded in `<state>/serving/generators.json` with their weights; the gateway routes each
model's route to its servers with traffic (`routes`). Prometheus finds every server, with or without traffic, through
`<state>/prometheus/targets/generate-servers.json` with the same `model_name`/`model_version` labels as the
classifier's servers. The order of starting, routing and stopping is `infra.local.serving`'s.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from core import contracts, endpoints, env, promql
from core.policy import CATALOGUE_SERVER_SLOTS, policy
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
    slot: int = 0
    weight: int = 100  # percent of the model's route; 0 for a release's candidate before its first step

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


def program_name(model: str, slot: int = 0) -> str:
    name = f"{policy().model(model).task}-{model}"
    return name if slot == 0 else f"{name}-slot{slot}"


def live() -> list[GenerateServer]:
    """The catalogue servers started (and not stopped)."""
    try:
        raw = json.loads(_state_path().read_text())
    except (FileNotFoundError, ValueError):
        return []
    return [
        GenerateServer(**{**entry, "extra_env": tuple(tuple(kv) for kv in entry.get("extra_env", ()))}) for entry in raw
    ]


def live_of(model: str) -> list[GenerateServer]:
    """The model's live servers, by slot."""
    return sorted((s for s in live() if s.model == model), key=lambda s: s.slot)


def weights(model: str) -> dict[int, int]:
    """Version -> percent of the model's route, for its versions with traffic."""
    return {s.version: s.weight for s in live_of(model) if s.weight > 0}


def serving_version(model: str) -> int | None:
    """The version with the largest share of the model's route (the stable one during a release), None when none."""
    shares = weights(model)
    return max(shares, key=lambda v: shares[v]) if shares else None


def routes() -> dict[str, tuple[tuple[int, int], ...]]:
    """Public route -> (port, percent) of each live server with traffic: what the gateway proxies."""
    out: dict[str, list[tuple[int, int]]] = {}
    for s in sorted(live(), key=lambda s: s.port):
        if s.weight > 0:
            out.setdefault(s.route, []).append((s.port, s.weight))
    return {route: tuple(servers) for route, servers in out.items()}


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
        "BENTOML_HOME": str(sub("serving") / "bentoml" / program_name(server.model, server.slot)),
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
        name=program_name(server.model, server.slot),
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
    beside: bool = False,
) -> GenerateServer:
    """Start the server of catalogue model `model` (task generate, embed or rag) on `version` and wait until it is
    ready; then record it (the gateway routes what is recorded: `infra.local.serving` re-renders it after this).

    It serves registry version `version` (fetched and verified here first, so a bad version fails with the
    registry's reason), or the packaged `model_dir` labelled `version`. Without `beside` it replaces the serving
    version in that version's slot and takes all the traffic (the other slot is left unrecorded for
    `remove_unrecorded`); with `beside` it starts in the free slot with no traffic, beside the serving version (a
    release's candidate). A server that does not become ready is removed and never recorded."""
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
    with locked(_lock()):
        current = live_of(model)
        slot, weight = _place(model, version, current, beside)
        port = p.catalogue_server_port(model, slot)
        server = GenerateServer(model, version, folder, port, entry.task, extra, slot, weight)
        prog = program(server)
        ensure_program(prog)
        try:
            wait_healthy(prog, timeout=timeout)
        except Exception as exc:
            remove_program(prog.name)
            _record([s for s in live() if (s.model, s.slot) != (model, slot)])
            raise GeneratorError(
                f"the {entry.task} server of {model} did not become ready: {exc}\nSee runbooks/model-fails-to-load.md"
            ) from exc
        others = [s for s in live() if s.model != model]
        kept = [s for s in current if s.slot != slot] if beside else []
        _record([*others, *kept, server])
    return server


def _place(model: str, version: int, current: list[GenerateServer], beside: bool) -> tuple[int, int]:
    """(slot, percent) of `version`: in place if it is live; beside: the free slot, with no traffic while another
    version serves; otherwise the serving version's slot, with all the traffic."""
    same = next((s for s in current if s.version == version), None)
    if beside:
        if same is not None:
            return same.slot, same.weight
        free = sorted(set(range(CATALOGUE_SERVER_SLOTS)) - {s.slot for s in current})
        if not free:
            live_versions = ", ".join(f"v{s.version}" for s in current)
            raise GeneratorError(
                f"{model} already runs two versions ({live_versions}): finish or abort its release first "
                f"(`mlp release resume --model {model}` / `mlp release abort --model {model}`)"
            )
        return free[0], 0 if current else 100
    if same is not None:
        return same.slot, 100
    serving = max(current, key=lambda s: s.weight, default=None)
    return (serving.slot if serving is not None else 0), 100


def set_weights(model: str, weights: dict[int, int]) -> None:
    """Split the model's route: percent per live version, whole numbers summing to 100 (absent versions get 0)."""
    with locked(_lock()):
        current = live_of(model)
        versions = {s.version for s in current}
        unknown = sorted(set(weights) - versions)
        if unknown:
            raise GeneratorError(f"{model} has no live server for v{unknown[0]} (live: {sorted(versions)})")
        if any(w < 0 for w in weights.values()) or sum(weights.values()) != 100:
            raise GeneratorError(f"weights must be percents summing to 100, not {weights}")
        updated = [replace(s, weight=weights.get(s.version, 0)) for s in current]
        _record([*(s for s in live() if s.model != model), *updated])


def unrecord(model: str, version: int | None = None) -> None:
    """Take the model's server of `version` (default: every one) off the live list: the gateway stops routing it once
    re-rendered; it keeps running until `remove_unrecorded`. A version that still has traffic while another version
    of the model is live is refused: move its weight first."""
    with locked(_lock()):
        current = live_of(model)
        if not current or (version is not None and version not in {s.version for s in current}):
            what = model if version is None else f"{model} v{version}"
            raise GeneratorError(f"no server of {what} is running (running: {[(s.model, s.version) for s in live()]})")
        going = [s for s in current if version is None or s.version == version]
        staying = [s for s in current if s not in going]
        if staying and any(s.weight > 0 for s in going):
            raise GeneratorError(
                f"{model} v{version} still has {going[0].weight}% of the traffic; move it to "
                f"v{staying[0].version} first"
            )
        _record([s for s in live() if s not in going])


def remove_unrecorded(model: str) -> None:
    """Stop the model's server processes in slots no live version holds (TERM: the request in flight finishes)."""
    with locked(_lock()):
        held = {s.slot for s in live_of(model)}
        for slot in range(CATALOGUE_SERVER_SLOTS):
            if slot not in held:
                remove_program(program_name(model, slot))


def _lock() -> Path:
    return sub("serving") / ".generators.lock"
