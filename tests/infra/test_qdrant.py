"""The Qdrant server as the stacks synthesize it: the pinned chart with its volume, key and S3 snapshots wired to the
data stack's bucket, key secret and roles (cross-stack references, not literals), each role scoped to its one
resource, and the bucket encrypted with its own key and closed like the other buckets."""

from __future__ import annotations

import json
from typing import Any

import yaml

from core import contracts
from infra.config import EnvConfig, load_versions
from modules import qdrant
from modules.cluster_services import QDRANT_API_KEY_SECRET, QDRANT_API_KEY_SECRET_KEY, QDRANT_NAMESPACE
from tests.infra.conftest import Synth, only, policy


def _release(synth: Synth, env: EnvConfig, name: str) -> dict[str, Any]:
    (release,) = [r for r in synth.resources(env.name, "addons", "helm_release").values() if r["name"] == name]
    return release


def _values(release: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(release["values"][0])
    return values


def _data(synth: Synth, env: EnvConfig, rtype: str, marker: str) -> dict[str, Any]:
    return only({k: v for k, v in synth.resources(env.name, "data", rtype).items() if k.startswith(marker)})


def _role(synth: Synth, env: EnvConfig, suffix: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    roles = synth.resources(env.name, "data", "aws_iam_role")
    (key, role) = next((k, r) for k, r in roles.items() if r["name"] == f"{env.prefix}-{suffix}")
    (doc,) = [p for p in synth.resources(env.name, "data", "aws_iam_role_policy").values() if key in p["role"]]
    return policy(role["assume_role_policy"]), policy(doc["policy"])["Statement"]


def test_the_release_is_the_pinned_chart_in_its_own_namespace(synth: Synth, env: EnvConfig) -> None:
    pinned = load_versions().charts["qdrant"]
    release = _release(synth, env, "qdrant")
    assert (release["repository"], release["chart"], release["version"]) == (
        "https://qdrant.github.io/qdrant-helm",
        "qdrant",
        pinned.version,
    )
    assert pinned.version == "1.16.3"
    assert release["namespace"] == QDRANT_NAMESPACE and release["create_namespace"] is False  # the guardrails' own
    deps = " ".join(release["depends_on"])
    assert "qdrant-secrets" in deps and "storage-classes" in deps and "platform-guardrails" in deps


def test_its_data_is_on_a_gp3_volume_of_the_environments_size(synth: Synth, env: EnvConfig) -> None:
    values = _values(_release(synth, env, "qdrant"))
    assert values["persistence"]["size"] == f"{env.qdrant.volume_gib}Gi"
    (storage_class,) = _values(_release(synth, env, "storage-classes"))["manifests"]
    assert values["persistence"]["storageClassName"] == storage_class["metadata"]["name"]
    assert storage_class["parameters"] == {"type": "gp3", "encrypted": "true", "csi.storage.k8s.io/fstype": "ext4"}
    assert values["resources"]["requests"]["memory"] == env.qdrant.memory_request


def test_the_api_key_is_read_from_the_secret_external_secrets_makes_from_secrets_manager(
    synth: Synth, env: EnvConfig
) -> None:
    values = _values(_release(synth, env, "qdrant"))
    ((env_var,),) = [values["env"]]
    assert env_var["valueFrom"] == {"secretKeyRef": {"name": QDRANT_API_KEY_SECRET, "key": QDRANT_API_KEY_SECRET_KEY}}
    assert values["apiKey"] is False
    # The Secret it names: made in its namespace by the qdrant-secrets chart from the data stack's secret...
    local = _values(_release(synth, env, "qdrant-secrets"))
    (external,) = local["manifests"]
    assert (external["metadata"]["namespace"], external["spec"]["target"]["name"]) == (
        QDRANT_NAMESPACE,
        QDRANT_API_KEY_SECRET,
    )
    secret_key = _data(synth, env, "aws_secretsmanager_secret", "qdrant-api-key")
    assert secret_key["name"] == qdrant.api_key_secret_name(env.prefix)
    assert "secrets-key" in secret_key["kms_key_id"]
    ref = external["spec"]["data"][0]["remoteRef"]["key"]
    assert "cross-stack-output-aws_secretsmanager_secretqdrant-api-key" in ref  # not a literal
    # ...no value for it anywhere in Terraform: the operator puts it (docs/data-stores.md).
    assert not [k for k in synth.resources(env.name, "data", "aws_secretsmanager_secret_version") if "qdrant" in k]
    # ...read through a SecretStore whose identity reads that secret and nothing else.
    trust, statements = _role(synth, env, "qdrant-secrets")
    assert f"system:serviceaccount:{QDRANT_NAMESPACE}:{local['serviceAccount']}" in json.dumps(trust)
    assert "qdrant-secrets" in local["roleArn"]
    (read,) = [s for s in statements if "secretsmanager:GetSecretValue" in s["Action"]]
    assert read["Resource"] == "${aws_secretsmanager_secret.qdrant-api-key_secret_BCA55CC1.arn}"


def test_snapshots_go_to_its_bucket_through_its_irsa_role(synth: Synth, env: EnvConfig) -> None:
    values = _values(_release(synth, env, "qdrant"))
    s3 = values["config"]["storage"]["snapshots_config"]
    assert s3["snapshots_storage"] == "s3"
    assert "cross-stack-output-aws_s3_bucketqdrant-snapshots" in s3["s3_config"]["bucket"]
    assert s3["s3_config"]["region"] == env.region and set(s3["s3_config"]) == {"bucket", "region"}  # no static key
    role_ref = values["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert "cross-stack-output-aws_iam_roleqdrant-irsa" in role_ref


def test_the_qdrant_role_may_touch_its_bucket_and_key_only(synth: Synth, env: EnvConfig) -> None:
    trust, statements = _role(synth, env, "qdrant")
    condition = json.dumps(trust)
    assert f"system:serviceaccount:{QDRANT_NAMESPACE}:qdrant" in condition and "sts.amazonaws.com" in condition
    resources = {r for s in statements for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])}
    bucket = "${aws_s3_bucket.qdrant-snapshots_bucket_50339E7A.arn}"
    assert resources == {bucket, f"{bucket}/*", "${aws_kms_key.qdrant-snapshots-key.arn}"}
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert actions == {
        "s3:ListBucket",
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:AbortMultipartUpload",
        "kms:Decrypt",
        "kms:GenerateDataKey",
    }
    (kms,) = [s for s in statements if "kms:Decrypt" in s["Action"]]
    assert kms["Condition"] == {"StringEquals": {"kms:ViaService": f"s3.{env.region}.amazonaws.com"}}
    # No other workload role names this bucket; the platform store reads the key secret for the serving namespace.
    for key, doc in synth.resources(env.name, "data", "aws_iam_role_policy").items():
        if not key.startswith("qdrant-irsa"):
            assert "qdrant-snapshots" not in doc["policy"], key


def test_the_snapshot_bucket_is_encrypted_with_its_own_key_and_closed(synth: Synth, env: EnvConfig) -> None:
    bucket = _data(synth, env, "aws_s3_bucket", "qdrant-snapshots")
    assert bucket["bucket"].startswith(f"{env.prefix}-{contracts.QDRANT_SNAPSHOT_BUCKET_SUFFIX}-")
    sse = _data(synth, env, "aws_s3_bucket_server_side_encryption_configuration", "qdrant-snapshots")
    rule = sse["rule"][0]
    assert rule["apply_server_side_encryption_by_default"] == {
        "sse_algorithm": "aws:kms",
        "kms_master_key_id": "${aws_kms_key.qdrant-snapshots-key.arn}",
    }
    assert rule["bucket_key_enabled"] is True
    key = synth.resources(env.name, "data", "aws_kms_key")["qdrant-snapshots-key"]
    assert key["enable_key_rotation"] is True
    block = _data(synth, env, "aws_s3_bucket_public_access_block", "qdrant-snapshots")
    assert all(block[k] is True for k in ("block_public_acls", "block_public_policy", "ignore_public_acls"))
    assert block["restrict_public_buckets"] is True
    (statement,) = policy(_data(synth, env, "aws_s3_bucket_policy", "qdrant-snapshots")["policy"])["Statement"]
    assert statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    (life,) = _data(synth, env, "aws_s3_bucket_lifecycle_configuration", "qdrant-snapshots")["rule"]
    assert life["expiration"] == [{"days": env.qdrant.snapshot_expire_days}]
    assert life["noncurrent_version_expiration"] == [{"noncurrent_days": env.qdrant.snapshot_noncurrent_expire_days}]
    versioning = _data(synth, env, "aws_s3_bucket_versioning", "qdrant-snapshots")
    assert versioning["versioning_configuration"]["status"] == "Enabled"
