"""Who talks to the local registry as whom: MLflow basic-auth users, their permissions, and the identity a process
uses (docs/security-registry.md).

`provision()` (a step of `mlp env up`, idempotent) creates the users of `core.contracts.REGISTRY_USERS` with the
passwords from the secret store, makes sure the platform's registered model and its experiment exist and that the
release bot holds MANAGE on both, and nobody else writes them. Read-only users need no grant: the server's default
permission for an authenticated user is READ (docs/decisions/0140-registry-default-permission-read.md).

`use_identity(user)` gives the current process MLflow's standard `MLFLOW_TRACKING_USERNAME`/`_PASSWORD` for that
user from the local secret store, unless the caller set them already (CI, an operator, a test acting as another
user): an explicit credential always wins. Supervised programs get theirs through `program_env(user)`, resolved
inside the process, so neither a config file nor a command line carries a password.
"""

from __future__ import annotations

import os
import secrets as _random
from collections.abc import Mapping

import httpx

from core import contracts, endpoints, env
from core.policy import policy
from infra.local.secrets import ARTIFACT_SIGNING_KEY, artifact_public_key, get_secret, put_secret_file, secret_file
from infra.local.supervisor import EnvironmentError_

READ_ONLY_USERS = (contracts.REGISTRY_MODEL_SERVER, contracts.REGISTRY_READER)
WRITER = contracts.REGISTRY_RELEASE_BOT


class RegistryAuthError(EnvironmentError_):
    """Users or permissions could not be set up; the message says which call failed and what to do."""


def password(user: str) -> str:
    try:
        return get_secret(contracts.REGISTRY_USERS[user])
    except KeyError:
        known = ", ".join(contracts.REGISTRY_USERS)
        raise RegistryAuthError(f"unknown registry user {user!r}; the users are: {known}") from None


def secret_name(user: str) -> str:
    return contracts.REGISTRY_USERS[user]


def program_env(user: str) -> tuple[dict[str, str], dict[str, str]]:
    """(env, secret_env) of a supervised program that talks to the registry as `user`."""
    return (
        {contracts.MLFLOW_USERNAME_VAR: user},
        {contracts.MLFLOW_PASSWORD_VAR: "{" + secret_name(user) + "}"},
    )


def use_local_signing_key(environ: os._Environ[str] | dict[str, str] | None = None) -> None:
    """Sign registrations with the local secret store's key (the private half of the public key the local
    environment verifies with), unless a KMS key or another key file is set."""
    target = os.environ if environ is None else environ
    signing = (env.ARTIFACT_SIGNING_KMS_KEY.name, env.ARTIFACT_SIGNING_KEY_FILE.name)
    if not any(target.get(name, "").strip() for name in signing):
        target[env.ARTIFACT_SIGNING_KEY_FILE.name] = str(secret_file(ARTIFACT_SIGNING_KEY))


def use_identity(user: str, environ: os._Environ[str] | dict[str, str] | None = None) -> str:
    """Authenticate this process to the registry as `user`, unless a credential is set already; returns the user
    the process now acts as. Also gives the process the key that verifies what it downloads from the registry
    (`MLP_ARTIFACT_PUBLIC_KEY`, unless set), so every `mlp` command that fetches a version verifies it; and the key
    that signs what it registers (`use_local_signing_key`)."""
    target = os.environ if environ is None else environ
    if not target.get(env.ARTIFACT_PUBLIC_KEY.name, "").strip():
        target[env.ARTIFACT_PUBLIC_KEY.name] = artifact_public_key()
    use_local_signing_key(target)
    current = target.get(contracts.MLFLOW_USERNAME_VAR, "").strip()
    if current:
        return current
    target[contracts.MLFLOW_USERNAME_VAR] = user
    target[contracts.MLFLOW_PASSWORD_VAR] = password(user)
    return user


# ---------------------------------------------------------------- provisioning (as the admin, over the REST API)


def _admin() -> httpx.Client:
    return httpx.Client(
        base_url=endpoints.mlflow_url(),
        auth=(contracts.REGISTRY_ADMIN, password(contracts.REGISTRY_ADMIN)),
        timeout=30,
    )


def _as(user: str) -> httpx.Client:
    return httpx.Client(base_url=endpoints.mlflow_url(), auth=(user, password(user)), timeout=30)


def _check(resp: httpx.Response, what: str) -> httpx.Response:
    if resp.status_code == 401:
        raise RegistryAuthError(
            f"{what}: MLflow refused the admin credential (401). If the admin password was rotated outside "
            f"`mlp env rotate-registry-password`, see runbooks/registry-credential-rotation.md."
        )
    if resp.status_code >= 400:
        raise RegistryAuthError(f"{what}: HTTP {resp.status_code} {resp.text[:200]}")
    return resp


def ensure_user(client: httpx.Client, user: str) -> str:
    """Create `user` with its secret-store password, or set that password if the user exists: 'created' or
    'updated'."""
    found = client.get("/api/2.0/mlflow/users/get", params={"username": user})
    if found.status_code == 200:
        _check(
            client.patch("/api/2.0/mlflow/users/update-password", json={"username": user, "password": password(user)}),
            f"setting the password of {user}",
        )
        return "updated"
    _check(
        client.post("/api/2.0/mlflow/users/create", json={"username": user, "password": password(user)}),
        f"creating registry user {user}",
    )
    return "created"


def grant(client: httpx.Client, user: str, resource_type: str, resource_id: str, permission: str) -> str:
    """`user` holds exactly `permission` on the resource afterwards: 'granted', 'changed' or 'kept'."""
    what = f"granting {permission} on {resource_type} {resource_id} to {user}"
    body = {"username": user, "resource_type": resource_type, "resource_id": resource_id}
    resp = client.post("/api/3.0/mlflow/users/permissions/grant", json={**body, "permission": permission})
    if resp.status_code != 400 or "RESOURCE_ALREADY_EXISTS" not in resp.text:
        _check(resp, what)
        return "granted"
    held = _check(client.get("/api/3.0/mlflow/users/permissions/get", params=body), what).json().get("permission")
    if held == permission:
        return "kept"
    _check(client.post("/api/3.0/mlflow/users/permissions/revoke", json=body), what)
    _check(client.post("/api/3.0/mlflow/users/permissions/grant", json={**body, "permission": permission}), what)
    return "changed"


def _ensure_model_and_experiment(bot: httpx.Client, model: str) -> str:
    """The registered model and its experiment exist (created by the bot, which then owns them); the experiment id."""
    got = bot.get("/api/2.0/mlflow/registered-models/get", params={"name": model})
    if got.status_code == 404:
        _check(bot.post("/api/2.0/mlflow/registered-models/create", json={"name": model}), f"creating model {model}")
    elif got.status_code != 200:
        _check(got, f"reading registered model {model}")
    exp = bot.get("/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": model})
    if exp.status_code == 404:
        created = _check(bot.post("/api/2.0/mlflow/experiments/create", json={"name": model}), f"experiment {model}")
        return str(created.json()["experiment_id"])
    return str(_check(exp, f"reading experiment {model}").json()["experiment"]["experiment_id"])


def provision() -> dict[str, str]:
    """Users, passwords and the release bot's MANAGE grants (idempotent); what was done, per user."""
    done: dict[str, str] = {}
    model = policy().release.default_model
    with _admin() as admin:
        _check(admin.get("/api/2.0/mlflow/users/current"), "authenticating as the registry admin")
        for user in (WRITER, *READ_ONLY_USERS):
            done[user] = ensure_user(admin, user)
        with _as(WRITER) as bot:
            experiment_id = _ensure_model_and_experiment(bot, model)
        # Created by the bot, it owns both already; granted again so a model created before auth was on (or by
        # the admin) is the bot's too.
        grant(admin, WRITER, "registered_model", model, "MANAGE")
        grant(admin, WRITER, "experiment", experiment_id, "MANAGE")
    return done


def rotate(user: str) -> None:
    """A new password for `user`: set in MLflow first (as the admin; the admin's own change carries its current
    password), then stored in the secret store; restart the programs that use it afterwards
    (runbooks/registry-credential-rotation.md)."""
    new = _random.token_urlsafe(24)
    body = {"username": user, "password": new}
    if user == contracts.REGISTRY_ADMIN:
        body["current_password"] = password(user)
    with _admin() as admin:
        _check(admin.patch("/api/2.0/mlflow/users/update-password", json=body), f"setting a new password for {user}")
    put_secret_file(secret_name(user), new)


def current_user(environ: Mapping[str, str] | None = None) -> str | None:
    source = os.environ if environ is None else environ
    return source.get(contracts.MLFLOW_USERNAME_VAR) or None
