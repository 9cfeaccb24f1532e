"""Identity, read from the synthesized stacks: GitHub OIDC roles that trust exactly one subject each, a pull-request
plan role that can never read a secret or decrypt, no hidden cluster admin, scoped access entries, one KMS key per
data store and every workload key grant limited to the store's service."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra import tco
from infra.config import EnvConfig
from infra.stacks import LAYERS
from tests.infra.conftest import Synth, only, policy

ISSUER = "token.actions.githubusercontent.com"


def _github_roles(synth: Synth, env: EnvConfig) -> dict[str, dict[str, Any]]:
    roles = synth.resources(env.name, "network", "aws_iam_role").values()
    return {r["name"].rsplit("-", 1)[-1]: r for r in roles if "-github-" in r["name"]}


def _inline(synth: Synth, env: EnvConfig, kind: str) -> list[dict[str, Any]]:
    (doc,) = [
        p["policy"]
        for p in synth.resources(env.name, "network", "aws_iam_role_policy").values()
        if f"github_{kind}" in p["role"]
    ]
    return list(policy(doc)["Statement"])


def test_github_roles_trust_one_exact_subject_and_the_sts_audience(synth: Synth, env: EnvConfig) -> None:
    repo = env.github.repository
    expected = {
        "deploy": f"repo:{repo}:environment:{env.name}",
        "release": f"repo:{repo}:environment:{env.name}",
        "plan": f"repo:{repo}:pull_request",
    }
    roles = _github_roles(synth, env)
    assert set(roles) == set(expected)
    for kind, role in roles.items():
        (stmt,) = policy(role["assume_role_policy"])["Statement"]
        assert stmt["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert "oidc-provider" in stmt["Principal"]["Federated"] or "aws_iam_openid_connect_provider" in str(stmt)
        assert set(stmt["Condition"]) == {"StringEquals"}, "StringLike would allow patterns"
        cond = stmt["Condition"]["StringEquals"]
        assert cond == {f"{ISSUER}:sub": expected[kind], f"{ISSUER}:aud": "sts.amazonaws.com"}, kind
        assert "*" not in json.dumps(cond)


def test_the_oidc_provider_is_github_with_the_sts_audience(synth: Synth, env: EnvConfig) -> None:
    provider = only(synth.resources(env.name, "network", "aws_iam_openid_connect_provider"))
    assert provider["url"] == f"https://{ISSUER}" and provider["client_id_list"] == ["sts.amazonaws.com"]


def test_the_plan_role_never_reads_a_secret_or_decrypts(synth: Synth, env: EnvConfig) -> None:
    statements = _inline(synth, env, "plan")
    denies = [s for s in statements if s["Effect"] == "Deny" and s["Resource"] == "*"]
    unconditional = {a for s in denies if "Condition" not in s for a in s["Action"]}
    assert "secretsmanager:GetSecretValue" in unconditional
    (decrypt,) = [s for s in denies if s["Action"] == "kms:Decrypt"]
    # Denied unless the ciphertext is an object of the state bucket (an absent context key is denied too).
    state = f"arn:aws:s3:::{env.state.bucket}"
    assert decrypt["Condition"] == {"StringNotLike": {"kms:EncryptionContext:aws:s3:arn": [state, f"{state}/*"]}}
    for s in statements:
        if s["Effect"] == "Allow" and "kms:" in str(s["Action"]):
            assert s["Condition"]["StringLike"]["kms:EncryptionContext:aws:s3:arn"] == [state, f"{state}/*"]
    writes = [
        a
        for s in statements
        if s["Effect"] == "Allow"
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        if a in {"s3:PutObject", "s3:DeleteObject"}
    ]
    assert writes, "plan takes the state lock"
    for s in statements:
        if s["Effect"] == "Allow" and "s3:PutObject" in s["Action"]:
            assert str(s["Resource"]).endswith(".tflock"), "plan may write the lock object, never the state"
    attached = [
        a["policy_arn"]
        for a in synth.resources(env.name, "network", "aws_iam_role_policy_attachment").values()
        if "github_plan" in a["role"]
    ]
    assert attached == ["arn:aws:iam::aws:policy/ReadOnlyAccess"]


def test_the_deploy_role_manages_only_its_own_iam(synth: Synth, env: EnvConfig) -> None:
    for s in _inline(synth, env, "deploy"):
        if any(str(a).startswith("iam:") for a in s["Action"]):
            resources = s["Resource"]
            assert all(
                f":role/{env.prefix}-*" in r or f"/{env.prefix}-*" in r or "oidc-provider" in r for r in resources
            )


def test_no_creator_admin_and_every_access_entry_explicit_and_scoped(synth: Synth, env: EnvConfig) -> None:
    cluster = only(synth.resources(env.name, "cluster", "aws_eks_cluster"))
    access = cluster["access_config"]
    assert access["authentication_mode"] == "API"
    assert access["bootstrap_cluster_creator_admin_permissions"] is False
    entries = synth.resources(env.name, "cluster", "aws_eks_access_entry")
    associations = list(synth.resources(env.name, "cluster", "aws_eks_access_policy_association").values())
    assert len(associations) == len(entries) >= 2

    def principal(association: dict[str, Any]) -> str:
        (key,) = [k for k in entries if f"aws_eks_access_entry.{k}." in association["principal_arn"]]
        return str(entries[key]["principal_arn"])

    by_policy: dict[str, list[dict[str, Any]]] = {}
    for a in associations:
        by_policy.setdefault(a["policy_arn"].rsplit("/", 1)[-1], []).append(a)
    (admin,) = by_policy["AmazonEKSClusterAdminPolicy"]  # the CI deploy role only (no operator roles configured)
    assert "github_deploy" in principal(admin) and admin["access_scope"]["type"] == "cluster"
    (edit,) = by_policy["AmazonEKSEditPolicy"]
    assert "github_release" in principal(edit)
    assert edit["access_scope"] == {"type": "namespace", "namespaces": ["model-serving"]}


def test_one_kms_key_per_data_store(synth: Synth, env: EnvConfig) -> None:
    # Encryption keys; the artifact-signing key encrypts nothing (test_stacks.py checks it).
    all_keys = synth.resources(env.name, "data", "aws_kms_key")
    keys = {k: v for k, v in all_keys.items() if v.get("key_usage") != "SIGN_VERIFY"}
    assert len(all_keys) - len(keys) == 1
    key_of = {
        "artifacts": only(
            {
                k: v
                for k, v in synth.resources(
                    env.name, "data", "aws_s3_bucket_server_side_encryption_configuration"
                ).items()
                if "artifacts" in k
            }
        )["rule"][0]["apply_server_side_encryption_by_default"]["kms_master_key_id"],
        "inference-logs": only(
            {
                k: v
                for k, v in synth.resources(
                    env.name, "data", "aws_s3_bucket_server_side_encryption_configuration"
                ).items()
                if "inference-logs" in k or "inference_logs" in k
            }
        )["rule"][0]["apply_server_side_encryption_by_default"]["kms_master_key_id"],
        "database": only(synth.resources(env.name, "data", "aws_db_instance"))["kms_key_id"],
        "secrets": only(synth.resources(env.name, "data", "aws_db_instance"))["master_user_secret_kms_key_id"],
    }
    key_of["qdrant-snapshots"] = only(
        {
            k: v
            for k, v in synth.resources(env.name, "data", "aws_s3_bucket_server_side_encryption_configuration").items()
            if "qdrant" in k
        }
    )["rule"][0]["apply_server_side_encryption_by_default"]["kms_master_key_id"]
    key_of["registry"] = {
        r["encryption_configuration"][0]["kms_key"]
        for r in synth.resources(env.name, "data", "aws_ecr_repository").values()
    }.pop()
    assert len(set(key_of.values())) == len(key_of) == len(keys), key_of
    assert all("aws_kms_key" in ref for ref in key_of.values())
    db = only(synth.resources(env.name, "data", "aws_db_instance"))
    assert db["performance_insights_kms_key_id"] == db["kms_key_id"]


@pytest.mark.parametrize("layer", [la for la in LAYERS if la != "addons"])
def test_the_cost_model_counts_the_keys_the_stacks_create(synth: Synth, layer: str) -> None:
    assert len(synth.resources("dev", layer, "aws_kms_key")) == tco.KMS_KEYS[layer]


def test_every_workload_key_grant_goes_through_the_stores_service(synth: Synth, env: EnvConfig) -> None:
    grants = []
    for p in synth.resources(env.name, "data", "aws_iam_role_policy").values():
        for s in policy(p["policy"])["Statement"]:
            actions = [s["Action"]] if isinstance(s["Action"], str) else s["Action"]
            if any(a.startswith("kms:") for a in actions):
                grants.append(s)
                via = s["Condition"]["StringEquals"]["kms:ViaService"]
                assert via in {f"s3.{env.region}.amazonaws.com", f"secretsmanager.{env.region}.amazonaws.com"}
                assert s["Resource"] != "*"
                assert set(actions) <= {"kms:Decrypt", "kms:GenerateDataKey"}
    assert len(grants) >= 6  # mlflow 2, model server 2, drift job 2
