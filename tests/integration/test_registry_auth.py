"""The registry's authentication and authorisation against the real MLflow basic-auth app (docs/security-registry.md).

Anonymous requests are refused; a read-only user reads but can neither move an alias nor register a version, and
the CLI then names the credential to use; the release bot can; no password shows in a log or a command line.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import httpx
import pytest

from core import contracts, endpoints
from infra.local.paths import logs_dir, secrets_dir, state_dir
from infra.local.registry_auth import password
from services.registry import client as registry
from tests.integration.conftest import mlp

pytestmark = pytest.mark.integration

READER, BOT = contracts.REGISTRY_READER, contracts.REGISTRY_RELEASE_BOT


def _as(user: str) -> dict[str, str]:
    return {contracts.MLFLOW_USERNAME_VAR: user, contracts.MLFLOW_PASSWORD_VAR: password(user)}


def _api(user: str | None) -> httpx.Client:
    auth = (user, password(user)) if user else None
    return httpx.Client(base_url=endpoints.mlflow_url(), auth=auth, timeout=30)


def _model() -> str:
    return registry.model_name()


def test_anonymous_requests_are_refused(registered_versions: dict[str, int]) -> None:
    version = registered_versions["int8"]
    with _api(None) as anon:
        assert anon.get("/health").status_code == 200  # the only open route: liveness
        reads = [
            ("/api/2.0/mlflow/registered-models/search", {}),
            ("/api/2.0/mlflow/registered-models/alias", {"name": _model(), "alias": "champion"}),
            ("/api/2.0/mlflow/model-versions/get-download-uri", {"name": _model(), "version": str(version)}),
            ("/api/2.0/mlflow-artifacts/artifacts", {}),
        ]
        for route, params in reads:
            resp = anon.get(route, params=params)
            assert resp.status_code == 401, (route, resp.status_code)
            assert resp.headers.get("WWW-Authenticate", "").startswith("Basic")
        alias = {"name": _model(), "alias": "candidate", "version": str(version)}
        assert anon.post("/api/2.0/mlflow/registered-models/alias", json=alias).status_code == 401
    with _api(READER) as reader:
        assert reader.get("/api/2.0/mlflow/registered-models/search").status_code == 200


def test_a_wrong_password_is_refused_and_the_cli_says_what_to_set(registered_versions: dict[str, int]) -> None:
    with httpx.Client(base_url=endpoints.mlflow_url(), auth=(READER, "not-the-password"), timeout=30) as wrong:
        assert wrong.get("/api/2.0/mlflow/registered-models/search").status_code == 401
    out = mlp("model", "list", check=False, extra_env={**_as(READER), contracts.MLFLOW_PASSWORD_VAR: "wrong"})
    assert out.returncode == 1
    message = " ".join(out.stderr.split())
    assert "401" in message and contracts.MLFLOW_PASSWORD_VAR in message and READER in message


def test_a_read_only_user_reads_but_cannot_move_an_alias(registered_versions: dict[str, int]) -> None:
    int8, fp32 = registered_versions["int8"], registered_versions["fp32"]
    before = registry.get_alias("challenger")
    body = {"name": _model(), "alias": "challenger", "version": str(fp32)}
    with _api(READER) as reader:
        assert reader.get("/api/2.0/mlflow/registered-models/get", params={"name": _model()}).status_code == 200
        assert reader.post("/api/2.0/mlflow/registered-models/alias", json=body).status_code == 403
        assert reader.delete("/api/2.0/mlflow/registered-models/alias", params=body).status_code == 403
    out = mlp("model", "alias", "set", "challenger", str(fp32), check=False, extra_env=_as(READER))
    assert out.returncode == 1
    message = " ".join(out.stderr.split())
    assert "403" in message and READER in message
    assert f"{contracts.MLFLOW_USERNAME_VAR}={BOT}" in message  # which credential to use instead
    assert contracts.REGISTRY_USERS[BOT] in message  # and where it lives
    assert registry.get_alias("challenger") == before == int8


def test_a_read_only_user_cannot_register_a_version(
    registered_versions: dict[str, int], packaged_variants: dict[str, Path], tmp_path: Path
) -> None:
    package = tmp_path / "pkg"
    shutil.copytree(packaged_variants["int8"], package)
    lineage = json.loads((package / "lineage.json").read_text())
    lineage["input_hash"] = uuid.uuid4().hex  # a package the registry has not seen
    (package / "lineage.json").write_text(json.dumps(lineage))
    before = [v.version for v in registry.list_versions()]
    with _api(READER) as reader:
        create = {"name": _model(), "source": "models:/anything", "run_id": ""}
        assert reader.post("/api/2.0/mlflow/model-versions/create", json=create).status_code == 403
    out = mlp("model", "register", "--variant", "int8", "--path", str(package), check=False, extra_env=_as(READER))
    assert out.returncode == 1
    message = " ".join(out.stderr.split())
    assert "403" in message and f"{contracts.MLFLOW_USERNAME_VAR}={BOT}" in message
    assert [v.version for v in registry.list_versions()] == before


def test_the_release_bot_moves_an_alias_from_the_secret_store(registered_versions: dict[str, int]) -> None:
    int8, fp32 = registered_versions["int8"], registered_versions["fp32"]
    try:
        # No credential in the environment: the CLI takes the bot's from the secret store.
        out = mlp("model", "alias", "set", "challenger", str(fp32), "--json")
        assert json.loads(out.stdout)["version"] == fp32
        assert registry.get_alias("challenger") == fp32
    finally:
        mlp("model", "alias", "set", "challenger", str(int8))
    assert registry.get_alias("challenger") == int8


def test_only_the_admin_manages_users_and_webhooks(local_env: None) -> None:
    with _api(BOT) as bot:
        new_user = {"username": f"intruder-{uuid.uuid4().hex[:6]}", "password": uuid.uuid4().hex}
        assert bot.post("/api/2.0/mlflow/users/create", json=new_user).status_code == 403
        assert bot.get("/api/2.0/mlflow/webhooks").status_code == 403
    with _api(contracts.REGISTRY_ADMIN) as admin:
        assert admin.get("/api/2.0/mlflow/webhooks").status_code == 200


def _secret_values() -> dict[str, str]:
    return {f.name: f.read_text().strip() for f in secrets_dir().iterdir() if f.is_file() and len(f.read_text()) < 200}


def test_no_credential_in_logs_or_command_lines(registered_versions: dict[str, int]) -> None:
    # The supervised programs have run and logged (MLflow served every registration above).
    secrets = {name: value for name, value in _secret_values().items() if len(value) >= 16}
    assert {contracts.REGISTRY_USERS[u] for u in contracts.REGISTRY_USERS} <= set(secrets)
    logs = [p for p in state_dir().rglob("*.log") if p.is_file()] + [p for p in logs_dir().rglob("*") if p.is_file()]
    assert logs, "no log files found"
    for log in set(logs):
        text = log.read_text(errors="replace")
        for name, value in secrets.items():
            assert value not in text, f"secret {name} appears in {log}"
    seen = 0
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # the process ended meanwhile
        if str(state_dir()) in args or "mlflow" in args or "bentoml" in args:
            seen += 1
        for name, value in secrets.items():
            assert value not in args, f"secret {name} appears in the command line of {cmdline.parent.name}"
    assert seen >= 3, "the supervised programs were not found in /proc"


def test_rotating_a_password_retires_the_old_one_at_once(local_env: None) -> None:
    old = password(READER)
    mlp("env", "rotate-registry-password", READER)
    new = password(READER)
    assert new != old and (secrets_dir() / contracts.REGISTRY_USERS[READER]).stat().st_mode & 0o777 == 0o600
    route = "/api/2.0/mlflow/registered-models/search"
    with httpx.Client(base_url=endpoints.mlflow_url(), auth=(READER, old), timeout=30) as stale:
        assert stale.get(route).status_code == 401  # the server's credential cache is dropped on the change
    with _api(READER) as fresh:
        assert fresh.get(route).status_code == 200
    assert mlp("model", "list").returncode == 0  # the CLI picks the new one up from the store
    bad = mlp("env", "rotate-registry-password", "mallory", check=False)
    assert bad.returncode != 0 and contracts.REGISTRY_READER in bad.stderr
