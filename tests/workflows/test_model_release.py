"""The release workflows against what they build, push to and apply: every image build names a Containerfile
(or Dockerfile) that declares each build argument passed to it, every push goes to a repository the data stack
creates (`core.images`), and every apply of the rendered manifests uses the platform's one field manager and
leaves the create-once objects (the route the rollouts plugin owns) to `kubectl create`."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from core import images
from infra.config import load_env
from infra.containers.images import IMAGES
from modules.k8s import render

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted(p for p in (REPO / ".github" / "workflows").glob("*") if p.suffix in {".yml", ".yaml"})
RELEASE = REPO / ".github" / "workflows" / "model-release.yml"
BUILD = re.compile(r"\b(docker|podman)\s+(buildx\s+)?build\b")
VAR = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")


@dataclass(frozen=True)
class Step:
    workflow: str
    name: str
    env: dict[str, str]  # workflow, job and step env, the step's winning
    run: str

    def commands(self) -> Iterator[list[str]]:
        """Shell commands of the step, continuation lines joined, split like the shell would (variables kept)."""
        for line in self.run.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                yield shlex.split(line, comments=True)

    def resolve(self, text: str) -> str:
        return VAR.sub(lambda m: self.env.get(m.group(1), m.group(0)), text)


def load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    return doc


MATRIX = re.compile(r"\$\{\{\s*matrix\.([A-Za-z_-]+)\s*\}\}")


def legs(job: dict[str, Any]) -> list[dict[str, str]]:
    """The matrix entries a job runs with (`include` lists only, as the workflows use), or one empty leg."""
    return list(job.get("strategy", {}).get("matrix", {}).get("include", [])) or [{}]


def with_leg(text: str, leg: dict[str, str]) -> str:
    return MATRIX.sub(lambda m: str(leg.get(m.group(1), m.group(0))), text)


def steps(path: Path) -> Iterator[Step]:
    """Every `run` step, once per matrix leg, with `${{ matrix.X }}` in its env replaced by the leg's value."""
    doc = load(path)
    for job_id, job in doc.get("jobs", {}).items():
        for leg in legs(job):
            for i, step in enumerate(job.get("steps", [])):
                if "run" in step:
                    env = {**doc.get("env", {}), **job.get("env", {}), **step.get("env", {})}
                    env = {k: with_leg(str(v), leg) for k, v in env.items()}
                    name = (
                        f"{job_id}{'[' + ','.join(map(str, leg.values())) + ']' if leg else ''}/{step.get('name', i)}"
                    )
                    yield Step(path.name, name, env, step["run"])


def target_environments(path: Path) -> list[str]:
    """The environments a run can target: the dispatch choices and the default of TARGET_ENV's expression."""
    doc = load(path)
    on = doc.get("on", doc.get(True, {}))  # YAML 1.1 reads the key `on` as True
    choices = (on.get("workflow_dispatch") or {}).get("inputs", {}).get("environment", {}).get("options", [])
    defaults = re.findall(r"'([a-z]+)'", str(doc.get("env", {}).get("TARGET_ENV", "")))
    return sorted(set(choices) | set(defaults))


def build_steps() -> list[Step]:
    return [s for p in WORKFLOWS for s in steps(p) if BUILD.search(s.run)]


def build_file(step: Step, argv: list[str]) -> Path:
    """The Containerfile a `docker build` uses: `--file`/`-f`, else Containerfile or Dockerfile in the context."""
    for i, arg in enumerate(argv):
        if arg in {"--file", "-f"}:
            return REPO / step.resolve(argv[i + 1])
        if arg.startswith("--file="):
            return REPO / step.resolve(arg.split("=", 1)[1])
    context = REPO / step.resolve(argv[-1])
    return next(
        (context / n for n in ("Containerfile", "Dockerfile") if (context / n).exists()), context / "Containerfile"
    )


def build_args(argv: list[str]) -> set[str]:
    names = set()
    for i, arg in enumerate(argv):
        value = (
            argv[i + 1] if arg == "--build-arg" else arg.split("=", 1)[1] if arg.startswith("--build-arg=") else None
        )
        if value is not None:
            names.add(value.split("=", 1)[0])
    return names


def declared_args(containerfile: Path) -> set[str]:
    return set(re.findall(r"^\s*ARG\s+([A-Za-z_][A-Za-z0-9_]*)", containerfile.read_text(), flags=re.MULTILINE))


def test_the_release_workflow_builds_and_pushes_every_image_from_its_containerfile() -> None:
    built = {
        (s.env["REPOSITORY"].rsplit("/", 1)[1], s.env["CONTAINERFILE"], tuple(s.env["BUILD_ARGS"].split()))
        for s in build_steps()
        if s.workflow == RELEASE.name
    }
    expected = {(spec.name, spec.containerfile, tuple(f"{k}={v}" for k, v in spec.build_args)) for spec in IMAGES}
    assert built == expected, "the workflow and `mlp images build` differ"
    for _, containerfile, args in built:
        undeclared = {a.split("=", 1)[0] for a in args} - declared_args(REPO / containerfile)
        assert not undeclared, f"the matrix passes {sorted(undeclared)}, not ARGs of {containerfile}"


def test_the_rollout_deploys_the_model_server_image_the_environment_serves_on() -> None:
    # One variable picks the device: the build leg of the other server image stops early, the render gets --gpu.
    doc = load(RELEASE)
    assert doc["env"]["DEVICE"] == "${{ vars.MODEL_SERVER_DEVICE || 'cpu' }}"
    (build,) = {s.run for s in build_steps() if s.workflow == RELEASE.name}
    (rollout,) = [s for s in steps(RELEASE) if kubectl(s, "apply")]
    for gpu in (False, True):
        server = images.model_server(gpu)
        assert f"{server}" in build and f"{server}" in rollout.run
    assert '[[ "$DEVICE" == gpu ]] && { server=model-server-gpu; device=(--gpu); }' in rollout.run
    assert '"${device[@]}"' in rollout.run and 'IMAGE="${REGISTRY}/mlp-${TARGET_ENV}/${server}:${TAG}"' in rollout.run


@pytest.mark.parametrize("step", build_steps(), ids=lambda s: f"{s.workflow}:{s.name}")
def test_every_build_argument_is_declared_in_the_containerfile_it_builds(step: Step) -> None:
    builds = [argv for argv in step.commands() if BUILD.search(" ".join(argv))]
    assert builds
    for argv in builds:
        containerfile = build_file(step, argv)
        siblings = sorted(p.name for p in containerfile.parent.glob("*file")) if containerfile.parent.exists() else []
        assert containerfile.is_file(), f"{step.name} builds {containerfile.relative_to(REPO)}: missing ({siblings})"
        undeclared = build_args(argv) - declared_args(containerfile)
        assert not undeclared, f"{step.name} passes --build-arg {sorted(undeclared)}, not ARGs of {containerfile.name}"


@pytest.mark.parametrize("step", build_steps(), ids=lambda s: f"{s.workflow}:{s.name}")
def test_every_push_goes_to_a_repository_the_data_stack_creates(step: Step) -> None:
    pushes = [argv for argv in step.commands() if argv[:2] in (["docker", "push"], ["podman", "push"])]
    if not pushes:
        pytest.skip("builds without pushing")
    assert "REPOSITORY" in step.env, f"{step.name}: name the ECR repository in the step's env as REPOSITORY"
    assert "${REPOSITORY}" in step.run or "$REPOSITORY" in step.run
    envs = target_environments(REPO / ".github" / "workflows" / step.workflow)
    assert envs, f"{step.workflow}: no target environment found"
    for name in envs:
        repo = re.sub(r"\$\{\{\s*env\.TARGET_ENV\s*\}\}", name, step.env["REPOSITORY"])
        created = {images.repository(load_env(name).prefix, image) for image in images.REPOSITORIES}
        assert repo in created, f"{step.name} pushes to {repo} in {name}; the data stack creates {sorted(created)}"


def kubectl(step: Step, verb: str) -> list[list[str]]:
    return [argv for argv in step.commands() if argv[:2] == ["kubectl", verb]]


def test_the_field_manager_is_declared_once_and_every_apply_uses_it() -> None:
    assert load(RELEASE)["env"]["FIELD_MANAGER"] == render.FIELD_MANAGER
    applies = creates = 0
    for p in WORKFLOWS:
        for step in steps(p):
            for argv in kubectl(step, "apply"):
                applies += 1
                assert "--server-side" in argv and argv[argv.index("--field-manager") + 1] == "$FIELD_MANAGER"
                assert "--force-conflicts" not in argv, "forcing would take KEDA's and the plugin's fields back"
                assert not {"-R", "--recursive"} & set(argv), f"{render.CREATE_ONCE}/ must not be applied"
            for argv in kubectl(step, "create"):
                creates += 1
                assert argv[argv.index("--field-manager") + 1] == "$FIELD_MANAGER"
    assert applies and creates


def test_create_once_objects_are_created_only_when_absent() -> None:
    (step,) = [s for s in steps(RELEASE) if kubectl(s, "apply")]
    out = next(
        argv[argv.index("--out") + 1] for argv in step.commands() if argv[:3] == [".venv/bin/mlp", "render", "k8s"]
    )
    (apply,) = kubectl(step, "apply")
    assert apply[apply.index("-f") + 1].rstrip("/") == out
    assert f"{out}/{render.CREATE_ONCE}/*.yaml" in step.run
    assert len(kubectl(step, "create")) == 1
    guard = step.run.split("kubectl create", 1)[0]
    assert "--ignore-not-found" in guard and 'if [[ -z "$existing" ]]' in guard, "create only what does not exist"
