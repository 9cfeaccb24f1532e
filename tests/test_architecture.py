"""The package layering, enforced: the specification on the ground floor, deployables depending downward only.

    core  <-  services, modules  <-  infra  <-  pipelines

`core/` imports nothing else of the repository; `services/` (what ships in an image) and `modules/` (cloud
constructs) import only `core`; `infra/` may add `services` and `modules`; `pipelines/` (the lifecycle CLI) may
import anything below it. No two files import each other, directly or through a longer cycle, and no
repository module is imported by a string. docs/architecture.md draws the same graph.
"""

from __future__ import annotations

import ast
import graphlib
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "services", "modules", "infra", "pipelines")
ALLOWED: dict[str, set[str]] = {
    "core": {"core"},
    "services": {"core", "services"},
    "modules": {"core", "modules"},
    "infra": {"core", "services", "modules", "infra"},
    "pipelines": {"core", "services", "modules", "infra", "pipelines"},
}
ENV_DECLARATIONS = REPO_ROOT / "core" / "env.py"


def source_files() -> Iterator[Path]:
    for package in PACKAGES:
        yield from sorted((REPO_ROOT / package).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def repo_imports(path: Path) -> set[str]:
    """Every repository module this file imports (`from a.b import c` counts as a.b.c when that is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.split(".")[0] in PACKAGES}


Graph = dict[str, set[str]]  # module -> the repository modules it imports


@pytest.fixture(scope="module")
def graph() -> Graph:
    files = {module_name(p): p for p in source_files()}
    return {name: {t for t in repo_imports(path) if t in files and t != name} for name, path in files.items()}


def test_each_package_imports_only_the_packages_below_it(graph: Graph) -> None:
    wrong = sorted(
        f"{src} imports {dst}"
        for src, targets in graph.items()
        for dst in targets
        if dst.split(".")[0] not in ALLOWED[src.split(".")[0]]
    )
    assert not wrong, "imports against the layering (core <- services, modules <- infra <- pipelines):\n" + "\n".join(
        wrong
    )


def test_no_import_cycle_between_files(graph: Graph) -> None:
    # A package's __init__ importing its own submodules is not a dependency between two concerns.
    edges = {src: {d for d in targets if not d.startswith(src + ".")} for src, targets in graph.items()}
    try:
        graphlib.TopologicalSorter(edges).prepare()
    except graphlib.CycleError as exc:
        cycle = exc.args[1]
        pytest.fail("files that import each other: " + " -> ".join(cycle))


def test_no_repository_module_is_imported_by_a_string() -> None:
    offenders = []
    for path in source_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name not in {"import_module", "__import__"}:
                continue
            first = node.args[0] if node.args else None
            text = ast.unparse(first) if first is not None else ""
            if any(pkg in text for pkg in PACKAGES) or not isinstance(first, ast.Constant):
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno} {name}({text})")
    assert not offenders, "import by string hides a dependency from the graph: " + ", ".join(offenders)


def test_environment_variables_are_declared_once_in_core_env() -> None:
    """No `MLP_*` string literal outside core/env.py: code reads `env.X.get()` and renderers write `env.X.name`."""
    offenders = []
    for path in source_files():
        if path == ENV_DECLARATIONS:
            continue
        tree = ast.parse(path.read_text())
        docstrings = {
            id(n.body[0].value)
            for n in ast.walk(tree)
            if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and n.body
            and isinstance(n.body[0], ast.Expr)
            and isinstance(n.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and "MLP_" in node.value
                and id(node) not in docstrings
            ):
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno} {node.value[:60]!r}")
    assert not offenders, "declare the variable in core/env.py and use it from there:\n" + "\n".join(offenders)


def test_every_declared_environment_variable_is_used() -> None:
    from core import env

    files = [*source_files(), *(REPO_ROOT / "tests").rglob("*.py")]
    text = "\n".join(p.read_text() for p in files if p not in {ENV_DECLARATIONS, Path(__file__)})
    unused = [v.name for attr, v in vars(env).items() if isinstance(v, env.EnvVar) and f".{attr}." not in text]
    assert not unused, f"declared in core/env.py but read or set nowhere: {unused}"


def test_the_diagram_in_docs_architecture_draws_the_same_layering() -> None:
    text = (REPO_ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## The code: packages and what they may import", 1)[1]
    diagram = section.split("```mermaid", 1)[1].split("```", 1)[0]
    drawn: dict[str, set[str]] = {pkg: {pkg} for pkg in PACKAGES}
    for line in diagram.splitlines():
        if "-->" in line:
            src, targets = (part.strip() for part in line.split("-->"))
            drawn[src] |= {t.strip() for t in targets.split("&")}
    assert drawn == ALLOWED, "docs/architecture.md's package diagram differs from the layering this test enforces"
