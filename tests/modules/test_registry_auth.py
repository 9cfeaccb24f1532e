"""The cluster registry's auth as rendered: ExternalSecrets valid against the vendored CRD schema, chart values valid
against the vendored subset of the MLflow chart's values schema, no password anywhere in what is rendered."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from core import contracts
from modules import registry_auth
from modules.k8s.crd_schemas import __file__ as crd_init
from modules.k8s.validate import validate_manifest

CHARTS = Path(registry_auth.__file__).parent / "charts"
REMOTE = registry_auth.secret_name("mlp-dev")


@pytest.fixture()
def manifests() -> list[dict[str, object]]:
    return registry_auth.auth_external_secrets(REMOTE, "mlflow")


def test_external_secrets_are_schema_valid_and_have_a_recorded_source(manifests: list[dict[str, object]]) -> None:
    assert [m["kind"] for m in manifests] == ["ExternalSecret", "ExternalSecret"]
    for manifest in manifests:
        assert validate_manifest(manifest) == []
    schema = Path(crd_init).parent / "external-secrets.io_v1_ExternalSecret.json"
    commit = json.loads(schema.read_text())["x-mlp-source"]["commit"]
    sources = (Path(crd_init).parent / "SOURCES.md").read_text()
    assert commit in sources and schema.name in sources


def test_a_misspelt_external_secret_field_is_refused(manifests: list[dict[str, object]]) -> None:
    bad = copy.deepcopy(manifests[0])
    spec = bad["spec"]
    assert isinstance(spec, dict)
    spec["secretStoreRefs"] = spec.pop("secretStoreRef")
    assert any("secretStoreRefs" in p.message for p in validate_manifest(bad))
    worse = copy.deepcopy(manifests[0])
    worse_spec = worse["spec"]
    assert isinstance(worse_spec, dict)
    worse_spec["target"]["creationPolicy"] = "Always"
    assert validate_manifest(worse) != []


def test_external_secrets_name_properties_never_values(manifests: list[dict[str, object]]) -> None:
    admin, env = (m["spec"] for m in manifests)
    assert isinstance(admin, dict) and isinstance(env, dict)
    assert [d["remoteRef"] for d in admin["data"]] == [
        {"key": REMOTE, "property": contracts.REGISTRY_USERS[contracts.REGISTRY_ADMIN]}
    ]
    assert admin["target"]["template"]["data"] == {registry_auth.ADMIN_USERNAME_KEY: contracts.REGISTRY_ADMIN}
    assert [d["secretKey"] for d in env["data"]] == [contracts.MLFLOW_FLASK_SECRET_KEY_VAR]
    assert "password" not in json.dumps(admin["target"])  # only key names, no literal credential


def test_chart_values_turn_basic_auth_on_with_its_own_database() -> None:
    values = registry_auth.auth_chart_values(db_host="db.example", db_secret="mlflow-db")
    schema = json.loads((CHARTS / "mlflow-values-auth.schema.json").read_text())
    jsonschema.validate(values, schema)  # the chart rejects unknown keys at install
    auth = values["auth"]
    assert auth["enabled"] is True and auth["defaultPermission"] == "READ"
    assert auth["appName"] == "basic-auth"
    assert auth["postgres"]["database"] == registry_auth.AUTH_DATABASE != "mlflow"
    assert auth["postgres"]["existingSecret"]["name"] == "mlflow-db"
    assert auth["existingAdminSecret"]["name"] == registry_auth.AUTH_SECRET
    assert "adminPassword" not in auth and "password" not in auth["postgres"]
    assert values["extraSecretNamesForEnvFrom"] == [registry_auth.AUTH_ENV_SECRET]
    # The auth database is created by the bootstrap Job, as MLflow's own role's: the MLflow pod never holds the
    # master credential (tests/modules/test_database_bootstrap.py).
    assert "initContainers" not in values


def test_a_key_the_chart_does_not_know_is_refused() -> None:
    values = registry_auth.auth_chart_values(db_host="db.example", db_secret="mlflow-db")
    values["auth"]["flaskSecret"] = "x"
    schema = json.loads((CHARTS / "mlflow-values-auth.schema.json").read_text())
    with pytest.raises(jsonschema.ValidationError, match="flaskSecret"):
        jsonschema.validate(values, schema)


def test_the_chart_template_writes_the_rendered_manifests_out() -> None:
    template = (CHARTS / "mlflow-db-secret" / "templates" / "registry-auth.yaml").read_text()
    assert "range .Values.manifests" in template and "toYaml" in template
