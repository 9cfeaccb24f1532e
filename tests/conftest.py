"""Test-wide settings.

Tests run their own local environment (state in `.state/test/`, every port shifted by 100), so `make test` never
disturbs an environment a developer has up for `make demo`. Under `make test` (pytest-xdist) each worker has its own:
worker N keeps its state in `.state/test/` (N = 0) or `.state/test-<N+1>/`, shifts ports by 100 x (N + 1), and (N > 0)
writes reports under its own build folder, whose `models/` is the checkout's `build/models/` (packaged once, read by
all). Set before any project module reads the policy.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def _worker_number() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1"...
    return int(worker[2:]) if worker.startswith("gw") else 0


def _settings(number: int) -> dict[str, str]:
    state = REPO_ROOT / ".state" / ("test" if number == 0 else f"test-{number + 1}")
    settings = {"MLP_STATE_DIR": str(state), "MLP_PORT_OFFSET": str(100 * (number + 1))}
    if number > 0:
        # Reports (gate, release, drift) are named by model version, which each environment's registry numbers
        # from 1: a build folder per environment keeps two from writing the same file.
        settings["MLP_BUILD_DIR"] = str(state / "build")
    return settings


def _own_environment(number: int) -> None:
    """This process's settings, unless the caller chose others. xdist's workers inherit the controller's environment,
    which holds worker 0's values: those are replaced, a caller's own are kept."""
    controllers = _settings(0)
    for name, value in _settings(number).items():
        if os.environ.get(name) in (None, controllers.get(name)):
            os.environ[name] = value
    build = os.environ.get("MLP_BUILD_DIR")
    if build and build == _settings(number).get("MLP_BUILD_DIR"):
        models, shared = Path(build) / "models", REPO_ROOT / "build" / "models"
        shared.mkdir(parents=True, exist_ok=True)
        if not models.is_symlink():
            models.parent.mkdir(parents=True, exist_ok=True)
            models.symlink_to(shared, target_is_directory=True)


_own_environment(_worker_number())
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

# The integration suite in two halves, each on its own worker with its own local environment: the suite mostly waits
# on its servers, so two environments side by side overlap those waits. These modules form the second
# half: about 6 minutes of tests here, against 5.5 for the first half's without the RUN_ALONE modules (durations of
# 2026-12-03); the rehearsals stay together, as they share the machine's podman.
SECOND_INTEGRATION_HALF = frozenset(
    {
        "test_alertmanager.py",
        "test_gateway_tls.py",
        "test_generation.py",
        "test_rag.py",
        "test_gguf_runtime.py",
        "test_rehearsal.py",
        "test_rehearsal_llama.py",
        "test_rehearsal_rag.py",
        "test_rehearsal_retrain.py",
        "test_rehearsal_shadow.py",
        "test_rehearsal_webhook.py",
    }
)

# Modules that judge a canary's latency against stable's: under `make test` each runs with no other integration
# module beside it (decision 0172, addenda). On two shared cores a canary at 10% of the traffic pays more for its
# neighbours than the busy stable server, and the analysis reads that as a regression. The unit folders' worker runs
# beside them, as it did beside the one integration worker before the split.
RUN_ALONE = frozenset({"test_release.py", "test_retrain.py"})


@contextlib.contextmanager
def _flock(path: Path, mode: int) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, mode)
        yield  # closing the file releases the lock, also when the test process dies


@contextlib.contextmanager
def _module_slot(folder: Path, alone: bool) -> Iterator[None]:
    """A shared slot for an ordinary module, the whole machine for a RUN_ALONE one. The turnstile gives the latter
    preference: once one waits, no new module starts until it has run."""
    modules, turnstile = folder / "modules.lock", folder / "turnstile.lock"
    with contextlib.ExitStack() as stack:
        with _flock(turnstile, fcntl.LOCK_EX):
            stack.enter_context(_flock(modules, fcntl.LOCK_EX if alone else fcntl.LOCK_SH))
        yield


@pytest.fixture(scope="module", autouse=True)
def _neighbours(request: pytest.FixtureRequest) -> Iterator[None]:
    """Under xdist, an integration module holds its slot (above) from its first fixture to its last teardown."""
    workerinput = getattr(request.config, "workerinput", None)
    if workerinput is None or _top_level_folder(request.node.nodeid) != "integration":
        yield
        return
    folder = Path(tempfile.gettempdir()) / f"mlp-tests-{workerinput['testrunuid']}"
    folder.mkdir(exist_ok=True)
    with _module_slot(folder, alone=request.path.name in RUN_ALONE):
        yield


def _top_level_folder(nodeid: str) -> str:
    return nodeid.split("::", 1)[0].split("/")[1]  # tests/<folder>/... or tests/<file>.py


def _scope(nodeid: str) -> str:
    """What one worker runs together: a top-level test folder, or one half of the integration suite."""
    folder = _top_level_folder(nodeid)
    if folder == "integration" and Path(nodeid.split("::", 1)[0]).name in SECOND_INTEGRATION_HALF:
        return "integration-2"
    return folder


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under xdist the integration halves are handed out first, so each starts at once on its own worker."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=lambda item: not _scope(item.nodeid).startswith("integration"))


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`make test` runs `-n 3`: each half of the integration suite and each other top-level test folder goes whole
    to one worker.

    Each integration half shares one local environment and must run in order on one worker; each other folder stays
    together too, so its session fixtures (a synth, a `terraform plan`) run once and its tests never race each other
    for the same files. The unit folders run on the third worker while the two halves mostly wait on their servers.
    """
    from xdist.scheduler import LoadScopeScheduling

    class ByTopLevelFolder(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _scope(nodeid)

    config.option.loadscopereorder = False  # hand the scopes out in collection order: integration first
    return ByTopLevelFolder(config, log)
