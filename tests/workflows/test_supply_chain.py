"""Supply chain of the workflows: every action pinned by a full commit SHA with its release tag in a comment, every
downloaded binary checked against the SHA-256 recorded in infra/config/versions.yaml, and PyTorch's extra index
confined to the one step that installs the packaging env."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from infra.config import load_versions

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted(p for p in (REPO / ".github" / "workflows").glob("*") if p.suffix in {".yml", ".yaml"})
USES = re.compile(r"^\s*(?:-\s*)?uses:\s*(?P<ref>\S+)(?P<rest>.*)$")
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
TAG_COMMENT = re.compile(r"^\s+#\s+v\d+\.\d+\.\d+\s*$")
DOWNLOAD = re.compile(r"\b(curl|wget)\b")


def unpinned(text: str) -> list[str]:
    """Every `uses:` line that is not `owner/repo@<40-hex sha> # vX.Y.Z` (local actions are in the repository)."""
    bad = []
    for line in text.splitlines():
        m = USES.match(line)
        if not m or m["ref"].startswith("./"):
            continue
        if not PINNED.match(m["ref"]) or not TAG_COMMENT.match(m["rest"]):
            bad.append(line.strip())
    return bad


def test_the_checker_refuses_tags_branches_short_shas_and_missing_comments():
    assert unpinned("      - uses: actions/checkout@v5\n")
    assert unpinned("      - uses: actions/checkout@main\n")
    assert unpinned("      - uses: actions/checkout@08c6903 # v5.0.0\n")
    assert unpinned("      - uses: actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8\n")
    assert unpinned("    uses: org/repo/.github/workflows/x.yml@v1\n")
    assert not unpinned("      - uses: actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8 # v5.0.0\n")
    assert not unpinned("      - uses: ./.github/actions/local\n")


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_by_commit_sha_with_its_tag(workflow: Path) -> None:
    assert unpinned(workflow.read_text()) == []


def test_one_action_one_sha_across_workflows() -> None:
    """Bumping an action means bumping it everywhere: two SHAs of the same action is a half-done bump."""
    shas: dict[str, set[str]] = {}
    for workflow in WORKFLOWS:
        for line in workflow.read_text().splitlines():
            m = USES.match(line)
            if m and "@" in m["ref"] and not m["ref"].startswith("./"):
                action, sha = m["ref"].split("@")
                shas.setdefault(action, set()).add(sha)
    assert shas and all(len(s) == 1 for s in shas.values()), shas


def _run_steps() -> list[tuple[str, dict[str, object]]]:
    out = []
    for workflow in WORKFLOWS:
        for job in yaml.safe_load(workflow.read_text()).get("jobs", {}).values():
            out += [(workflow.name, step) for step in job.get("steps", []) if "run" in step]
    return out


def test_every_download_is_checked_against_a_recorded_checksum() -> None:
    downloads = [(name, step) for name, step in _run_steps() if DOWNLOAD.search(str(step["run"]))]
    assert downloads, "the release workflow downloads kubectl-argo-rollouts"
    recorded = load_versions().binaries
    for name, step in downloads:
        run = str(step["run"])
        assert "sha256sum --check" in run, f"{name}: {step.get('name')} downloads without a checksum"
        assert "load_versions" in run and any(f"'{b}'" in run for b in recorded), (
            f"{name}: {step.get('name')} must read the URL and SHA-256 from infra/config/versions.yaml"
        )


def test_the_extra_package_index_is_confined_to_the_packaging_env() -> None:
    for name, step in _run_steps():
        env = step.get("env", {}) or {}
        if "UV_EXTRA_INDEX_URL" in env or "UV_INDEX_STRATEGY" in env:
            assert str(step["run"]).strip() == "bash pipelines/packaging/install.sh", (name, step.get("name"))
    for workflow in WORKFLOWS:
        doc = yaml.safe_load(workflow.read_text())
        envs = [doc.get("env", {})] + [j.get("env", {}) for j in doc.get("jobs", {}).values()]
        assert not any("UV_EXTRA_INDEX_URL" in e or "UV_INDEX_STRATEGY" in e for e in envs), workflow.name


def test_the_release_deploys_the_pushed_image_by_digest() -> None:
    release = yaml.safe_load((REPO / ".github" / "workflows" / "model-release.yml").read_text())
    (render,) = [s for s in release["jobs"]["rollout"]["steps"] if "mlp render k8s" in str(s.get("run", ""))]
    assert '--image-digest "$DIGEST"' in render["run"]
    # The digest is read back from ECR for the tag the image job pushed, and checked before it is used.
    lookup = render["run"].split(".venv/bin/mlp render k8s", 1)[0]
    # On the in-cluster runner (no AWS CLI in its image) through boto3 with the pod's IRSA role.
    assert "describe_images" in lookup and "imageDigest" in lookup
    assert "sha256:[0-9a-f]{64}" in lookup and "exit 1" in lookup
    assert "needs.image.outputs.tag" in render["env"]["TAG"] and "${TAG}" in lookup
