"""Which variants `mlp model package --variant` builds, and the command line it hands the packaging env."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from core.policy import policy
from pipelines.packaging.run import build_command
from pipelines.packaging.variants import REGISTERED, VARIANTS, build_order, resolve


def test_sets_and_names_resolve_in_order_without_losing_any() -> None:
    assert resolve(["all"]) == list(VARIANTS)
    assert resolve(["registered"]) == list(REGISTERED)
    assert resolve(["gguf-f16", "registered"]) == ["gguf-f16", *REGISTERED]


def test_registered_variants_can_be_built_alone() -> None:
    # A variant reusing another's head needs that one in the same build (or built before).
    for name in REGISTERED:
        head_of = VARIANTS[name].head_of
        assert not head_of or head_of in REGISTERED, f"{name} reuses {head_of}, which is not registered"
    assert set(build_order(list(REGISTERED))) == set(REGISTERED)


def test_an_unknown_name_is_refused_naming_the_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown variant 'fp64'; choose from .*gguf-q8_0.*registered"):
        resolve(["fp32", "fp64"])


def test_the_packaging_command_names_each_variant() -> None:
    cmd = build_command(["fp32", "int8"], force=True, p=policy())
    assert cmd[cmd.index("-m") + 1] == "pipelines.packaging.build"
    assert [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "--variant"] == ["fp32", "int8"]
    assert "--force" in cmd and "--all" not in cmd


def test_the_cli_refuses_an_unknown_variant_before_packaging() -> None:
    from pipelines.commands.model import app

    result = CliRunner().invoke(app, ["package", "--variant", "fp64"])
    assert result.exit_code == 2
    assert "unknown variant 'fp64'" in result.output
