"""Supply chain of the workflows: every action pinned by a full commit SHA with its release tag in a comment, every
downloaded binary checked against the SHA-256 recorded in infra/config/versions.yaml, and PyTorch's extra index
confined to the one step that installs the packaging env."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from core import images
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
    # A lookup that finds no digest fails the step (GitHub runs `bash -e`: the failed substitution ends it).
    assert "sha256:[0-9a-f]{64}" in lookup and "return 1" in lookup and "DIGEST=$(digest_of" in lookup
    assert "needs.image.outputs.tag" in render["env"]["TAG"] and "${TAG}" in lookup
    # The other images it deploys (drift job, webhook receiver) by their own digests, read the same way.
    (siblings,) = re.findall(r"for sibling in ([a-z -]+); do", lookup)
    assert set(siblings.split()) == set(images.REPOSITORIES) - {images.model_server(False), images.model_server(True)}
    assert '--sibling-digest "${sibling}=${sibling_digest}"' in lookup and '"${siblings[@]}"' in render["run"]


# Every lock an install reads, hash-locked; the packaging env's is a `pip freeze` of a CPU torch wheel from the
# machine's own disk (docs/security.md, supply chain), the one exception.
HASHED_LOCKS = sorted(
    [*(REPO / "requirements").glob("*.lock"), *(REPO / "requirements" / "images").glob("*.lock")],
)
UNHASHED = {REPO / "requirements" / "pack.lock"}


def unhashed_pins(text: str) -> list[str]:
    """Pinned requirements of a lock that carry no `--hash=sha256:` (a continued line counts as one entry)."""
    entries = text.replace("\\\n", " ").splitlines()
    return [e.split()[0] for e in entries if re.match(r"^[A-Za-z0-9_.-]+==", e) and "--hash=sha256:" not in e]


def test_the_hash_check_refuses_a_pin_without_a_hash() -> None:
    assert unhashed_pins("a==1 \\\n    --hash=sha256:00\nb==2\n    # via a\n") == ["b==2"]


@pytest.mark.parametrize("lock", [p for p in HASHED_LOCKS if p not in UNHASHED], ids=lambda p: p.name)
def test_every_pin_of_every_lock_carries_its_hashes(lock: Path) -> None:
    text = lock.read_text()
    assert re.search(r"^[A-Za-z0-9_.-]+==", text, re.M), f"{lock.name}: no pins"
    assert unhashed_pins(text) == [], f"{lock.name}: pins without hashes; rerun `make lock`"


def installers() -> list[tuple[str, str]]:
    """(where, command) of every line that installs from a lock: workflows, bootstrap and tool scripts."""
    sources = [*WORKFLOWS, REPO / "infra/local/bootstrap.sh", REPO / "infra/tools/install-checkov.sh"]
    found = []
    for path in sources:
        for line in path.read_text().splitlines():
            if re.search(r"\bpip (sync|install)\b.*(\.lock|-r )", line):
                found.append((path.name, line.strip()))
    return found


def test_every_install_from_a_lock_requires_hashes() -> None:
    found = installers()
    assert {where for where, _ in found} >= {"bootstrap.sh", "install-checkov.sh", "ci.yml", "model-release.yml"}
    missing = [(where, line) for where, line in found if "--require-hashes" not in line]
    assert not missing, f"installs that would accept an unhashed file: {missing}"
