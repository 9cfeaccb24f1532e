"""`make demo`'s steps are real `mlp` command lines: each one parses as the CLI declares it (no step names a command
or an option that does not exist), and every value a step reads was saved by an earlier one."""

from __future__ import annotations

import string

import pytest
from typer._click.core import Command, Context  # Typer's own copy of click, as pipelines/cli.py
from typer._click.exceptions import UsageError
from typer.core import TyperGroup

from pipelines import cli, demo


def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field}


def parse(args: list[str]) -> Context:
    """Parse `mlp ARGS` down to its command, as click does before running it, without running anything."""
    command: Command = cli.app
    ctx = command.make_context("mlp", args)
    while isinstance(command, TyperGroup):
        rest = [*ctx._protected_args, *ctx.args]  # what TyperGroup.invoke resolves
        name, sub, rest = command.resolve_command(ctx, rest)
        assert sub is not None, f"no command {name!r}"
        command, ctx = sub, sub.make_context(name, rest, parent=ctx)
    return ctx


@pytest.mark.parametrize("step", demo.STEPS, ids=lambda s: " ".join(s.args[:2]))
def test_each_step_parses_as_the_cli_declares_it(step: demo.Step) -> None:
    saved = {name: "7" for arg in step.args for name in placeholders(arg)}
    saved["candidate_set_at"] = "2026-12-03T10:00:00+00:00"
    ctx = parse([arg.format_map(saved) for arg in step.args])
    assert ctx.command.callback is not None


def test_every_value_a_step_reads_was_saved_earlier() -> None:
    saved: set[str] = set()
    for step in demo.STEPS:
        wanted = set().union(*(placeholders(a) for a in (step.title, *step.args)))
        assert wanted <= saved, f"{step.title!r} reads {wanted - saved} before any step saves it"
        saved |= set(step.saves)


def test_a_misspelt_command_or_option_does_not_parse() -> None:
    with pytest.raises(UsageError):
        parse(["model", "benchmark"])
    with pytest.raises(UsageError):
        parse(["release", "start", "--versoin", "7"])
