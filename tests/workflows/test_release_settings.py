"""Every GitHub environment variable the release workflow reads is documented in docs/release.md, and every one
documented is read (a fork sets exactly these)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_release_workflows_variables_are_the_documented_ones() -> None:
    used = set(re.findall(r"\bvars\.([A-Z][A-Z0-9_]*)", (REPO / ".github/workflows/model-release.yml").read_text()))
    section = (REPO / "docs/release.md").read_text().split("### The release workflow's settings", 1)[1]
    table = section.split("\n#", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", table, re.M))
    assert used, "the workflow reads no variable: the pattern is stale"
    assert used == documented, f"read, not documented: {sorted(used - documented)}; stale: {sorted(documented - used)}"
