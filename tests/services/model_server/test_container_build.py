"""The model server's container build config: valid for BentoML, complete, pinned like the lock (built by
tests/integration/test_rehearsal.py)."""

from __future__ import annotations

import ast
import glob
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
