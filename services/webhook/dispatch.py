"""What an accepted promotion or drift alert does, by runtime (env `MLP_WEBHOOK_DISPATCH`):

- `local` (default): spawn `mlp release start --model M --version N` (a promotion) or `mlp model retrain --from N
  --trigger drift --candidate` (a drift alert) as a detached process (its own session, so restarting the receiver
  never kills it; the release lock and the retraining breakers refuse a second one);
- `github`: POST a `repository_dispatch` event (`model-promoted`, `model-drifted`) to GitHub, which runs
  `.github/workflows/model-release.yml` or `model-retrain.yml` against the cluster. `MLP_GITHUB_API_URL` (default https://api.github.com),
  `MLP_GITHUB_REPOSITORY` (owner/name) and the token in `GITHUB_TOKEN` (from the secret store, never logged).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx

from core import env
from services.webhook.actions import RetrainRequest

REPO_ROOT = Path(__file__).resolve().parents[2]
DISPATCH_EVENT_TYPE = "model-promoted"
RETRAIN_EVENT_TYPE = "model-drifted"
# Never hand the receiver's secrets to the release process.
SECRET_ENV = (env.WEBHOOK_SECRET.name, "GITHUB_TOKEN")


@dataclass(frozen=True)
class Promotion:
    model_name: str
    version: int
    alias: str
    delivery_id: str


class DispatchError(RuntimeError):
    pass


class Dispatcher(Protocol):
    def dispatch(self, promotion: Promotion) -> str: ...  # a short description of what was done

    def retrain(self, request: RetrainRequest) -> str: ...


class LocalDispatcher:
    def __init__(self, logs: Path, extra_args: list[str] | None = None) -> None:
        self.logs = logs
        self.extra_args = extra_args or []

    def command(self, p: Promotion) -> list[str]:
        detail = json.dumps({"delivery_id": p.delivery_id, "alias": p.alias})
        return [
            sys.executable,
            "-m",
            "pipelines.cli",
            "release",
            "start",
            "--model",
            p.model_name,
            "--version",
            str(p.version),
            "--trigger",
            "webhook",
            "--trigger-detail",
            detail,
            *self.extra_args,
        ]

    def retrain_command(self, r: RetrainRequest) -> list[str]:
        return [
            sys.executable,
            "-m",
            "pipelines.cli",
            "model",
            "retrain",
            "--from",
            str(r.version),
            "--trigger",
            "drift",
            "--alert-fingerprint",
            r.fingerprint,
            "--drift-score",
            r.drift_score,
            "--candidate",  # the ordinary path takes over: webhook, gate, canary
            "--json",
        ]

    def dispatch(self, promotion: Promotion) -> str:
        log = self.logs / f"release-{promotion.model_name}-v{promotion.version}-{promotion.delivery_id[:8]}.log"
        return f"spawned `mlp release start` {self._spawn(self.command(promotion), log)}"

    def retrain(self, request: RetrainRequest) -> str:
        log = self.logs / f"retrain-{request.model_name}-v{request.version}-{request.fingerprint[:8]}.log"
        return f"spawned `mlp model retrain` {self._spawn(self.retrain_command(request), log)}"

    def _spawn(self, command: list[str], log: Path) -> str:
        self.logs.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV}
        with log.open("ab") as out:
            proc = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        # Reap the child when it ends so the long-running receiver collects no zombies.
        threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
        return f"pid {proc.pid}, log {log}"


class GitHubDispatcher:
    def __init__(self, api_url: str, repository: str, token: str, timeout: float = 10) -> None:
        if not repository or "/" not in repository:
            raise DispatchError(f"{env.GITHUB_REPOSITORY.name} must be owner/name for the github dispatch mode")
        if not token:
            raise DispatchError("GITHUB_TOKEN is empty: the github dispatch mode needs a token with repo scope")
        self.api_url = api_url.rstrip("/")
        self.repository = repository
        self.token = token
        self.timeout = timeout

    def dispatch(self, promotion: Promotion) -> str:
        payload = {
            "model": promotion.model_name,
            "version": str(promotion.version),
            "alias": promotion.alias,
            "delivery_id": promotion.delivery_id,
        }
        return self._send(DISPATCH_EVENT_TYPE, payload)

    def retrain(self, request: RetrainRequest) -> str:
        payload = {
            "model": request.model_name,
            "version": str(request.version),
            "alert_fingerprint": request.fingerprint,
            "drift_score": request.drift_score,
        }
        return self._send(RETRAIN_EVENT_TYPE, payload)

    def _send(self, event_type: str, payload: dict[str, str]) -> str:
        url = f"{self.api_url}/repos/{self.repository}/dispatches"
        body = {"event_type": event_type, "client_payload": payload}
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
        try:
            resp = httpx.post(url, json=body, headers=headers, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise DispatchError(f"GitHub API at {self.api_url} unreachable: {exc}") from exc
        if resp.status_code != 204:
            raise DispatchError(f"GitHub refused the repository_dispatch ({resp.status_code}): {resp.text[:200]}")
        return f"repository_dispatch {event_type} sent to {self.repository}"


def from_env(logs: Path) -> Dispatcher:
    mode = env.WEBHOOK_DISPATCH.get()
    if mode == "local":
        return LocalDispatcher(logs, env.WEBHOOK_RELEASE_ARGS.get())
    if mode == "github":
        return GitHubDispatcher(
            env.GITHUB_API_URL.get(), env.GITHUB_REPOSITORY.get(), os.environ.get("GITHUB_TOKEN", "")
        )
    raise DispatchError(f"{env.WEBHOOK_DISPATCH.name}={mode!r}: choose 'local' or 'github'")
