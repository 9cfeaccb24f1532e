"""Registration's reuse rule: only a signed version holds a package already."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pipelines.registry import register


def test_a_version_without_a_signed_manifest_is_not_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    old = SimpleNamespace(version="1", status="READY", tags={"input_hash": "abc"})
    signed = SimpleNamespace(version="2", status="READY", tags={"input_hash": "abc", register.MANIFEST_TAG: "9f"})
    monkeypatch.setattr(register, "list_versions", lambda name=None: [old])
    assert register.find_existing("abc") is None  # registered before signing: it would be refused at load
    monkeypatch.setattr(register, "list_versions", lambda name=None: [old, signed])
    assert register.find_existing("abc") == 2


def test_the_registered_pyfunc_is_a_source_file_that_sets_the_model_and_pickles_nothing() -> None:
    source = register.PYFUNC_CODE.read_text()
    assert register.PYFUNC_CODE.suffix == ".py" and "set_model(" in source
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert imports == [
        "from mlflow.models import set_model",
        "from services.model_runtime.pyfunc import OnnxClassifierPyfunc",
    ]
