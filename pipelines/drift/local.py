"""The drift check on the local runtime: its folders and its S3 API (the CLI's and the demo's defaults)."""

from __future__ import annotations

from typing import Any, Literal

from infra.local.paths import build_dir, model_cache, state_dir
from pipelines.drift.check import S3Factory, Workspace

# Where the logs are read: the local S3 API, or AWS S3 with the default credential chain (IRSA, GitHub OIDC).
S3Mode = Literal["local", "aws"]


def workspace() -> Workspace:
    """Downloaded versions in the shared model cache, references in the state folder, reports under build/."""
    return Workspace(
        models=model_cache(), references=state_dir() / "drift" / "reference", reports=build_dir() / "reports" / "drift"
    )


def s3_factory(mode: S3Mode) -> S3Factory:
    def make() -> Any:
        if mode == "aws":
            import boto3

            return boto3.client("s3")
        from infra.local import s3

        return s3.client()

    return make
