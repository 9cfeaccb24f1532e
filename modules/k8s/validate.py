"""Offline validation of rendered manifests.

Built-in kinds: `kubernetes-validate` (strict: unknown fields are errors) at the pinned Kubernetes version.
CRD kinds: the vendored OpenAPI v3 schemas in `crd_schemas/` (SOURCES.md) with `jsonschema`, strict the way
`kubectl apply --validate=strict` is: an object schema that lists properties rejects any other field, unless it is
marked `x-kubernetes-preserve-unknown-fields`. A schema node marked `x-mlp-builtin` (the pod template of a Rollout)
is validated as that built-in type.
"""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate

from modules.k8s.versions import KUBERNETES_VERSION

SCHEMA_DIR = Path(__file__).parent / "crd_schemas"


@dataclass(frozen=True)
class Problem:
    kind: str
    name: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}: {self.path or '(root)'}: {self.message}"


class ManifestInvalid(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n  ".join(str(p) for p in problems)
        super().__init__(f"{len(problems)} invalid manifest field(s):\n  {lines}")


def schema_file(api_version: str, kind: str) -> Path:
    group, _, version = api_version.rpartition("/")
    return SCHEMA_DIR / f"{group}_{version}_{kind}.json"


def _strict(node: Any) -> Any:
    """Close every object schema that lists its properties (unknown field = error, as strict apply does)."""
    if isinstance(node, dict):
        out = {k: _strict(v) for k, v in node.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


@functools.cache
def crd_schema(api_version: str, kind: str) -> dict[str, Any]:
    path = schema_file(api_version, kind)
    if not path.exists():
        raise FileNotFoundError(
            f"no vendored schema for {api_version} {kind} ({path.name}): vendor it into {SCHEMA_DIR} "
            "(python -m modules.k8s.crd_schemas.extract CRD.yaml) and record it in SOURCES.md"
        )
    schema: dict[str, Any] = json.loads(path.read_text())
    strict: dict[str, Any] = _strict(schema)
    return strict


def _builtin_nodes(schema: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    """(property path, built-in type) for every `x-mlp-builtin` node (objects only, no arrays needed yet)."""
    found: list[tuple[tuple[str, ...], str]] = []
    if isinstance(schema, dict):
        if "x-mlp-builtin" in schema:
            found.append((path, schema["x-mlp-builtin"]))
        for key, sub in schema.get("properties", {}).items():
            found.extend(_builtin_nodes(sub, (*path, key)))
    return found


def _where(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path)


def _builtin(manifest: dict[str, Any], strict: bool = True) -> list[Problem]:
    kind, name = manifest.get("kind", "?"), manifest.get("metadata", {}).get("name", "?")
    try:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=strict)
    except kubernetes_validate.ValidationError as exc:
        return [Problem(kind, name, ".".join(str(p) for p in exc.path), exc.message)]
    return []


def _pod_template(template: Any, kind: str, name: str, where: str) -> list[Problem]:
    wrapped = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": name}, "template": template}
    return [Problem(kind, name, f"{where}.{p.path.removeprefix('template.')}", p.message) for p in _builtin(wrapped)]


def _analysis_jobs(manifest: dict[str, Any], kind: str, name: str) -> list[Problem]:
    """An AnalysisTemplate's job provider holds a whole Job (its vendored schema leaves it open): checked as one."""
    problems: list[Problem] = []
    for i, metric in enumerate(manifest.get("spec", {}).get("metrics", [])):
        job = metric.get("provider", {}).get("job")
        if job is None:
            continue
        wrapped = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {**job.get("metadata", {}), "name": name},
                   "spec": job.get("spec")}  # fmt: skip
        where = f"spec.metrics.{i}.provider.job"
        problems += [Problem(kind, name, f"{where}.{p.path}", p.message) for p in _builtin(copy.deepcopy(wrapped))]
    return problems


def validate_manifest(manifest: dict[str, Any]) -> list[Problem]:
    """Problems of one manifest (empty = valid)."""
    api_version, kind = manifest.get("apiVersion", ""), manifest.get("kind", "")
    name = manifest.get("metadata", {}).get("name", "?")
    if not api_version or not kind:
        return [Problem(kind or "?", name, "", "apiVersion and kind are required")]
    if not schema_file(api_version, kind).exists():
        try:
            return _builtin(manifest)
        except kubernetes_validate.SchemaNotFoundError:
            return [Problem(kind, name, "", f"{api_version} {kind}: no built-in schema and no vendored CRD schema")]
    schema = crd_schema(api_version, kind)
    validator = jsonschema.Draft7Validator(schema)
    problems = [Problem(kind, name, _where(e), e.message) for e in sorted(validator.iter_errors(manifest), key=str)]
    for path, builtin in _builtin_nodes(schema):
        node: Any = manifest
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if node is not None and builtin == "PodTemplateSpec":
            problems.extend(_pod_template(copy.deepcopy(node), kind, name, ".".join(path)))
    if kind == "AnalysisTemplate":
        problems.extend(_analysis_jobs(manifest, kind, name))
    return problems


def validate_all(rendered: dict[str, list[dict[str, Any]]]) -> list[Problem]:
    return [p for manifests in rendered.values() for m in manifests for p in validate_manifest(m)]


def check(rendered: dict[str, list[dict[str, Any]]]) -> None:
    problems = validate_all(rendered)
    if problems:
        raise ManifestInvalid(problems)
