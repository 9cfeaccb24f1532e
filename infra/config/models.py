"""Typed configuration of one environment (dev, staging, prod) and of the pinned add-on versions.

What differs between environments lives here; thresholds and prices live in `policy.yaml`. Validators encode the
rules a reviewer would otherwise have to remember (prod is Multi-AZ, the public API endpoint is never open to the
world, a GPU node group carries the GPU taint and scales from zero).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ENVIRONMENTS: tuple[str, ...] = ("dev", "staging", "prod")
GPU_TAINT_KEY = "nvidia.com/gpu"

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StateBackendConfig(Strict):
    """Where Terraform state lives. The bucket is created once per account (docs/cluster.md#state), not by these
    stacks; locking uses the S3 native lockfile (Terraform >= 1.10), so no DynamoDB table is needed."""

    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    region: str
    key_prefix: str = "mlp"
    use_lockfile: bool = True


class NetworkConfig(Strict):
    cidr: str = "10.0.0.0/16"
    azs: list[str] = Field(min_length=2, max_length=3, description="Availability zones, named explicitly (no lookup)")
    nat_gateways: Literal["single", "per_az"] = "single"
    # ECR (api, dkr) for image pulls and STS for IRSA stay off NAT; S3 has a free gateway endpoint on top.
    interface_endpoints: list[str] = Field(default_factory=lambda: ["ecr.api", "ecr.dkr", "sts"])
    flow_log_retention_days: int = Field(default=365, ge=1)

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        net = ipaddress.IPv4Network(value)
        if net.prefixlen > 20:
            raise ValueError(f"network.cidr {value} is too small: use a /20 or larger (it is split into 6 subnets)")
        return value

    def subnet_cidrs(self) -> tuple[list[str], list[str]]:
        """(public, private) split of the VPC: the first three quarters are private subnets (one per AZ), the last
        quarter is cut into four and gives the public ones. Pods take VPC IPs (VPC CNI), load balancers need few."""
        net = ipaddress.IPv4Network(self.cidr)
        quarters = list(net.subnets(new_prefix=net.prefixlen + 2))
        private = quarters[: len(self.azs)]
        public = list(quarters[3].subnets(new_prefix=quarters[3].prefixlen + 2))[: len(self.azs)]
        return [str(n) for n in public], [str(n) for n in private]


class Taint(Strict):
    key: str
    value: str = "true"
    effect: Literal["NO_SCHEDULE", "NO_EXECUTE", "PREFER_NO_SCHEDULE"] = "NO_SCHEDULE"


class NodeGroupConfig(Strict):
    instance_types: list[str] = Field(min_length=1)
    ami_type: Literal["AL2023_x86_64_STANDARD", "AL2023_ARM_64_STANDARD", "AL2023_x86_64_NVIDIA"]
    capacity_type: Literal["ON_DEMAND", "SPOT"] = "ON_DEMAND"
    min_size: int = Field(ge=0)
    desired_size: int = Field(ge=0)
    max_size: int = Field(ge=1)
    disk_gib: int = Field(default=50, ge=20)
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[Taint] = Field(default_factory=list)

    @model_validator(mode="after")
    def _sizes(self) -> NodeGroupConfig:
        if not self.min_size <= self.desired_size <= self.max_size:
            raise ValueError(f"node group sizes must satisfy min <= desired <= max, got {self}")
        return self

    @property
    def gpu(self) -> bool:
        return self.ami_type == "AL2023_x86_64_NVIDIA"


class ClusterConfig(Strict):
    kubernetes_version: str = Field(default="1.33", pattern=r"^1\.\d{2}$")
    public_access_cidrs: list[str] = Field(min_length=1, description="Who may reach the public API endpoint")
    log_retention_days: int = Field(default=365, ge=1)
    enable_pod_identity_agent: bool = False
    admin_role_arns: list[str] = Field(
        default_factory=list,
        description="IAM roles of operators who get cluster admin through an access entry (the CI deploy role has it)",
    )
    gpu_time_slicing_replicas: int = Field(default=4, ge=1, le=16, description="Pods sharing one GPU")
    system: NodeGroupConfig
    cpu_inference: NodeGroupConfig
    gpu_inference: NodeGroupConfig

    @field_validator("public_access_cidrs")
    @classmethod
    def _restricted(cls, cidrs: list[str]) -> list[str]:
        for cidr in cidrs:
            net = ipaddress.ip_network(cidr)
            if net.prefixlen < 8:
                raise ValueError(f"public_access_cidrs: {cidr} is too wide; list the office/VPN/runner ranges")
        return cidrs

    @model_validator(mode="after")
    def _node_groups(self) -> ClusterConfig:
        gpu = self.gpu_inference
        if not gpu.gpu:
            raise ValueError("gpu_inference must use the AL2023_x86_64_NVIDIA AMI type")
        if gpu.min_size != 0:
            raise ValueError("gpu_inference.min_size must be 0: GPU nodes exist only while GPU pods need them")
        if not any(t.key == GPU_TAINT_KEY and t.effect == "NO_SCHEDULE" for t in gpu.taints):
            raise ValueError(f"gpu_inference needs the {GPU_TAINT_KEY} NoSchedule taint so only GPU pods land there")
        if self.system.min_size < 2:
            raise ValueError("system.min_size must be >= 2 (CoreDNS, controllers and add-ons need two nodes)")
        return self


class DatabaseConfig(Strict):
    engine_version: str = Field(default="17", pattern=r"^\d+(\.\d+)?$")
    instance_class: str = Field(pattern=r"^db\.")
    allocated_storage_gib: int = Field(ge=20)
    max_allocated_storage_gib: int = Field(ge=20)
    multi_az: bool
    deletion_protection: bool
    backup_retention_days: int = Field(ge=1, le=35)
    database_name: str = "mlflow"
    master_username: str = "mlflow_admin"

    @model_validator(mode="after")
    def _storage(self) -> DatabaseConfig:
        if self.max_allocated_storage_gib < self.allocated_storage_gib:
            raise ValueError("max_allocated_storage_gib must be >= allocated_storage_gib (storage autoscaling)")
        return self


class StorageConfig(Strict):
    """Buckets and ECR. Lifecycle windows in days. The ECR repositories themselves are `core.images.REPOSITORIES`:
    the release workflow pushes to the same names in every environment, so they are not per-environment settings."""

    artifact_noncurrent_expire_days: int = Field(default=90, ge=1)
    artifact_lock_days: int = Field(
        default=30, ge=1, description="Object Lock (COMPLIANCE) retention of every artifact version, in days"
    )
    inference_log_ia_days: int = Field(default=30, ge=30)  # S3 minimum for STANDARD_IA transitions
    inference_log_expire_days: int = Field(default=365, ge=31)
    ecr_keep_untagged_days: int = Field(default=14, ge=1)
    expected_artifact_gib: float = Field(default=50, ge=0, description="For the TCO estimate only")
    expected_inference_log_gib: float = Field(default=20, ge=0, description="For the TCO estimate only")
    expected_ecr_gib: float = Field(default=10, ge=0, description="For the TCO estimate only")


Quantity = Annotated[str, Field(pattern=r"^\d+(\.\d+)?(m|Mi|Gi)?$")]


class QdrantConfig(Strict):
    """The Qdrant server the RAG models keep their index in (modules/qdrant.py, decision 0181): its volume, pod size
    and snapshot bucket lifecycle."""

    volume_gib: int = Field(
        default=10,
        ge=1,
        le=16384,
        description="gp3 volume of its storage (collections, WAL). The on-call index is a few thousand 384-dimension "
        "vectors (a few MB); the rest is room for more corpora and segment rewrites. Grows in place (the StorageClass "
        "allows expansion); never shrinks",
    )
    cpu_request: Quantity = "100m"
    cpu_limit: Quantity = "1"
    memory_request: Quantity = "256Mi"
    memory_limit: Quantity = "1Gi"
    snapshot_expire_days: int = Field(
        default=30, ge=1, description="Snapshots in the bucket are deleted this long after they are written"
    )
    snapshot_noncurrent_expire_days: int = Field(default=7, ge=1, description="Overwritten snapshot versions kept")
    expected_snapshot_gib: float = Field(default=1, ge=0, description="For the TCO estimate only")


class GithubConfig(Strict):
    """The repository whose workflows deploy and release this environment (modules/github_oidc.py trusts exactly it).

    Its GitHub environment of the same name as this environment gates deploys and releases (reviewers on staging
    and prod); pull requests plan with the plan role."""

    repository: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", description="owner/name on GitHub")
    create_oidc_provider: bool = Field(
        default=True, description="False when another environment in the same AWS account already creates it"
    )


class EdgeConfig(Strict):
    """TLS at the cluster edge: the Route53 zone cert-manager answers ACME DNS-01 challenges in (decision 0135)."""

    hosted_zone_id: str = Field(pattern=r"^Z[A-Z0-9]{1,31}$", description="Route53 hosted zone of the gateway's name")
    dns_zone: str = Field(
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$",
        description="The zone's domain: the gateway's hostname lies under it",
    )
    acme_email: str = Field(
        pattern=r"^[^@\s]+@[^@\s]+$", description="Let's Encrypt account contact (expiry and policy notices)"
    )


class EnvConfig(Strict):
    name: Literal["dev", "staging", "prod"]
    project: Name = "mlp"
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    owner: str = "platform-team"
    cost_center: str = "ml-platform"
    state: StateBackendConfig
    network: NetworkConfig
    cluster: ClusterConfig
    database: DatabaseConfig
    storage: StorageConfig = StorageConfig()
    qdrant: QdrantConfig = QdrantConfig()
    github: GithubConfig
    edge: EdgeConfig
    expected_nat_gb_per_month: float = Field(default=100, ge=0, description="For the TCO estimate only")
    expected_log_gb_per_month: float = Field(default=10, ge=0, description="For the TCO estimate only")

    @property
    def prefix(self) -> str:
        """Name prefix of every resource: `mlp-dev`."""
        return f"{self.project}-{self.name}"

    @property
    def cluster_name(self) -> str:
        return self.prefix

    def default_tags(self) -> dict[str, str]:
        return {
            "project": self.project,
            "environment": self.name,
            "owner": self.owner,
            "cost-center": self.cost_center,
            "managed-by": "cdktn",
        }

    @model_validator(mode="after")
    def _rules(self) -> EnvConfig:
        for az in self.network.azs:
            if not az.startswith(self.region) or not re.fullmatch(r"[a-z]", az[len(self.region) :]):
                raise ValueError(f"network.azs: {az!r} is not an availability zone of {self.region}")
        if self.name == "prod":
            problems = []
            if len(self.network.azs) < 3:
                problems.append("3 availability zones")
            if self.network.nat_gateways != "per_az":
                problems.append("one NAT gateway per AZ")
            if not self.database.multi_az:
                problems.append("a Multi-AZ database")
            if not self.database.deletion_protection:
                problems.append("database deletion protection")
            if problems:
                raise ValueError("prod requires " + ", ".join(problems))
        return self


DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"


class ChartImage(Strict):
    """An image a chart deploys, pinned by digest through the chart's own values (decision 0173)."""

    image: str = Field(description="registry/repository, as the chart names it")
    tag: str = Field(description="The chart's default tag for it (usually its appVersion)")
    digest: str = Field(pattern=DIGEST_PATTERN)
    values: str = Field(pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$", description="Dotted values path it is set at")
    form: Literal["digest", "hex", "tag@digest"] = Field(
        description="What that path takes: `sha256:<hex>`, the hex alone, or `<tag>@sha256:<hex>` in a tag field"
    )
    source: str = Field(description="Where the digest was read (two independent sources where found)")

    @property
    def value(self) -> str:
        if self.form == "digest":
            return self.digest
        if self.form == "hex":
            return self.digest.removeprefix("sha256:")
        return f"{self.tag}@{self.digest}"


class ChartVersion(Strict):
    """One Helm chart, pinned, and the images it deploys pinned by digest where a digest is recorded."""

    repository: str = Field(description="https chart repository, or an oci:// registry path")
    chart: str
    version: str = Field(pattern=r"^v?\d+\.\d+\.\d+$")
    namespace: str
    source: str = Field(description="Where the version was looked up")
    images: list[ChartImage] = Field(default_factory=list, description="Images pinned by digest (values paths)")

    def image_values(self) -> dict[str, Any]:
        """The values that pin `images`, nested as the chart reads them."""
        values: dict[str, Any] = {}
        for pinned in self.images:
            *parents, leaf = pinned.values.split(".")
            node = values
            for key in parents:
                node = node.setdefault(key, {})
            if leaf in node:
                raise ValueError(f"chart {self.chart}: two images set {pinned.values}")
            node[leaf] = pinned.value
        return values


class Binary(Strict):
    """A binary a workflow downloads: fetched from `url` and refused unless its SHA-256 is `sha256`."""

    version: str = Field(pattern=r"^v?\d+\.\d+\.\d+$")
    url: str = Field(pattern=r"^https://", description="Download URL; `{version}` is replaced")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    source: str = Field(description="Where the checksum was read")

    @property
    def download_url(self) -> str:
        return self.url.replace("{version}", self.version)


class Versions(Strict):
    """`infra/config/versions.yaml`: every chart and EKS add-on version, in one file for all environments."""

    charts: dict[str, ChartVersion]
    argo_rollouts_gateway_plugin: str = Field(pattern=r"^v\d+\.\d+\.\d+$", description="Traffic-router plugin")
    argo_rollouts_gateway_plugin_sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the plugin binary: the controller refuses any other file"
    )
    eks_addons: dict[str, str | None] = Field(
        description="EKS add-on name -> version; null = the default EKS picks for the cluster's minor"
    )
    binaries: dict[str, Binary] = Field(description="Binaries the workflows download, each with its checksum")
    arc_runner_image: str = Field(
        pattern=r"^ghcr\.io/actions/actions-runner:\d+\.\d+\.\d+(@sha256:[0-9a-f]{64})?$",
        description="Image of the in-cluster GitHub runners (modules/runners.py), by release tag and digest",
    )
