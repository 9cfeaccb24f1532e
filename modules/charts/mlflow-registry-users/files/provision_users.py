"""Create the registry's users in the cluster's MLflow and give the release bot the model (idempotent).

The cluster's counterpart of `infra.local.registry_auth.provision()`, run by the `mlflow-registry-users` Job
(modules/registry_users.py) after every install and upgrade of MLflow, in MLflow's own image (standard library
only). Environment:
  MLFLOW_URL                     MLflow's in-cluster address
  MODEL_NAME                     the platform's registered model (and its experiment)
  ADMIN_USER, ADMIN_PASSWORD     the admin MLflow created on its first start
  USERS                          comma-separated `user=VARIABLE` pairs: the password of `user` is in $VARIABLE
  BOT_USER                       the one user given MANAGE on the model and its experiment
Exit 0 done, 1 refused or failed (the message says which call and what to do). No password is printed.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class Refused(Exception):
    pass


def call(method: str, path: str, user: str, password: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    url = os.environ["MLFLOW_URL"].rstrip("/") + path
    data = None
    if body is not None and method == "GET":
        url += "?" + urllib.parse.urlencode(body)
    elif body is not None:
        data = json.dumps(body).encode()
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        text = err.read().decode(errors="replace")
        try:
            return err.code, json.loads(text)
        except ValueError:
            return err.code, {"message": text[:200]}


def check(status: int, payload: Any, what: str) -> Any:
    if status == 401:
        raise Refused(f"{what}: MLflow refused the admin credential (401): is ADMIN_PASSWORD the admin's current one?")
    if status >= 400:
        raise Refused(f"{what}: HTTP {status} {str(payload)[:200]}")
    return payload


def wait_healthy(deadline_s: float = 300) -> None:
    end = time.monotonic() + deadline_s
    url = os.environ["MLFLOW_URL"].rstrip("/") + "/health"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > end:
            raise Refused(f"MLflow at {url} not healthy after {deadline_s:.0f} s")
        time.sleep(3)


def ensure_user(admin: tuple[str, str], user: str, password: str) -> str:
    status, _ = call("GET", "/api/2.0/mlflow/users/get", *admin, {"username": user})
    if status == 200:
        body = {"username": user, "password": password}
        check(*call("PATCH", "/api/2.0/mlflow/users/update-password", *admin, body), f"password of {user}")
        return "updated"
    check(*call("POST", "/api/2.0/mlflow/users/create", *admin, {"username": user, "password": password}), user)
    return "created"


def ensure_model_and_experiment(bot: tuple[str, str], model: str) -> str:
    status, payload = call("GET", "/api/2.0/mlflow/registered-models/get", *bot, {"name": model})
    if status == 404:
        check(*call("POST", "/api/2.0/mlflow/registered-models/create", *bot, {"name": model}), f"model {model}")
    else:
        check(status, payload, f"reading model {model}")
    status, payload = call("GET", "/api/2.0/mlflow/experiments/get-by-name", *bot, {"experiment_name": model})
    if status == 404:
        created = check(*call("POST", "/api/2.0/mlflow/experiments/create", *bot, {"name": model}), "experiment")
        return str(created["experiment_id"])
    return str(check(status, payload, f"reading experiment {model}")["experiment"]["experiment_id"])


def grant(admin: tuple[str, str], kind: str, key: dict[str, str], user: str, permission: str) -> str:
    """`user` holds exactly `permission` on the resource afterwards: 'granted', 'changed' or 'kept'. MLflow 3.x's
    `users/permissions` API first (the one the local runtime uses); an older server answers 404 there, and then
    its per-kind API (`<kind>/permissions/create|update`, the one its auth client used) is used."""
    resource_type = {"registered-models": "registered_model", "experiments": "experiment"}[kind]
    body = {"username": user, "resource_type": resource_type, "resource_id": next(iter(key.values()))}
    what = f"{kind} grant of {permission} to {user}"
    status, payload = call(
        "POST", "/api/3.0/mlflow/users/permissions/grant", *admin, {**body, "permission": permission}
    )
    if status == 404:
        legacy = {**key, "username": user, "permission": permission}
        status, payload = call("POST", f"/api/2.0/mlflow/{kind}/permissions/create", *admin, legacy)
        if status == 400 and "RESOURCE_ALREADY_EXISTS" in json.dumps(payload):
            check(*call("PATCH", f"/api/2.0/mlflow/{kind}/permissions/update", *admin, legacy), what)
            return "kept"
        check(status, payload, what)
        return "granted"
    if not (status == 400 and "RESOURCE_ALREADY_EXISTS" in json.dumps(payload)):
        check(status, payload, what)
        return "granted"
    held = check(*call("GET", "/api/3.0/mlflow/users/permissions/get", *admin, body), what).get("permission")
    if held == permission:
        return "kept"
    check(*call("POST", "/api/3.0/mlflow/users/permissions/revoke", *admin, body), what)
    check(*call("POST", "/api/3.0/mlflow/users/permissions/grant", *admin, {**body, "permission": permission}), what)
    return "changed"


def main() -> int:
    admin = (os.environ["ADMIN_USER"], os.environ["ADMIN_PASSWORD"])
    users = dict(pair.split("=", 1) for pair in os.environ["USERS"].split(",") if pair)
    bot_user = os.environ["BOT_USER"]
    model = os.environ["MODEL_NAME"]
    try:
        wait_healthy()
        check(*call("GET", "/api/2.0/mlflow/users/current", *admin), "authenticating as the admin")
        for user, var in users.items():
            print(f"user {user}: {ensure_user(admin, user, os.environ[var])}")
        bot = (bot_user, os.environ[users[bot_user]])
        experiment_id = ensure_model_and_experiment(bot, model)
        print(f"model {model}: {grant(admin, 'registered-models', {'name': model}, bot_user, 'MANAGE')} MANAGE")
        experiment = {"experiment_id": experiment_id}
        print(f"experiment {experiment_id}: {grant(admin, 'experiments', experiment, bot_user, 'MANAGE')} MANAGE")
    except Refused as exc:
        print(f"registry users not provisioned: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
