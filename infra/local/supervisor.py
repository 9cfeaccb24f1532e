"""Run the local servers under supervisord (a maintained process supervisor, not a hand-written one).

Each server is a `Program`. `ensure_program` writes `.state/supervisor/conf.d/<name>.conf` and asks
supervisord to reread and apply it, so adding or removing one program never restarts the others.
Health is checked over HTTP or TCP, never by PID.
"""

from __future__ import annotations

import hashlib
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from core import contracts
from core.policy import policy
from infra.local.paths import REPO_ROOT, logs_dir, state_dir, sub

VENV_BIN = Path(sys.executable).parent
INHERITED_CREDENTIALS = (contracts.MLFLOW_USERNAME_VAR, contracts.MLFLOW_PASSWORD_VAR)


@dataclass(frozen=True)
class Program:
    """One supervised server."""

    name: str
    command: list[str]
    env: Mapping[str, str] = field(default_factory=dict)
    # Env vars whose values hold secrets, as templates over secret names ("{s3_secret_key}"): resolved only
    # inside the started process, so neither this config nor the process list carries the secret.
    secret_env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    user: str | None = None
    priority: int = 500
    stopsignal: str = "TERM"
    stopwaitsecs: int = 15
    health_url: str | None = None  # 2xx when healthy
    health_cafile: Path | None = None  # an https health_url is verified with this CA bundle
    health_tcp: int | None = None  # or: a loopback port that accepts connections
    startsecs: int = 2

    def full_command(self) -> list[str]:
        if not self.secret_env:
            return list(self.command)
        wrapper = [str(VENV_BIN / "python"), "-m", "infra.local.exec_with_secrets"]
        for name, template in sorted(self.secret_env.items()):
            wrapper += ["--env", f"{name}={template}"]
        return [*wrapper, "--", *self.command]

    def conf(self) -> str:
        env = ",".join(f'{k}="{v}"' for k, v in sorted({**self.env, "PYTHONPATH": str(REPO_ROOT)}.items()))
        lines = [
            f"[program:{self.name}]",
            "command=" + " ".join(_quote(a) for a in self.full_command()),
            f"directory={self.cwd or state_dir()}",
            f"priority={self.priority}",
            "autostart=true",
            "autorestart=unexpected",
            f"startsecs={self.startsecs}",
            "startretries=3",
            f"stopsignal={self.stopsignal}",
            f"stopwaitsecs={self.stopwaitsecs}",
            "stopasgroup=true",
            "killasgroup=true",
            f"stdout_logfile={logs_dir() / (self.name + '.log')}",
            "redirect_stderr=true",
            "stdout_logfile_maxbytes=20MB",
            "stdout_logfile_backups=2",
        ]
        if self.user:
            lines.append(f"user={self.user}")
        if env:
            lines.append(f"environment={env}")
        return "\n".join(lines) + "\n"


def _quote(arg: str) -> str:
    # supervisor splits commands with shlex; '%' must be doubled for its own expansion.
    import shlex

    return shlex.quote(arg).replace("%", "%%")


class SupervisorError(RuntimeError):
    pass


class EnvironmentError_(RuntimeError):
    """A local server could not be brought up; the message names it and what to do."""


def conf_dir() -> Path:
    return sub("supervisor/conf.d")


def main_conf() -> Path:
    return state_dir() / "supervisor" / "supervisord.conf"


SUPERVISOR_USER = "mlp"
SUPERVISOR_SECRET = "supervisor_password"


def main_conf_text(password: str) -> str:
    """supervisord's config: both control interfaces (the 0700 unix socket and the loopback HTTP port) ask for a
    username and password; the servers hold only its SHA-1 (supervisor's `{SHA}` form), supervisorctl the password."""
    sock = state_dir() / "supervisor" / "supervisor.sock"
    hashed = "{SHA}" + hashlib.sha1(password.encode()).hexdigest()  # supervisor's own format
    auth = [f"username={SUPERVISOR_USER}", f"password={hashed}"]
    return "\n".join(
        [
            "[unix_http_server]",
            f"file={sock}",
            "chmod=0700",
            *auth,
            "[inet_http_server]",
            f"port=127.0.0.1:{policy().ports.supervisor}",
            *auth,
            "[supervisord]",
            f"logfile={logs_dir() / 'supervisord.log'}",
            f"pidfile={state_dir() / 'supervisor' / 'supervisord.pid'}",
            "logfile_maxbytes=10MB",
            "nodaemon=false",
            "minfds=4096",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "[supervisorctl]",
            f"serverurl=unix://{sock}",
            f"username={SUPERVISOR_USER}",
            f"password={password}",
            "[include]",
            f"files = {conf_dir()}/*.conf",
            "",
        ]
    )


def _write_main_conf() -> Path:
    from infra.local.secrets import get_secret, write_private

    # It holds the control password: written atomically, 0600 from its first byte.
    return write_private(main_conf(), main_conf_text(get_secret(SUPERVISOR_SECRET)))


def ctl(*args: str, check: bool = True) -> str:
    """Run supervisorctl against the project's supervisord and return its output."""
    result = subprocess.run(
        [str(VENV_BIN / "supervisorctl"), "-c", str(main_conf()), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = (result.stdout + result.stderr).strip()
    # supervisorctl exits non-zero for "not running" states in `status`; callers that care pass check=False.
    if check and result.returncode not in (0, 3):
        raise SupervisorError(f"supervisorctl {' '.join(args)} failed: {out}")
    return out


def is_running() -> bool:
    if not main_conf().exists():
        return False
    try:
        out = ctl("pid", check=False)
    except subprocess.TimeoutExpired:
        return False
    return out.strip().isdigit()


def start_supervisord() -> None:
    """Start supervisord if it is not running (idempotent)."""
    conf = _write_main_conf()
    if is_running():
        return
    # Programs inherit supervisord's environment: a registry credential of the caller (a test, an operator) must not
    # reach them; each program that talks to the registry gets its own identity (infra.local.registry_auth).
    clean = {k: v for k, v in os.environ.items() if k not in INHERITED_CREDENTIALS}
    subprocess.run([str(VENV_BIN / "supervisord"), "-c", str(conf)], check=True, timeout=60, env=clean)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if is_running():
            return
        time.sleep(0.2)
    raise SupervisorError(f"supervisord did not start; see {logs_dir() / 'supervisord.log'}")


def shutdown_supervisord() -> None:
    if is_running():
        ctl("shutdown", check=False)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and is_running():
            time.sleep(0.3)


def ensure_program(program: Program) -> None:
    """Add or update a program and make sure it runs; others are left alone."""
    start_supervisord()
    path = conf_dir() / f"{program.name}.conf"
    new = program.conf()
    changed = not path.exists() or path.read_text() != new
    if changed:
        path.write_text(new)
        ctl("reread")
        ctl("update", program.name)
    if program_state(program.name) != "RUNNING":
        ctl("start", program.name, check=False)


def remove_program(name: str) -> None:
    """Stop a program and remove its config."""
    path = conf_dir() / f"{name}.conf"
    if is_running():
        ctl("stop", name, check=False)
    if path.exists():
        path.unlink()
    if is_running():
        ctl("reread", check=False)
        ctl("update", check=False)


def program_state(name: str) -> str:
    """RUNNING, STARTING, STOPPED, FATAL, BACKOFF, EXITED... or ABSENT."""
    if not is_running():
        return "ABSENT"
    out = ctl("status", name, check=False)
    parts = out.split()
    if len(parts) >= 2 and parts[0] == name:
        return parts[1]
    return "ABSENT"


def check_health(program: Program, timeout: float = 2.0) -> tuple[bool, str]:
    """Is the server answering? (HTTP 2xx, or a TCP accept.)"""
    if program.health_url:
        try:
            context = ssl.create_default_context(cafile=str(program.health_cafile)) if program.health_cafile else None
            with urllib.request.urlopen(program.health_url, timeout=timeout, context=context) as resp:
                return 200 <= resp.status < 300, f"HTTP {resp.status}"
        except urllib.error.HTTPError as exc:
            return False, f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            return False, f"no answer ({getattr(exc, 'reason', exc)})"
    if program.health_tcp:
        try:
            with socket.create_connection(("127.0.0.1", program.health_tcp), timeout=timeout):
                return True, f"tcp {program.health_tcp} open"
        except OSError as exc:
            return False, f"tcp {program.health_tcp}: {exc.strerror or exc}"
    state = program_state(program.name)
    return state == "RUNNING", state


def wait_healthy(program: Program, timeout: float = 60.0) -> None:
    """Block until the program is healthy; raise with the log path and its last lines if not."""
    deadline = time.monotonic() + timeout
    detail = ""
    while time.monotonic() < deadline:
        ok, detail = check_health(program)
        if ok:
            return
        if program_state(program.name) in ("FATAL", "EXITED", "BACKOFF"):
            break
        time.sleep(0.5)
    log = logs_dir() / f"{program.name}.log"
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:]) if log.exists() else "(no log yet)"
    raise SupervisorError(
        f"{program.name} is not healthy after {timeout:.0f}s ({detail}). Last lines of {log}:\n{tail}"
    )
