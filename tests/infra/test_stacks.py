"""Every layer of every environment: backend, tags, and the properties the issue asks for."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import yaml
from cdktn import Testing as Matchers  # "Test*" names would be collected by pytest

from core import alertmanager as core_alertmanager
from core import images
from infra.config import EnvConfig, load_versions
from infra.stacks.base import AWS_LAYERS, LAYERS
from modules import alerting, database_bootstrap
from modules.k8s.props import MonitoringProps
from modules.workload_roles import ALERT_SECRETS
from tests.infra.conftest import Synth, only, policy


def test_every_stack_has_s3_backend_with_locking_and_its_own_key(synth: Synth, env: EnvConfig) -> None:
    keys = set()
    for layer in LAYERS:
        backend = synth.stack(env.name, layer)["terraform"]["backend"]["s3"]
        assert backend["use_lockfile"] is True and backend["encrypt"] is True
        assert backend["bucket"] == env.state.bucket
        keys.add(backend["key"])
    assert keys == {f"mlp/{env.name}/{layer}.tfstate" for layer in LAYERS}


def test_aws_stacks_tag_everything_by_default(synth: Synth, env: EnvConfig) -> None:
    for layer in AWS_LAYERS:
        text = synth.text(env.name, layer)
        assert Matchers.to_have_provider_with_properties(text, "aws", {"region": env.region})
        tags = synth.stack(env.name, layer)["provider"]["aws"][0]["default_tags"][0]["tags"]
        assert tags["environment"] == env.name and tags["layer"] == layer and tags["owner"]


def test_no_data_source_but_cross_stack_state_and_no_account_id_or_secret(synth: Synth, env: EnvConfig) -> None:
    for layer in LAYERS:
        text = synth.text(env.name, layer)
        assert set(synth.stack(env.name, layer).get("data", {})) <= {"terraform_remote_state"}, layer
        assert not re.search(r"\b\d{12}\b", text), f"{layer}: looks like an account ID"
        assert '"password"' not in text and "secret_key" not in text
    assert "terraform_remote_state" in synth.stack(env.name, "cluster")["data"]


def test_network(synth: Synth, env: EnvConfig) -> None:
    azs = len(env.network.azs)
    assert azs == (2 if env.name == "dev" else 3)
    subnets = synth.resources(env.name, "network", "aws_subnet").values()
    assert sorted(s["availability_zone"] for s in subnets) == sorted(env.network.azs * 2)
    nats = synth.resources(env.name, "network", "aws_nat_gateway")
    assert len(nats) == (azs if env.name == "prod" else 1)
    endpoints = synth.resources(env.name, "network", "aws_vpc_endpoint").values()
    services = {e["service_name"] for e in endpoints}
    region = env.region
    assert services == {f"com.amazonaws.{region}.{s}" for s in ("s3", "ecr.api", "ecr.dkr", "sts")}
    s3 = [e for e in endpoints if e["service_name"].endswith(".s3")]
    assert s3[0]["vpc_endpoint_type"] == "Gateway" and len(s3[0]["route_table_ids"]) == azs
    assert all(e["private_dns_enabled"] for e in endpoints if e["vpc_endpoint_type"] == "Interface")
    text = synth.text(env.name, "network")
    assert Matchers.to_have_resource_with_properties(text, "aws_flow_log", {"traffic_type": "ALL"})
    group = only(synth.resources(env.name, "network", "aws_cloudwatch_log_group"))
    assert group["retention_in_days"] >= 365 and group["kms_key_id"]


def test_cluster_control_plane(synth: Synth, env: EnvConfig) -> None:
    eks = only(synth.resources(env.name, "cluster", "aws_eks_cluster"))
    assert eks["version"] == env.cluster.kubernetes_version
    assert (
        eks["encryption_config"]["resources"] == ["secrets"]
        and "aws_kms_key" in eks["encryption_config"]["provider"]["key_arn"]
    )
    assert set(eks["enabled_cluster_log_types"]) == {"api", "audit", "authenticator", "controllerManager", "scheduler"}
    vpc = eks["vpc_config"]
    assert vpc["endpoint_private_access"] is True
    assert (
        vpc["public_access_cidrs"] == env.cluster.public_access_cidrs and "0.0.0.0/0" not in vpc["public_access_cidrs"]
    )
    assert eks["access_config"]["authentication_mode"] == "API"
    assert Matchers.to_have_resource_with_properties(
        synth.text(env.name, "cluster"), "aws_iam_openid_connect_provider", {"client_id_list": ["sts.amazonaws.com"]}
    )


def test_node_groups(synth: Synth, env: EnvConfig) -> None:
    groups = {g["node_group_name"]: g for g in synth.resources(env.name, "cluster", "aws_eks_node_group").values()}
    assert set(groups) == {f"{env.prefix}-{n}" for n in ("system", "cpu-inference", "gpu-inference")}
    gpu = groups[f"{env.prefix}-gpu-inference"]
    assert gpu["ami_type"] == "AL2023_x86_64_NVIDIA"
    assert gpu["taint"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]
    assert gpu["scaling_config"]["min_size"] == 0
    assert gpu["labels"]["nvidia.com/gpu.present"] == "true"
    for g in groups.values():
        assert g["labels"]["mlp.io/pool"]
        assert g["lifecycle"]["ignore_changes"] == ["scaling_config[0].desired_size"]
        assert g["tags"][f"k8s.io/cluster-autoscaler/{env.cluster_name}"] == "owned"
    for lt in synth.resources(env.name, "cluster", "aws_launch_template").values():
        assert lt["metadata_options"]["http_tokens"] == "required"
        assert lt["block_device_mappings"][0]["ebs"]["encrypted"] == "true"


def test_core_addons_and_autoscaler_role(synth: Synth, env: EnvConfig) -> None:
    addons = {a["addon_name"] for a in synth.resources(env.name, "cluster", "aws_eks_addon").values()}
    assert {"vpc-cni", "coredns", "kube-proxy", "aws-ebs-csi-driver"} <= addons
    roles = synth.resources(env.name, "cluster", "aws_iam_role")
    ca = next(r for r in roles.values() if r["name"] == f"{env.prefix}-cluster-autoscaler")
    trust = policy(ca["assume_role_policy"])["Statement"][0]
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    cond = trust["Condition"]["StringEquals"]
    assert "system:serviceaccount:kube-system:cluster-autoscaler" in cond.values()
    inline = [
        p for p in synth.resources(env.name, "cluster", "aws_iam_role_policy").values() if "autoscaler" in p["role"]
    ]
    assert len(inline) == 1
    statements = policy(inline[0]["policy"])["Statement"]
    writes = [s for s in statements if "autoscaling:SetDesiredCapacity" in s["Action"]]
    assert writes and writes[0]["Resource"] != "*" and f"eks-{env.cluster_name}-" in writes[0]["Resource"]
    assert all(
        s["Resource"] != "*"
        for s in statements
        if any(not a.split(":")[1].startswith(("Describe", "Get")) for a in s["Action"])
    )


def test_cert_manager_answers_dns01_in_the_hosted_zone_only(synth: Synth, env: EnvConfig) -> None:
    """Decision 0135: cert-manager's IRSA role writes TXT records in the environment's zone and nowhere else; the
    chart runs with that role and the ClusterIssuer names the same zone."""
    roles = synth.resources(env.name, "cluster", "aws_iam_role")
    role = next(r for r in roles.values() if r["name"] == f"{env.prefix}-cert-manager")
    trust = policy(role["assume_role_policy"])["Statement"][0]
    assert "system:serviceaccount:cert-manager:cert-manager" in trust["Condition"]["StringEquals"].values()
    (inline,) = [
        p for p in synth.resources(env.name, "cluster", "aws_iam_role_policy").values() if "cert-manager" in p["role"]
    ]
    statements = policy(inline["policy"])["Statement"]
    (write,) = [s for s in statements if "route53:ChangeResourceRecordSets" in s["Action"]]
    assert write["Resource"] == f"arn:aws:route53:::hostedzone/{env.edge.hosted_zone_id}"
    assert write["Condition"]["ForAllValues:StringEquals"]["route53:ChangeResourceRecordSetsRecordTypes"] == ["TXT"]
    assert all(s["Resource"] != "*" for s in statements)
    releases = synth.resources(env.name, "addons", "helm_release").values()
    chart = yaml.safe_load(next(r for r in releases if r.get("chart") == "cert-manager")["values"][0])
    assert chart["crds"]["enabled"] is True and chart["serviceAccount"]["name"] == "cert-manager"
    assert chart["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"]  # a cross-stack reference
    issuers = yaml.safe_load(next(r for r in releases if r["name"] == "cert-issuers")["values"][0])["manifests"]
    (issuer,) = issuers
    (solver,) = issuer["spec"]["acme"]["solvers"]
    assert solver["dns01"]["route53"]["hostedZoneID"] == env.edge.hosted_zone_id
    assert solver["selector"]["dnsZones"] == [env.edge.dns_zone]


def test_database(synth: Synth, env: EnvConfig) -> None:
    db = only(synth.resources(env.name, "data", "aws_db_instance"))
    assert db["engine"] == "postgres" and db["manage_master_user_password"] is True and "password" not in db
    assert db["storage_encrypted"] is True and db["publicly_accessible"] is False
    assert db["backup_retention_period"] == env.database.backup_retention_days >= 1
    assert db["multi_az"] is env.database.multi_az and db["deletion_protection"] is env.database.deletion_protection
    if env.name == "prod":
        assert db["multi_az"] is True and db["deletion_protection"] is True
    rule = only(synth.resources(env.name, "data", "aws_vpc_security_group_ingress_rule"))
    assert rule["from_port"] == rule["to_port"] == 5432
    assert "cluster_security_group_id" in rule["referenced_security_group_id"] and "cidr_ipv4" not in rule
    sg = only(synth.resources(env.name, "data", "aws_security_group"))
    assert not sg.get("ingress")


def test_buckets_and_registry(synth: Synth, env: EnvConfig) -> None:
    buckets = synth.resources(env.name, "data", "aws_s3_bucket")
    assert len(buckets) == 3  # artifacts, inference logs, Qdrant snapshots
    for block in synth.resources(env.name, "data", "aws_s3_bucket_public_access_block").values():
        assert all(
            block[k] is True
            for k in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
        )
    for v in synth.resources(env.name, "data", "aws_s3_bucket_versioning").values():
        assert v["versioning_configuration"]["status"] == "Enabled"
    for sse in synth.resources(env.name, "data", "aws_s3_bucket_server_side_encryption_configuration").values():
        default = sse["rule"][0]["apply_server_side_encryption_by_default"]
        assert default["sse_algorithm"] == "aws:kms" and "aws_kms_key" in default["kms_master_key_id"]
    for pol in synth.resources(env.name, "data", "aws_s3_bucket_policy").values():
        stmt = policy(pol["policy"])["Statement"][0]
        assert stmt["Effect"] == "Deny" and stmt["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    lifecycles = list(synth.resources(env.name, "data", "aws_s3_bucket_lifecycle_configuration").values())
    assert len(lifecycles) == 3 and all(lc["rule"][0]["noncurrent_version_expiration"] for lc in lifecycles)
    assert any(lc["rule"][0].get("expiration") for lc in lifecycles)
    repos = synth.resources(env.name, "data", "aws_ecr_repository").values()
    assert repos
    for repo in repos:
        assert repo["image_tag_mutability"] == "IMMUTABLE"
        assert repo["image_scanning_configuration"]["scan_on_push"] is True
        assert repo["encryption_configuration"][0]["encryption_type"] == "KMS"


def _role_policy(synth: Synth, env: EnvConfig, suffix: str) -> tuple[dict[str, object], list[dict[str, object]]]:
    roles = synth.resources(env.name, "data", "aws_iam_role")
    role = next(r for r in roles.values() if r["name"] == f"{env.prefix}-{suffix}")
    policies = [
        p for p in synth.resources(env.name, "data", "aws_iam_role_policy").values() if f"{suffix}-irsa" in p["role"]
    ]
    return policy(str(role["assume_role_policy"])), policy(str(policies[0]["policy"]))["Statement"]


def test_workload_roles_are_scoped(synth: Synth, env: EnvConfig) -> None:
    cases = {
        "mlflow": ("system:serviceaccount:mlflow:mlflow", {"/mlflow/*"}),
        "model-server": ("system:serviceaccount:model-serving:model-server", {"/mlflow/*", "/model=*"}),
        "drift-job": ("system:serviceaccount:model-serving:drift-job", {"/mlflow/*", "/model=*", "/reports/drift/*"}),
    }
    for suffix, (subject, prefixes) in cases.items():
        trust, statements = _role_policy(synth, env, suffix)
        assert subject in json.dumps(trust)
        object_resources = {
            str(s["Resource"]).split("}", 1)[-1]
            for s in statements
            if str(s["Action"]).count("s3:") and s["Action"] != "s3:ListBucket"
        }
        assert object_resources == prefixes, suffix
        for s in statements:
            assert s["Resource"] != "*" and "*" not in str(s["Action"])
    _, mlflow = _role_policy(synth, env, "mlflow")
    secret = [s for s in mlflow if "secretsmanager:GetSecretValue" in s["Action"]]
    # MLflow reads its own database role's secret, never the RDS master's (decision 0144)...
    assert secret and "aws_secretsmanager_secret.mlflow-db-app" in str(secret[0]["Resource"])
    assert "master_user_secret" not in json.dumps(mlflow)
    assert "aws_secretsmanager_secret.registry-users" in str(secret[0]["Resource"])  # syncs the registry users
    # ...which only the bootstrap Job's role reads, and nothing else.
    trust, bootstrap = _role_policy(synth, env, "mlflow-db-bootstrap")
    assert "system:serviceaccount:mlflow:mlflow-db-bootstrap" in json.dumps(trust)
    (read,) = [s for s in bootstrap if "secretsmanager:GetSecretValue" in s["Action"]]
    assert "master_user_secret" in str(read["Resource"]) and isinstance(read["Resource"], str)
    assert {a for s in bootstrap for a in s["Action"]} == {
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
        "kms:Decrypt",
    }
    _, server = _role_policy(synth, env, "model-server")
    assert not any("secretsmanager" in str(s["Action"]) for s in server)


def test_addons_are_pinned_and_wired(synth: Synth, env: EnvConfig) -> None:
    versions = load_versions()
    releases = synth.resources(env.name, "addons", "helm_release")
    charts = {r["chart"]: r for r in releases.values() if "repository" in r}
    assert {c.chart for c in versions.charts.values()} == set(charts)
    for c in versions.charts.values():
        assert charts[c.chart]["version"] == c.version and charts[c.chart]["repository"] == c.repository
    plugin = charts["nvidia-device-plugin"]["values"][0]
    assert "timeSlicing" in plugin and f"replicas: {env.cluster.gpu_time_slicing_replicas}" in plugin
    mlflow = charts["mlflow"]["values"][0]
    assert "eks.amazonaws.com/role-arn" in mlflow and "existingDatabaseSecret" in mlflow and "s3:" in mlflow
    assert "awsAccessKeyId" not in mlflow
    assert "aws_db_instance" in mlflow and "aws_s3_bucket" in mlflow  # cross-stack references, not literals
    local = [r for r in releases.values() if "repository" not in r]
    assert {r["name"] for r in local} == {
        "alertmanager-secrets",
        "mlflow-db-secret",
        "platform-guardrails",
        "platform-access",
        "mlflow-registry-users",
        "cert-issuers",
        "qdrant-secrets",
        "storage-classes",
    }
    assert all(r["chart"].startswith("assets/") for r in local)


def test_registry_runs_the_basic_auth_app_with_users_from_secrets_manager(synth: Synth, env: EnvConfig) -> None:
    """docs/security-registry.md: MLflow's auth app on, its own database on RDS, the admin credential and the CSRF
    key synced by ExternalSecrets from a KMS-encrypted Secrets Manager secret whose value Terraform never holds."""
    secrets = synth.resources(env.name, "data", "aws_secretsmanager_secret").values()
    (secret,) = [s for s in secrets if s["name"] == f"{env.prefix}/mlflow/registry-users"]
    assert "aws_kms_key" in str(secret["kms_key_id"])
    assert not synth.resources(env.name, "data", "aws_secretsmanager_secret_version")  # no value in state
    releases = synth.resources(env.name, "addons", "helm_release").values()
    mlflow = yaml.safe_load(next(r for r in releases if r["chart"] == "mlflow")["values"][0])
    assert mlflow["auth"]["enabled"] is True and mlflow["auth"]["defaultPermission"] == "READ"
    assert mlflow["auth"]["postgres"]["database"] == "mlflow_auth"
    assert "aws_db_instance" in mlflow["auth"]["postgres"]["host"]
    assert "adminPassword" not in mlflow["auth"]
    local = yaml.safe_load(next(r for r in releases if r["name"] == "mlflow-db-secret")["values"][0])
    registry = [
        m
        for m in local["manifests"]
        if m["kind"] == "ExternalSecret"
        and any("registry-users" in str(d["remoteRef"]["key"]) for d in m["spec"]["data"])
    ]
    names = {m["metadata"]["name"] for m in registry}
    assert names == {mlflow["auth"]["existingAdminSecret"]["name"], *mlflow["extraSecretNamesForEnvFrom"]}
    for manifest in local["manifests"]:
        assert manifest["metadata"]["namespace"] == "mlflow"
    for manifest in registry:
        assert all("registry-users" in str(d["remoteRef"]["key"]) for d in manifest["spec"]["data"])


def test_pushgateway_is_installed_where_the_drift_job_pushes(synth: Synth, env: EnvConfig) -> None:
    """The drift CronJob's default URL is the Service of the Pushgateway release this stack installs, scraped by
    the platform Prometheus (the ServiceMonitor carries the label it selects), in memory (no volume)."""
    releases = synth.resources(env.name, "addons", "helm_release").values()
    pgw = next(r for r in releases if r["chart"] == "prometheus-pushgateway")
    values = yaml.safe_load(pgw["values"][0])
    url = urlsplit(MonitoringProps().pushgateway_url)
    assert url.hostname == f"{values['fullnameOverride']}.{pgw['namespace']}.svc"
    assert url.port == values["service"]["port"]
    prometheus = next(r for r in releases if r["chart"] == "kube-prometheus-stack")
    selector = yaml.safe_load(prometheus["values"][0])["prometheus"]["prometheusSpec"]["serviceMonitorSelector"]
    monitor = values["serviceMonitor"]
    assert monitor["enabled"] and monitor["honorLabels"]
    assert selector["matchLabels"].items() <= monitor["additionalLabels"].items()
    assert monitor["namespace"] == pgw["namespace"] == prometheus["namespace"]
    assert values["persistentVolume"]["enabled"] is False
    assert values["resources"]["requests"] and values["resources"]["limits"]
    assert any("kube-prometheus-stack" in d for d in pgw["depends_on"])


def test_registry_creates_one_repository_per_declared_image(synth: Synth, env: EnvConfig) -> None:
    names = {r["name"] for r in synth.resources(env.name, "data", "aws_ecr_repository").values()}
    assert names == {images.repository(env.prefix, image) for image in images.REPOSITORIES}


def test_registered_artifacts_are_write_once(synth: Synth, env: EnvConfig) -> None:
    """The artifact bucket locks every object version (COMPLIANCE) and its policy lets only MLflow's role write under
    `mlflow/` and nobody delete or unlock there; the inference-log bucket is not locked (it expires by design)."""
    buckets = synth.resources(env.name, "data", "aws_s3_bucket")
    locked = {k for k, b in buckets.items() if b.get("object_lock_enabled") is True}
    assert len(locked) == 1 and "artifacts" in next(iter(locked))
    (lock,) = synth.resources(env.name, "data", "aws_s3_bucket_object_lock_configuration").values()
    assert lock["rule"]["default_retention"] == {"mode": "COMPLIANCE", "days": env.storage.artifact_lock_days}
    assert next(iter(locked)) in lock["bucket"]
    statements = {
        s.get("Sid"): s
        for pol in synth.resources(env.name, "data", "aws_s3_bucket_policy").values()
        for s in policy(pol["policy"])["Statement"]
    }
    writers = statements["WriteOnceOnlyTheRegistryWrites"]
    assert writers["Effect"] == "Deny" and "s3:PutObject" in writers["Action"]
    assert str(writers["Resource"]).endswith("/mlflow/*")
    (writer,) = writers["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    assert writer.startswith("arn:aws:iam::") and writer.endswith(f":role/{env.prefix}-mlflow")
    nodelete = statements["WriteOnceNoDeleteNoUnlock"]
    assert nodelete["Effect"] == "Deny" and "Condition" not in nodelete
    assert {"s3:DeleteObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention"} <= set(nodelete["Action"])


def test_the_artifact_signing_key_signs_for_the_release_runners_only(synth: Synth, env: EnvConfig) -> None:
    """An asymmetric P-256 key (what the verifier accepts as KMS's); kms:Sign allowed to the release runners' role
    and denied to every other principal, so no IAM policy can widen it; the account only administers it."""
    keys = synth.resources(env.name, "data", "aws_kms_key")
    (signing,) = [k for k in keys.values() if k.get("key_usage") == "SIGN_VERIFY"]
    assert signing["customer_master_key_spec"] == "ECC_NIST_P256"
    statements = {s["Sid"]: s for s in policy(signing["policy"])["Statement"]}
    signers = statements["SignersSign"]
    assert signers["Effect"] == "Allow" and "kms:Sign" in signers["Action"]
    deny = statements["NobodyElseSigns"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == {"AWS": "*"} and deny["Action"] == "kms:Sign"
    assert deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"] == signers["Principal"]["AWS"]
    (signer,) = signers["Principal"]["AWS"]
    assert "release-runner" in signer, f"the in-cluster release runners' IRSA role: {signer}"
    admin = statements["AccountAdministersThroughIam"]
    assert not any(a in ("kms:*", "kms:Sign") or a.startswith("kms:Sign") for a in admin["Action"])
    assert {"artifact_signing_key_arn"} <= set(synth.stack(env.name, "data").get("output", {}))


def test_alertmanager_pages_and_tickets_with_credentials_from_secrets_manager(synth: Synth, env: EnvConfig) -> None:
    """docs/observability.md, alert delivery: the routes of core/alertmanager.py in kube-prometheus-stack's
    Alertmanager, the receivers' credentials mounted from a Secret that an ExternalSecret syncs from a KMS-encrypted
    Secrets Manager secret (no value in state), read by a role that may read only that secret."""
    secrets = synth.resources(env.name, "data", "aws_secretsmanager_secret").values()
    (secret,) = [s for s in secrets if s["name"] == alerting.secret_name(env.prefix)]
    assert "aws_kms_key" in str(secret["kms_key_id"])
    assert not synth.resources(env.name, "data", "aws_secretsmanager_secret_version")
    trust, statements = _role_policy(synth, env, ALERT_SECRETS.role_suffix)
    assert f"system:serviceaccount:{ALERT_SECRETS.namespace}:{ALERT_SECRETS.service_account}" in json.dumps(trust)
    reads = [s for s in statements if "secretsmanager:GetSecretValue" in s["Action"]]
    assert len(reads) == 1 and "aws_secretsmanager_secret.alert-receivers" in str(reads[0]["Resource"])
    assert "registry-users" not in json.dumps(statements) and "master_user_secret" not in json.dumps(statements)

    releases = list(synth.resources(env.name, "addons", "helm_release").values())
    stack = next(r for r in releases if r["chart"] == "kube-prometheus-stack")
    values = yaml.safe_load(stack["values"][0])["alertmanager"]
    assert values["config"]["route"] == core_alertmanager.route()
    assert values["config"]["inhibit_rules"] == core_alertmanager.inhibit_rules()
    mounted = values["alertmanagerSpec"]["secrets"]
    files = [c for r in values["config"]["receivers"] for k, v in r.items() if k.endswith("_configs") for c in v]
    for c in files:
        path = alerting.credential_file(c)
        assert path, f"a notifier without a credentials file: {c}"
        _, secret_dir, key = path.rsplit("/", 2)
        assert secret_dir in mounted, path
        chart = next(r for r in releases if r["name"] == "alertmanager-secrets")
        [external] = yaml.safe_load(chart["values"][0])["manifests"]
        assert external["spec"]["target"]["name"] == secret_dir
        assert key in {d["secretKey"] for d in external["spec"]["data"]}
    assert any("alertmanager-secrets" in d for d in stack["depends_on"])
    assert "routing_key:" not in stack["values"][0] and "api_url:" not in stack["values"][0]


def test_mlflow_connects_as_its_own_role_and_verifies_the_certificate(synth: Synth, env: EnvConfig) -> None:
    """MLflow's database user is `mlflow_app`, not the RDS master; its connections use verify-full with RDS's CA
    bundle; only the bootstrap Job's pod references the master credential (decision 0144)."""
    releases = synth.resources(env.name, "addons", "helm_release").values()
    mlflow = yaml.safe_load(next(r for r in releases if r["chart"] == "mlflow")["values"][0])
    assert mlflow["extraEnvVars"]["PGSSLMODE"] == "verify-full"
    assert mlflow["extraEnvVars"]["PGSSLROOTCERT"] == database_bootstrap.CA_FILE
    assert [c["name"] for c in mlflow["initContainers"]] == ["fetch-rds-ca"]
    assert database_bootstrap.MASTER_SECRET not in json.dumps(mlflow)
    db_secret = yaml.safe_load(next(r for r in releases if r["name"] == "mlflow-db-secret")["values"][0])
    assert "mlflow-db-app" in db_secret["secretArn"] and "master_user_secret" not in db_secret["secretArn"]
    (job,) = [m for m in db_secret["manifests"] if m["kind"] == "Job"]
    env_vars = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env_vars["DATABASES"] == f"{env.database.database_name},mlflow_auth"
    assert env_vars["APP_USER"] == database_bootstrap.APP_ROLE != env.database.master_username
    readers = [
        m["metadata"]["name"]
        for m in db_secret["manifests"]
        if database_bootstrap.MASTER_SECRET in json.dumps(m) and m["kind"] in {"Job", "Deployment"}
    ]
    assert readers == [database_bootstrap.NAME]
