"""Model servers of the local runtime: one supervised `bentoml serve` per live model version.

(Interface stub; the serving area implements it.)
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.local.supervisor import Program


@dataclass(frozen=True)
class ModelServer:
    version: int
    port: int
    program: str
    url: str


def model_server_programs() -> list[Program]:
    """Programs of the model servers that are configured now (for `mlp env status`)."""
    return []


def start_model_server(version: int, wait: bool = True, timeout: float = 180) -> ModelServer:
    raise NotImplementedError


def stop_model_server(version: int, drain_seconds: float = 0) -> None:
    raise NotImplementedError


def live_model_servers() -> list[ModelServer]:
    return []


def is_ready(version: int) -> bool:
    raise NotImplementedError
