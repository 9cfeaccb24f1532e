"""The model server never imports PyTorch (it serves ONNX Runtime; torch lives only in the packaging env)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

PROBE = """
import sys
import services.model_server.service as service
import services.registry.client  # loaded by the server at start, to resolve its version
from services.model_server import batching, inference_log, loading, metrics
assert service.ModelService is not None
print("torch" in sys.modules, sorted(m for m in sys.modules if m.split(".")[0] in {"torch", "torchvision"})[:3])
"""


def test_service_module_does_not_import_torch() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False []"
