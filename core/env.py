"""Every `MLP_*` environment variable, declared once, typed, with its meaning.

Code reads a variable through its object here (`STATE_DIR.get()`), and a renderer that sets one in a manifest or a
supervised program writes `STATE_DIR.name`; no `MLP_*` string appears anywhere else in the code. Modelled on
mlflow's `environment_variables.py`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class EnvVar(Generic[T]):
    """One variable: its name, how its text becomes a value, its default when unset or empty, and its meaning."""

    name: str
    parse: Callable[[str], T]
    default: T
    doc: str

    def raw(self) -> str | None:
        """The text as set, or None when unset or blank."""
        value = os.environ.get(self.name, "").strip()
        return value or None

    def is_set(self) -> bool:
        return self.raw() is not None

    def get(self) -> T:
        text = self.raw()
        if text is None:
            return self.default
        try:
            return self.parse(text)
        except ValueError as exc:
            raise ValueError(f"environment variable {self.name}={text!r} is invalid: {exc}. {self.doc}") from exc


def _path(text: str) -> Path:
    return Path(text).resolve()


def _words(text: str) -> list[str]:
    return text.split()


def _csv(text: str) -> list[str]:
    return [part for part in text.split(",") if part]


# ---------------------------------------------------------------- the policy and local state

POLICY = EnvVar[Path | None](
    "MLP_POLICY", _path, None, "Path of the policy file (default: policy.yaml in the checkout)."
)
PORT_OFFSET = EnvVar("MLP_PORT_OFFSET", int, 0, "Added to every local port, so two local environments share a host.")
STATE_DIR = EnvVar[Path | None](
    "MLP_STATE_DIR", _path, None, "Local runtime state, logs and secrets (default: .state/ in the checkout)."
)
BUILD_DIR = EnvVar[Path | None](
    "MLP_BUILD_DIR", _path, None, "Packaged models and reports (default: build/ in the checkout)."
)
KEEP_ENV = EnvVar("MLP_KEEP_ENV", lambda t: t == "1", False, "1: the test session leaves the local servers running.")

# ---------------------------------------------------------------- the model server

MODEL_NAME = EnvVar[str | None](
    "MLP_MODEL_NAME", str, None, "Registered model a server serves or a job checks (default: policy)."
)
MODEL_VERSION = EnvVar("MLP_MODEL_VERSION", str, "", "Version the server serves: a number or an alias (`champion`).")
MODEL_DIR = EnvVar[Path | None](
    "MLP_MODEL_DIR", _path, None, "Serve this packaged model folder, bypassing the registry (tests, benchmarks)."
)
MODEL_CACHE = EnvVar[Path | None](
    "MLP_MODEL_CACHE", _path, None, "Where downloaded versions are kept (default: <state dir>/models)."
)
ARTIFACT_SIGNING_KMS_KEY = EnvVar[str | None](
    "MLP_ARTIFACT_SIGNING_KMS_KEY",
    str,
    None,
    "Registration signs manifests with this AWS KMS key (ARN or alias; ECC_NIST_P256, the cluster's). "
    "Unset: with the key in the file MLP_ARTIFACT_SIGNING_KEY_FILE names.",
)
ARTIFACT_SIGNING_KEY_FILE = EnvVar[Path | None](
    "MLP_ARTIFACT_SIGNING_KEY_FILE",
    _path,
    None,
    "Registration signs manifests with this Ed25519 private key (PKCS#8 PEM file) when no KMS key is set: the local "
    "secret store's, which every `mlp` command that registers points it at.",
)
ARTIFACT_PUBLIC_KEY = EnvVar(
    "MLP_ARTIFACT_PUBLIC_KEY",
    str,
    "",
    "Key that verifies a version's signed artifact manifest: base64 DER public key (Ed25519, or ECDSA P-256 from KMS). "
    "Not a secret. Unset: no version is downloaded (never served unverified).",
)
REVISION = EnvVar(
    "MLP_REVISION",
    str,
    "",
    "The git commit an image was built from (its REVISION build argument): lineage where no checkout is.",
)
DEVICE = EnvVar("MLP_DEVICE", str, "cpu", "Execution device the pod was scheduled for: `cpu` or `cuda`.")
GPU_MEMORY_LIMIT_BYTES = EnvVar[int | None](
    "MLP_GPU_MEMORY_LIMIT_BYTES", int, None, "GPU memory the runtime may allocate (GPU pods only)."
)
INFERENCE_LOG = EnvVar("MLP_INFERENCE_LOG", str, "on", "`off` disables the inference log (bare-server benchmarks).")
INFERENCE_LOG_BUCKET = EnvVar[str | None](
    "MLP_INFERENCE_LOG_BUCKET", str, None, "Bucket of the inference logs (default: the local bucket name)."
)

# ---------------------------------------------------------------- the RAG server (docs/rag.md)

EMBEDDER_URL = EnvVar(
    "MLP_EMBEDDER_URL", str, "", "Base URL of the server of the embedder a RAG version pins (its `/embed`)."
)
GENERATOR_URL = EnvVar(
    "MLP_GENERATOR_URL", str, "", "Base URL of the server of the generator a RAG version pins (its `/generate`)."
)
EMBEDDER_HOST = EnvVar(
    "MLP_EMBEDDER_HOST",
    str,
    "",
    "Host header of requests to the embedder: a scaled-to-zero model is reached through the KEDA interceptor, which "
    "routes by Host (unset: the URL's own host).",
)
GENERATOR_HOST = EnvVar(
    "MLP_GENERATOR_HOST", str, "", "Host header of requests to the generator (as MLP_EMBEDDER_HOST)."
)
QDRANT_URL = EnvVar(
    "MLP_QDRANT_URL",
    str,
    "",
    "The Qdrant server holding the RAG index (the cluster's). Unset: the embedded engine, in the server's process.",
)
QDRANT_API_KEY = EnvVar("MLP_QDRANT_API_KEY", str, "", "The Qdrant server's API key (a secret).")

# ---------------------------------------------------------------- jobs: drift

S3 = EnvVar("MLP_S3", str, "local", "Which object store a job talks to: `local` (the local S3 API) or `aws`.")
PUSHGATEWAY_URL = EnvVar[str | None]("MLP_PUSHGATEWAY_URL", str, None, "Pushgateway the drift job pushes its score to.")

# ---------------------------------------------------------------- the webhook receiver and releases

WEBHOOK_SECRET = EnvVar("MLP_WEBHOOK_SECRET", str, "", "HMAC secret shared with MLflow's webhook (a secret).")
ALERTMANAGER_TOKEN = EnvVar(
    "MLP_ALERTMANAGER_TOKEN", str, "", "Bearer token Alertmanager's deliveries must present to the receiver (a secret)."
)
WEBHOOK_DISPATCH = EnvVar("MLP_WEBHOOK_DISPATCH", str, "local", "What an accepted promotion does: `local` or `github`.")
WEBHOOK_RELEASE_ARGS = EnvVar[list[str]](
    "MLP_WEBHOOK_RELEASE_ARGS", _words, [], "Extra `mlp release start` arguments for a locally dispatched release."
)
GITHUB_API_URL = EnvVar("MLP_GITHUB_API_URL", str, "https://api.github.com", "GitHub API for `github` dispatch.")
GITHUB_REPOSITORY = EnvVar("MLP_GITHUB_REPOSITORY", str, "", "owner/name the `github` dispatch targets.")
RELEASE_WINDOW = EnvVar("MLP_RELEASE_WINDOW", str, "local", "Canary analysis window: `local` (short) or `production`.")

# ---------------------------------------------------------------- the cloud stacks

ENVS = EnvVar[list[str]]("MLP_ENVS", _csv, [], "Environments to synthesize or deploy, comma-separated (default: all).")
TF_STATE_BUCKET = EnvVar("MLP_TF_STATE_BUCKET", str, "", "S3 bucket holding the Terraform state of every stack.")

ALL: tuple[EnvVar[object], ...] = tuple(v for v in list(globals().values()) if isinstance(v, EnvVar))
