"""The serving controller of the local runtime: start a version's server, then route to it; unroute, drain, stop.

What the CLI (`mlp serve`), the release executor (`LocalServing`, its `Serving`) and the tests call. It owns the
order between the model servers (`infra.local.model_servers`) and the gateway (`infra.local.gateway`), which
never call each other: the gateway is handed the live servers after every change.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.policy import policy
from infra.local import gateway, generators, model_servers, shadow_relay
from infra.local.gateway import GatewayError
from infra.local.model_servers import ModelServer, ModelServerError, is_ready, live_model_servers, program_name
from infra.local.paths import model_cache
from infra.local.supervisor import Program, ensure_program, remove_program, wait_healthy

__all__ = [
    "CatalogueServing",
    "GatewayError",
    "LocalServing",
    "ModelServer",
    "ModelServerError",
    "ServerStatus",
    "current_weights",
    "gateway_program",
    "is_ready",
    "live_model_servers",
    "program_name",
    "resolve",
    "set_weights",
    "stable_version",
    "start_catalogue_server",
    "start_model_server",
    "start_shadow",
    "status",
    "stop_catalogue_server",
    "stop_model_server",
    "stop_shadow",
]


def resolve(ref: str | int) -> int:
    """A version number from a number or an alias (`champion`); ModelServerError names the registry's reason."""
    from services.registry.client import RegistryError, resolve_version  # MLflow loads only when needed

    try:
        return resolve_version(ref)
    except RegistryError as exc:
        raise ModelServerError(str(exc)) from exc


def start_model_server(version: int, wait: bool = True, timeout: float = 180) -> ModelServer:
    """Start (idempotent) the server of `version`; with `wait`, return once `/readyz` answers 200.

    The version's artifacts are fetched here first, so a bad version fails in the caller with the registry's
    message instead of inside a restarting server. The first live version gets 100% of the traffic.
    """
    from services.registry.client import RegistryError, download_version

    try:
        download_version(version, cache_root=model_cache())
    except RegistryError as exc:
        raise ModelServerError(f"cannot start a server for v{version}: {exc}") from exc
    server = model_servers.start(version)
    if wait:
        model_servers.wait_ready(server, timeout)
    live = model_servers.live_ports()
    gateway.refresh(live)
    if not gateway.current_weights(live) and (not wait or is_ready(version)):
        gateway.set_weights({version: 100}, live)  # the first live version takes all traffic
    return server


def stop_model_server(version: int, drain_seconds: float = 0) -> None:
    """Take `version` out of the gateway, let in-flight requests finish for `drain_seconds`, then stop it.

    A version that still receives traffic while another version is live is refused: move its weight first
    (`mlp serve weights`), so stopping a server never drops requests.
    """
    live = model_servers.live_ports()
    weights = gateway.current_weights(live)
    others = [v for v in live if v != version]
    if weights.get(version, 0) > 0 and others:
        raise ModelServerError(
            f"v{version} still receives {weights[version]}% of the traffic; move it first, e.g. "
            f"`mlp serve weights {others[0]}=100`, then stop v{version}"
        )
    model_servers.release_slot(version)
    gateway.refresh(model_servers.live_ports())  # no route to it from here on; requests already proxied finish
    if drain_seconds > 0:
        time.sleep(drain_seconds)
    model_servers.remove(version)


def start_catalogue_server(
    model: str, version: int, model_dir: Path | None = None, extra_env: dict[str, str] | None = None
) -> generators.GenerateServer:
    """Serve `version` of a generate, embed or rag model (registry version `version`, or the packaged `model_dir`) in
    place of the version it serves, with all of `/v1/models/<model>/<task>`, once it is ready; a release's other
    version, if any, is unrouted and stopped."""
    server = generators.start(model, version, model_dir, extra_env=extra_env)
    gateway.refresh(model_servers.live_ports())
    generators.remove_unrecorded(model)
    return server


def stop_catalogue_server(model: str, version: int | None = None, drain_seconds: float = 0) -> None:
    """Unroute the model's server of `version` (default: all of them), let requests in flight finish for
    `drain_seconds`, then stop it."""
    generators.unrecord(model, version)
    gateway.refresh(model_servers.live_ports())
    if drain_seconds > 0:
        time.sleep(drain_seconds)
    generators.remove_unrecorded(model)


def start_shadow(version: int, share_percent: int) -> None:
    """Mirror `share_percent` of stable's split traffic to live version `version`: the relay in front of its server
    first, then the gateway's mirror (infra/local/shadow_relay.py says why a relay)."""
    live = model_servers.live_ports()
    if version not in live:
        raise ModelServerError(f"v{version} has no live server to mirror to: start it first (`mlp serve start`)")
    relay = shadow_relay.program(policy().release.default_model, version, live[version])
    ensure_program(relay)  # a relay for another candidate is replaced: its command differs
    wait_healthy(relay, timeout=30)
    gateway.set_shadow(version, share_percent, live)


def stop_shadow() -> None:
    """Stop mirroring (the gateway first, so nothing is sent to a relay that is gone), then stop the relay."""
    gateway.set_shadow(None, 0, model_servers.live_ports())
    remove_program(shadow_relay.PROGRAM)


def refresh_gateway() -> None:
    """Re-render the gateway from the policy and the live servers, keeping the weights (e.g. after a limit change)."""
    gateway.refresh(model_servers.live_ports())


def set_weights(weights: dict[int, int]) -> None:
    """Route `weights` (percent per live version, summing to 100); nginx reloads gracefully."""
    gateway.set_weights(weights, model_servers.live_ports())


def current_weights() -> dict[int, int]:
    return gateway.current_weights(model_servers.live_ports())


def stable_version() -> int | None:
    return gateway.stable_version(model_servers.live_ports())


def gateway_program() -> Program:
    """The nginx program, its config rendered for the servers live now."""
    return gateway.program(model_servers.live_ports())


@dataclass(frozen=True)
class ServerStatus:
    server: ModelServer
    weight: int
    ready: bool
    stable: bool


def status() -> list[ServerStatus]:
    """Each live server with its traffic share, readiness and whether it is the stable (retry) target."""
    weights, stable = current_weights(), stable_version()
    return [
        ServerStatus(s, weights.get(s.version, 0), is_ready(s.version), s.version == stable)
        for s in live_model_servers()
    ]


class CatalogueServing:
    """The release executor's `Serving` for a catalogue model with its own servers (a `rag` model): the candidate in
    the model's second slot, the model's route split between the two. `extra_env(version)` is what the version's
    server needs (a RAG server: the URLs of the embedder and generator it pins)."""

    def __init__(self, model: str, extra_env: Callable[[int], dict[str, str]]) -> None:
        self.model = model
        self.extra_env = extra_env

    def start(self, version: int) -> None:
        generators.start(self.model, version, extra_env=self.extra_env(version), beside=True)
        gateway.refresh(model_servers.live_ports())

    def stop(self, version: int, drain_seconds: float) -> None:
        stop_catalogue_server(self.model, version, drain_seconds)

    def is_live(self, version: int) -> bool:
        return any(s.version == version for s in generators.live_of(self.model))

    def set_weights(self, weights: dict[int, int]) -> None:
        generators.set_weights(self.model, weights)
        gateway.refresh(model_servers.live_ports())

    def current_weights(self) -> dict[int, int]:
        return generators.weights(self.model)

    def stable_version(self) -> int | None:
        return generators.serving_version(self.model)


class LocalServing:
    """The release executor's `Serving` (pipelines/release/deps.py) for the classifier's versions on this machine."""

    def start(self, version: int) -> None:
        start_model_server(version, wait=True)

    def stop(self, version: int, drain_seconds: float) -> None:
        stop_model_server(version, drain_seconds=drain_seconds)

    def is_live(self, version: int) -> bool:
        return version in model_servers.live_ports()

    def set_weights(self, weights: dict[int, int]) -> None:
        set_weights(weights)

    def current_weights(self) -> dict[int, int]:
        return current_weights()

    def stable_version(self) -> int | None:
        return stable_version()
