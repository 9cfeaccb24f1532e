"""The local environment: real servers as supervised processes on loopback, every program listed here.

One module per program: `postgres` (MLflow's metadata), `s3` (the artifact store and the inference log), `mlflow`
(the registry), `gateway` (nginx; rendered for the live model servers by `serving`), `prometheus` (Prometheus,
its exporters and the Pushgateway), `alertmanager` (routes the alerts) and `webhook` (the registry-webhook receiver,
also Alertmanager's). Model servers are added and
removed at run time by `infra.local.serving`, not here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from infra.local import alertmanager, mlflow, model_servers, postgres, prometheus, registry_auth, s3, serving, webhook
from infra.local.supervisor import Program, check_health, ensure_program, program_state, wait_healthy


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[], None]


def later_programs() -> list[Program]:
    """The programs started after the registry, in start order (each renders its config when asked for)."""
    return [serving.gateway_program(), *prometheus.programs(), alertmanager.program(), webhook.program()]


def all_programs() -> list[Program]:
    """Every program of the environment now, the live model servers included (for `mlp env status`)."""
    return [
        postgres.program(),
        s3.program(),
        mlflow.program(),
        *later_programs(),
        *model_servers.model_server_programs(),
    ]


def _start(program: Program, timeout: float = 90) -> None:
    ensure_program(program)
    wait_healthy(program, timeout=timeout)


def _provision_registry() -> None:
    registry_auth.provision()


def up_steps() -> list[Step]:
    """The ordered start-up; each step is idempotent, so `up` may run any number of times."""
    pg, store, registry = postgres.program(), s3.program(), mlflow.program()
    steps = [
        Step("initialise PostgreSQL data dir", postgres.init),
        Step("start PostgreSQL", lambda: _start(pg)),
        Step("create the mlflow database", postgres.provision_database),
        Step("start the S3 API", lambda: _start(store)),
        Step("create buckets", s3.ensure_buckets),
        Step("start MLflow (migrates the schema on first start)", lambda: _start(registry, timeout=180)),
        Step("registry users and the release bot's grants", _provision_registry),
    ]
    for program in later_programs():
        steps.append(Step(f"start {program.name}", lambda p=program: _start(p)))  # type: ignore[misc]
    return steps


@dataclass(frozen=True)
class Health:
    name: str
    state: str  # supervisord's: RUNNING, STARTING, FATAL... or ABSENT
    healthy: bool  # answers on its port (HTTP 2xx or a TCP accept), not just a PID
    detail: str


def health() -> list[Health]:
    """Every program's process state and whether it answers."""
    rows = []
    for program in all_programs():
        state = program_state(program.name)
        ok, detail = check_health(program) if state == "RUNNING" else (False, "not running")
        rows.append(Health(program.name, state, ok, detail))
    return rows
