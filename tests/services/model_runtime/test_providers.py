"""The execution provider follows the device the pod was scheduled for, and says so when it cannot."""

from __future__ import annotations

import onnxruntime as ort
import pytest

from services.model_runtime.classifier import (
    CPU_PROVIDER,
    CUDA_PROVIDER,
    OnnxTextClassifier,
    execution_providers,
    provider_fallback,
)
from tests.conftest import REPO_ROOT

PACKAGED = REPO_ROOT / "build" / "models" / "int8"  # `mlp model package`, a step of `make test`

GPU_BUILD = [CUDA_PROVIDER, CPU_PROVIDER]  # what onnxruntime-gpu reports on a GPU node
CPU_BUILD = ["AzureExecutionProvider", CPU_PROVIDER]  # what the CPU wheel reports


def test_cpu_pods_use_the_cpu_provider_only() -> None:
    assert execution_providers("cpu", None, GPU_BUILD) == ([CPU_PROVIDER], None)


def test_gpu_pods_use_cuda_capped_at_their_memory_limit_with_the_cpu_behind_it() -> None:
    providers, warning = execution_providers("cuda", 4 * 2**30, GPU_BUILD)
    assert providers == [(CUDA_PROVIDER, {"gpu_mem_limit": str(4 * 2**30)}), CPU_PROVIDER]
    assert warning is None


def test_a_gpu_pod_without_a_cuda_runtime_serves_on_the_cpu_and_says_why() -> None:
    providers, warning = execution_providers("cuda", None, CPU_BUILD)
    assert providers == [CPU_PROVIDER]
    assert warning is not None and "serving on the CPU" in warning and "onnxruntime-gpu" in warning


def test_an_unknown_device_is_refused() -> None:
    with pytest.raises(ValueError, match="choose cpu or cuda"):
        execution_providers("tpu", None, CPU_BUILD)


def test_a_session_asked_for_cuda_without_a_gpu_comes_up_on_the_cpu_and_the_server_says_so() -> None:
    # What the GPU image does on a node without a usable GPU: ONNX Runtime creates the session on the CPU.
    assert CUDA_PROVIDER not in ort.get_available_providers(), "this check needs a machine without CUDA"
    with pytest.warns(UserWarning, match=CUDA_PROVIDER):
        classifier = OnnxTextClassifier.load(PACKAGED, providers=[(CUDA_PROVIDER, {}), CPU_PROVIDER])
    assert classifier.provider == CPU_PROVIDER
    warning = provider_fallback("cuda", classifier.provider)
    assert warning is not None and "no usable GPU" in warning and "nvidia.com/gpu" in warning


def test_no_fallback_warning_when_the_session_runs_where_the_device_asked() -> None:
    assert provider_fallback("cuda", CUDA_PROVIDER) is None
    assert provider_fallback("cpu", CPU_PROVIDER) is None
