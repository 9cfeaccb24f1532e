"""Typed inputs of the cluster manifests: what differs per environment, never a threshold (those are in policy.yaml)."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core import images
from core.promql import SERVING_NAMESPACE
from modules import cert_manager, cluster_services

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")

Version = Annotated[int, Field(ge=1)]


class Props(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServingProps(Props):
    """The model server pods."""

    image_repository: str = Field(min_length=1, description="ECR repository URI of the BentoML model server image")
    image_tag: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
    image_digest: str | None = Field(
        default=None,
        pattern=DIGEST.pattern,
        description="Content digest the push reported: when set, pods run exactly that image (`repo:tag@digest`)",
    )
    sibling_digests: dict[str, str] = Field(
        default_factory=dict,
        description="Digests of the other images pushed with the same tag (`core.images` name -> sha256:<hex>): "
        "the drift job and the webhook receiver run by digest too",
    )
    mlflow_tracking_uri: str = Field(min_length=1)
    irsa_role_arn: str = Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$", description="Role the pods assume")
    inference_log_bucket: str = Field(
        min_length=3,
        description="S3 bucket the servers write the inference log to and the drift job reads (the data stack's "
        "`inference_log_bucket` output)",
    )
    artifact_public_key: str | None = Field(
        default=None,
        description="Verifies registered versions (base64 DER of the KMS signing key's public key, `aws kms "
        "get-public-key --query PublicKey`; two comma-separated during a rotation): rendered into the "
        "`mlp-artifact-signing` ConfigMap the pods read. None: that ConfigMap is not rendered",
    )
    namespace: str = SERVING_NAMESPACE
    gpu: bool = False
    model_cache_size_limit: str = "2Gi"
    tmp_size_limit: str = "256Mi"

    @field_validator("artifact_public_key")
    @classmethod
    def _a_verification_key(cls, value: str | None) -> str | None:
        if value is None:
            return None
        for text in (k.strip() for k in value.split(",")):
            try:
                key = serialization.load_der_public_key(base64.b64decode(text, validate=True))
            except (binascii.Error, ValueError) as exc:
                raise ValueError(f"artifact_public_key: {text[:24]!r}… is not base64 DER of a public key") from exc
            if not isinstance(key, ed25519.Ed25519PublicKey) and not (
                isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)
            ):
                raise ValueError(f"artifact_public_key: a {type(key).__name__}; Ed25519 or ECDSA P-256 (KMS) only")
        return value

    @field_validator("sibling_digests")
    @classmethod
    def _known_images_and_digests(cls, value: dict[str, str]) -> dict[str, str]:
        for name, digest in value.items():
            if name not in images.REPOSITORIES:
                raise ValueError(f"sibling_digests: unknown image {name!r}; declared: {', '.join(images.REPOSITORIES)}")
            if not DIGEST.fullmatch(digest):
                raise ValueError(f"sibling_digests: {name}={digest!r} is not sha256:<64 hex>")
        return value

    @model_validator(mode="after")
    def _image_matches_the_device(self) -> ServingProps:
        # The CPU image has no CUDA build of ONNX Runtime: a GPU pod running it would pay for a GPU and use none.
        wanted = images.model_server(self.gpu)
        if self.image_repository.rpartition("/")[2] != wanted:
            raise ValueError(
                f"image_repository {self.image_repository!r}: {'GPU' if self.gpu else 'CPU'} pods run the "
                f"`{wanted}` image; pass its repository (`.../{wanted}`)"
            )
        return self

    @property
    def image(self) -> str:
        # With a digest the kubelet pulls by content; the tag stays for people reading the manifest.
        pinned = f"@{self.image_digest}" if self.image_digest else ""
        return f"{self.image_repository}:{self.image_tag}{pinned}"

    def sibling_image(self, name: str) -> str:
        """Another of the repository's images (`core.images`), built and pushed beside the model server's with the
        same tag by the release workflow: same registry and prefix, the last path segment replaced."""
        if name not in images.REPOSITORIES:
            raise ValueError(f"unknown image {name!r}; declared: {', '.join(images.REPOSITORIES)}")
        prefix, _, _ = self.image_repository.rpartition("/")
        pinned = f"@{self.sibling_digests[name]}" if name in self.sibling_digests else ""
        return f"{prefix}/{name}:{self.image_tag}{pinned}" if prefix else f"{name}:{self.image_tag}{pinned}"


class GatewayProps(Props):
    """The Envoy Gateway entry point."""

    gateway_class: str = "eg"
    gateway_name: str = "mlp-gateway"
    hostname: str = "models.example.com"
    listener_port: int = Field(default=80, ge=1, le=65535, description="Plain HTTP: redirects to https only")
    https_port: int = Field(default=443, ge=1, le=65535, description="The HTTPS listeners")
    tls_secret: str = Field(
        default="mlp-gateway-tls", description="Secret with the listeners' certificate (cert-manager writes it)"
    )
    cluster_issuer: str = Field(
        default=cert_manager.CLUSTER_ISSUER, description="cert-manager ClusterIssuer the add-on stack installs"
    )
    envoy_proxy: str = Field(default="mlp-gateway-proxy", description="EnvoyProxy: the proxy's Service settings")
    api_key_secret: str = Field(
        default="mlp-api-keys", description="Opaque Secret: data key = client name, value = key"
    )
    client_id_header: str = Field(default="x-mlp-client", description="Header the gateway sets to the key's name")
    internal_host_label: str = Field(
        default="internal", description="Pins answer on `<label>.<hostname>` only, behind the internal keys"
    )
    internal_api_key_secret: str = Field(
        default="mlp-api-keys-internal", description="Opaque Secret with the internal keys only (pins)"
    )


class MonitoringProps(Props):
    drift_image: str = Field(
        default="", description="Drift-job image; empty = the `drift-job` image beside the model server's, same tag"
    )
    drift_irsa_role_arn: str = Field(
        default="", description="IRSA role of the drift job (modules/workload_roles.py DRIFT_JOB); empty = none"
    )
    pushgateway_url: str = Field(
        default=cluster_services.pushgateway_url(),
        description="Where the drift job pushes its score: the Pushgateway the add-on stack installs",
    )
    dcgm_namespace: str = "gpu-operator"
    prometheus_release_label: str = Field(
        default=cluster_services.PROMETHEUS_RELEASE, description="`release` label the stack selects"
    )


class WebhookProps(Props):
    """The registry-webhook receiver (platform-wide: one per cluster)."""

    github_repository: str = Field(
        pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", description="owner/name the release workflow runs in"
    )
    image: str = Field(default="", description="empty = the `webhook-receiver` image beside the model server's")
    secret_name: str = Field(
        default="mlp-webhook-receiver",
        description="Secret with `webhook-secret` (shared with MLflow's webhook) and `github-token` (repo scope)",
    )
    mlflow_namespace: str = Field(default="mlflow", description="Namespace of the MLflow chart: the only caller")
    # The community MLflow chart's selector label (charts/mlflow/templates/_helpers.tpl `mlflow.selectorLabels`).
    mlflow_pod_labels: dict[str, str] = {"app.kubernetes.io/name": "mlflow"}


class RenderProps(Props):
    """Everything `render_all` needs: versions and weights, the mode, and the per-concern props."""

    model_name: str
    weights: dict[Version, Annotated[int, Field(ge=0, le=100)]] = Field(description="Live versions -> percent")
    mode: Literal["deployments", "rollout"] = Field(
        default="deployments",
        description="deployments: one Deployment per version, weights from `weights`; "
        "rollout: one Argo Rollout, canary = newest version, stable = the other",
    )
    serving: ServingProps
    gateway: GatewayProps = GatewayProps()
    monitoring: MonitoringProps = MonitoringProps()
    webhook: WebhookProps | None = Field(default=None, description="Render the registry-webhook receiver too")

    @model_validator(mode="after")
    def _weights(self) -> RenderProps:
        if not self.weights:
            raise ValueError("weights: at least one live version is needed, e.g. {3: 100}")
        if sum(self.weights.values()) != 100:
            raise ValueError(f"weights must sum to 100, got {sum(self.weights.values())} from {self.weights}")
        if self.mode == "rollout" and len(self.weights) not in (1, 2):
            raise ValueError("rollout mode takes one or two versions (stable and canary)")
        return self

    @property
    def versions(self) -> list[int]:
        return sorted(self.weights)

    @property
    def stable_version(self) -> int:
        return self.versions[0]

    @property
    def canary_version(self) -> int:
        return self.versions[-1]
