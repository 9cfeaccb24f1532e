"""The execution provider follows the device the pod was scheduled for, and says so when it cannot."""

from __future__ import annotations

import pytest

from services.model_runtime.classifier import CPU_PROVIDER, CUDA_PROVIDER, execution_providers

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
