"""`mlp cost report` picks the model to measure: the given variant, else the cheapest served one packaged."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.cost import report as rep


def package(models: Path, variant: str) -> None:
    (models / variant).mkdir(parents=True)
    (models / variant / "model.onnx").write_bytes(b"onnx")


def test_the_cheapest_packaged_served_variant_is_measured(tmp_path: Path) -> None:
    package(tmp_path, "fp32")
    assert rep.packaged_model(tmp_path) == tmp_path / "fp32"
    package(tmp_path, "int8")
    assert rep.packaged_model(tmp_path) == tmp_path / "int8"
    assert rep.packaged_model(tmp_path, "fp32") == tmp_path / "fp32"


def test_nothing_packaged_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(rep.NoPackagedModel, match="run `mlp model package` first"):
        rep.packaged_model(tmp_path)
    package(tmp_path, "int8")
    with pytest.raises(rep.NoPackagedModel):
        rep.packaged_model(tmp_path, "heavy")
