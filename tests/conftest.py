"""Test-wide settings.

Tests run their own local environment (state in `.state/test/`, every port shifted by 100), so
`make test` never disturbs an environment a developer has up for `make demo`. Set before any
project module reads the policy.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("MLP_STATE_DIR", str(REPO_ROOT / ".state" / "test"))
os.environ.setdefault("MLP_PORT_OFFSET", "100")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")


def _top_level_folder(nodeid: str) -> str:
    return nodeid.split("::", 1)[0].split("/")[1]  # tests/<folder>/... or tests/<file>.py


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under xdist the integration suite is handed out first, so it starts at once on its own worker."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=lambda item: _top_level_folder(item.nodeid) != "integration")


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`make test` runs `-n 2`: each top-level test folder goes whole to one worker.

    The integration suite shares one local environment and must run in order on one worker; each other folder stays
    together too, so its session fixtures (a synth, a `terraform plan`) run once and its tests never race each other
    for the same files. The unit folders finish on the second worker while the integration suite mostly waits on
    its servers.
    """
    from xdist.scheduler import LoadScopeScheduling

    class ByTopLevelFolder(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _top_level_folder(nodeid)

    config.option.loadscopereorder = False  # hand the folders out in collection order: integration first
    return ByTopLevelFolder(config, log)
