"""The container images the cluster runs from this repository, by the name of their ECR repository.

The data stack creates one repository per name (`<prefix>/<name>`, `infra/stacks/data.py`), the release workflow
pushes to those names (`.github/workflows/model-release.yml`), and `tests/workflows/test_model_release.py` fails
when the two differ. Declared here once, so no side can add, rename or drop an image alone.
"""

from __future__ import annotations

MODEL_SERVER = "model-server"
MODEL_SERVER_GPU = "model-server-gpu"  # the same server on ONNX Runtime's CUDA build, for GPU pods
DRIFT_JOB = "drift-job"
WEBHOOK_RECEIVER = "webhook-receiver"

REPOSITORIES: tuple[str, ...] = (MODEL_SERVER, MODEL_SERVER_GPU, DRIFT_JOB, WEBHOOK_RECEIVER)


def model_server(gpu: bool) -> str:
    """The model server's image for a pod on a GPU node (`gpu`) or a CPU node."""
    return MODEL_SERVER_GPU if gpu else MODEL_SERVER


def repository(prefix: str, image: str) -> str:
    """ECR repository name of `image` in the environment whose resources start with `prefix` (`mlp-dev`)."""
    if image not in REPOSITORIES:
        raise ValueError(f"unknown image {image!r}; declared: {', '.join(REPOSITORIES)}")
    return f"{prefix}/{image}"
