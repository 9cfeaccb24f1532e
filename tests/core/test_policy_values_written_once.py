"""Policy values are written once, in policy.yaml: the model has no defaults, and the file sets every field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from core.policy import REPO_ROOT, Policy, PolicyError, load_policy


def models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    """The pydantic models an annotation holds, however deep: `X`, `list[X]`, `dict[str, X]`, `X | None`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in get_args(annotation):
        yield from models_in(arg)


def fields(model: type[BaseModel], path: str = "") -> Iterator[tuple[str, FieldInfo]]:
    """Every field of the model tree, by dotted path (a list's or map's entries are one level deeper)."""
    for name, field in model.model_fields.items():
        yield f"{path}{name}", field
        for sub in models_in(field.annotation):
            yield from fields(sub, f"{path}{name}.")


def models(model: type[BaseModel]) -> set[type[BaseModel]]:
    found = {model}
    for field in model.model_fields.values():
        for sub in models_in(field.annotation):
            found |= models(sub)
    return found


def test_the_walk_reaches_every_model() -> None:
    names = {m.__name__ for m in models(Policy)}
    assert {"Policy", "CanaryAnalysis", "ApiKey", "InstancePrice", "GpuThroughput", "Prices"} <= names
    assert len(list(fields(Policy))) > 100


def test_no_field_of_the_model_has_a_default() -> None:
    """A default would be a second place the value is written, free to disagree with policy.yaml."""
    with_default = [
        f"{path} = {field.get_default(call_default_factory=True)!r}"
        for path, field in fields(Policy)
        if not field.is_required()
    ]
    assert not with_default, "set these in policy.yaml and drop the default in core/policy.py:\n" + "\n".join(
        with_default
    )


def test_every_field_has_a_meaning() -> None:
    """docs/policy.md's meaning column is the field's description."""
    missing = [path for path, field in fields(Policy) if not (field.description or "").strip()]
    assert not missing, "give these a Field(description=...) in core/policy.py:\n" + "\n".join(missing)


def instances(value: Any) -> Iterator[BaseModel]:
    if isinstance(value, BaseModel):
        yield value
        for name in type(value).model_fields:
            yield from instances(getattr(value, name))
    elif isinstance(value, list | tuple):
        for item in value:
            yield from instances(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from instances(item)


def test_policy_yaml_sets_every_field() -> None:
    loaded = list(instances(load_policy(REPO_ROOT / "policy.yaml")))
    for obj in loaded:
        unset = set(type(obj).model_fields) - obj.model_fields_set
        assert not unset, f"{type(obj).__name__}: policy.yaml leaves {sorted(unset)} unset"
    assert {type(obj) for obj in loaded} == models(Policy), "policy.yaml has no entry of some model"


@pytest.mark.parametrize(
    "path",
    [("canary", "analysis", "min_requests"), ("canary", "analysis"), ("ports", "mlflow"), ("release", "default_model")],
)
def test_a_field_missing_from_the_file_is_an_error_naming_it(tmp_path: Path, path: tuple[str, ...]) -> None:
    raw = yaml.safe_load((REPO_ROOT / "policy.yaml").read_text())
    node = raw
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(PolicyError) as err:
        load_policy(tmp_path / "policy.yaml")
    assert f"{'.'.join(path)}: Field required" in str(err.value)
