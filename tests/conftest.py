"""Test-wide settings.

Tests run their own local environment (state in `.state/test/`, every port shifted by 100), so
`make test` never disturbs an environment a developer has up for `make demo`. Set before any
project module reads the policy.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("MLP_STATE_DIR", str(REPO_ROOT / ".state" / "test"))
os.environ.setdefault("MLP_PORT_OFFSET", "100")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
