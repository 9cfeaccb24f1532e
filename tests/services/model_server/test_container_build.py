"""The model server's container build config: valid for BentoML, complete, pinned like the lock (built by
tests/integration/test_rehearsal.py)."""

from __future__ import annotations

import ast
import glob
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
SERVER = REPO / "services" / "model_server"


def test_bentofile_parses_and_names_the_service() -> None:
    from bentoml._internal.bento.build_config import BentoBuildConfig

    with (SERVER / "bentofile.yaml").open() as fh:
        config = BentoBuildConfig.from_yaml(fh)
    assert config.service == "services.model_server.service:ModelService"
    assert config.python.requirements_txt == "services/model_server/requirements.txt"


def imported_closure(module: str) -> set[str]:
    """Every repository file the module imports, transitively (read with ast, nothing is executed)."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        path = REPO / (name.replace(".", "/") + ".py")
        if not path.is_file():
            path = REPO / name.replace(".", "/") / "__init__.py"
        if not path.is_file() or path.relative_to(REPO).as_posix() in seen:
            continue
        seen.add(path.relative_to(REPO).as_posix())
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            todo += [n for n in names if n.split(".")[0] in {"core", "services", "modules", "infra", "pipelines"}]
    return seen


def test_bentofile_includes_every_module_the_server_imports() -> None:
    include = yaml.safe_load((SERVER / "bentofile.yaml").read_text())["include"]
    matched = {
        Path(p).relative_to(REPO).as_posix()
        for pattern in include
        for p in glob.glob(str(REPO / pattern), recursive=True)
    }
    needed = imported_closure("services.model_server.service") | {"policy.yaml"}
    assert "services/model_runtime/classifier.py" in needed  # the closure is followed, not just the entry point
    assert needed <= matched, f"imported by the server but not in the bento: {sorted(needed - matched)}"
    for pattern in include:
        assert glob.glob(str(REPO / pattern), recursive=True), f"include pattern {pattern!r} matches nothing"


def test_image_requirements_are_pinned_as_in_the_lock_and_exclude_torch() -> None:
    lock = {
        m.group(1).lower(): m.group(2)
        for m in re.finditer(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", (REPO / "requirements" / "main.lock").read_text(), re.M)
    }
    reqs = [ln for ln in (SERVER / "requirements.txt").read_text().splitlines() if ln and not ln.startswith("#")]
    for line in reqs:
        name, version = line.split("==")
        assert lock.get(name.lower()) == version, f"{line} differs from requirements/main.lock"
    assert not any(r.lower().startswith(("torch", "sentence-transformers")) for r in reqs)


def test_containerfile_copies_what_the_server_imports_and_runs_unprivileged() -> None:
    text = (SERVER / "Containerfile").read_text()
    assert "services.model_server.service:ModelService" in text
    copied = re.findall(r"^COPY (\S+) ", text, re.M)
    folders = {path.split("/")[0] for path in imported_closure("services.model_server.service")}
    assert folders <= {c.rstrip("/") for c in copied}, f"the server imports from {folders}; the image copies {copied}"
    assert "policy.yaml" in copied
    assert re.search(r"^USER 10001", text, re.M), "the image runs as the uid the pods render (10001)"
    assert re.search(r"^ARG BASE_IMAGE=", text, re.M), "the base image is a build argument"
    assert "org.opencontainers.image.revision=${REVISION}" in text
    # Requirements are installed in a builder stage and only the virtualenv is copied over.
    assert len(re.findall(r"^FROM ", text, re.M)) == 2
    assert "COPY --from=builder /opt/venv /opt/venv" in text
    assert "-c /build/main.lock" in text, "transitive pins come from the lock"
