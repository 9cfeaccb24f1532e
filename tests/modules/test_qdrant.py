"""The Qdrant release's values and the objects beside it, as modules/qdrant.py and modules/addons.py build them: keys
the chart knows (its values schema, vendored), the API key from a Secret only, snapshots to S3 with no static key,
a pod that passes Pod Security `restricted`, and the ExternalSecrets and StorageClass schema-valid."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from core.promql import SERVING_NAMESPACE
from modules import qdrant, runners
from modules.addons import PlatformAddons
from modules.cluster_services import QDRANT_API_KEY_SECRET, QDRANT_API_KEY_SECRET_KEY, qdrant_url
from modules.k8s.validate import validate_manifest

SCHEMA = Path(__file__).resolve().parents[2] / "modules" / "charts" / "qdrant-values.schema.json"
PROPS = qdrant.QdrantProps(
    region="eu-west-1",
    snapshot_bucket="mlp-dev-qdrant-snapshots-123456789012",
    role_arn="arn:aws:iam::123456789012:role/mlp-dev-qdrant",
    volume_gib=12,
    cpu_request="100m",
    cpu_limit="1",
    memory_request="256Mi",
    memory_limit="1Gi",
    node_selector={"mlp.io/pool": "system"},
)


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    return qdrant.values(PROPS)


def test_the_values_use_only_keys_the_chart_knows(values: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(values, schema)
    with pytest.raises(jsonschema.ValidationError):  # the closure catches a misspelt key
        jsonschema.validate({**values, "persistance": {"size": "1Gi"}}, schema)


def test_the_api_key_comes_from_the_secret_by_reference_and_the_chart_makes_none(values: dict[str, Any]) -> None:
    (env,) = values["env"]
    assert env == {
        "name": "QDRANT__SERVICE__API_KEY",
        "valueFrom": {"secretKeyRef": {"name": QDRANT_API_KEY_SECRET, "key": QDRANT_API_KEY_SECRET_KEY}},
    }
    # `apiKey: valueFrom` would copy the Secret by Helm lookup into a Secret of the chart's own (empty if not synced).
    assert values["apiKey"] is False and values["readOnlyApiKey"] is False
    assert "api_key" not in json.dumps(values["config"])


def test_it_keeps_its_data_on_a_gp3_volume_of_the_configured_size(values: dict[str, Any]) -> None:
    assert values["persistence"] == {"accessModes": ["ReadWriteOnce"], "size": "12Gi", "storageClassName": "gp3"}
    (storage_class,) = PlatformAddons.storage_classes()
    assert storage_class["metadata"]["name"] == values["persistence"]["storageClassName"]
    assert storage_class["provisioner"] == "ebs.csi.aws.com"
    assert storage_class["parameters"]["type"] == "gp3" and storage_class["parameters"]["encrypted"] == "true"
    assert storage_class["volumeBindingMode"] == "WaitForFirstConsumer"  # the volume in the zone the pod lands in
    assert validate_manifest(storage_class) == []


def test_snapshots_go_to_the_bucket_through_irsa_with_no_static_key(values: dict[str, Any]) -> None:
    snapshots = values["config"]["storage"]["snapshots_config"]
    assert snapshots["snapshots_storage"] == "s3"
    assert snapshots["s3_config"] == {"bucket": PROPS.snapshot_bucket, "region": PROPS.region}
    assert values["serviceAccount"]["annotations"] == {"eks.amazonaws.com/role-arn": PROPS.role_arn}
    text = json.dumps(values).lower()
    assert "access_key" not in text and "secret_key" not in text and "aws_access_key_id" not in text


def test_the_pod_passes_pod_security_restricted(values: dict[str, Any]) -> None:
    ctx = values["containerSecurityContext"]
    assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] > 0
    assert ctx["allowPrivilegeEscalation"] is False and ctx["privileged"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]} and ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    assert ctx["readOnlyRootFilesystem"] is True
    pod = values["podSecurityContext"]
    assert pod["runAsNonRoot"] is True and pod["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["fsGroup"] > 0
    # The chart's ownership init container runs `chown` as the image's user (root): off.
    assert values["updateVolumeFsOwnership"] is False
    assert values["resources"]["limits"] == {"cpu": "1", "memory": "1Gi"}
    assert values["nodeSelector"] == {"mlp.io/pool": "system"}


def test_one_node_nothing_public_no_telemetry(values: dict[str, Any]) -> None:
    assert values["replicaCount"] == 1 and values["config"]["cluster"]["enabled"] is False
    assert values["service"] == {"type": "ClusterIP"} and values["ingress"] == {"enabled": False}
    assert values["config"]["telemetry_disabled"] is True
    # The Service the RAG servers call: the chart's fullname in its namespace (cluster_services).
    assert qdrant_url() == f"http://{values['fullnameOverride']}.qdrant.svc:6333"


def test_the_key_is_copied_into_both_namespaces_from_one_secret() -> None:
    remote = qdrant.api_key_secret_name("mlp-dev")
    own = qdrant.api_key_external_secret(remote, "qdrant")
    serving = qdrant.api_key_external_secret(
        remote, SERVING_NAMESPACE, store=runners.PLATFORM_STORE, store_kind="ClusterSecretStore"
    )
    for m, namespace in ((own, "qdrant"), (serving, SERVING_NAMESPACE)):
        assert validate_manifest(m) == []
        assert m["metadata"]["namespace"] == namespace
        assert m["spec"]["target"]["name"] == QDRANT_API_KEY_SECRET
        (data,) = m["spec"]["data"]
        assert data == {
            "secretKey": QDRANT_API_KEY_SECRET_KEY,
            "remoteRef": {"key": "mlp-dev/qdrant/api-key", "property": qdrant.API_KEY_PROPERTY},
        }
    assert own["spec"]["secretStoreRef"] == {"name": "aws-secrets-manager", "kind": "SecretStore"}
    assert serving["spec"]["secretStoreRef"] == {"name": runners.PLATFORM_STORE, "kind": "ClusterSecretStore"}
