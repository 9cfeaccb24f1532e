"""The one VERSION=PERCENT parser behind `mlp serve weights`, `mlp release weights` and `mlp render k8s`."""

from __future__ import annotations

import pytest

from pipelines.release.weights import WeightsError, format_weights, parse_weights


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        (["3=100"], {3: 100}),
        (["3=90", "4=10"], {3: 90, 4: 10}),
        ([" 3 = 90 ", "4=10"], {3: 90, 4: 10}),  # spaces around the parts are forgiven
        (["3=100", "4=0"], {3: 100, 4: 0}),  # a version may be live with no traffic
    ],
)
def test_valid_splits(pairs: list[str], expected: dict[int, int]) -> None:
    assert parse_weights(pairs) == expected


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (["3:90", "4=10"], r"'3:90': expected VERSION=PERCENT"),
        (["x=100"], r"'x=100': expected VERSION=PERCENT"),
        (["3=ninety"], r"'3=ninety': expected VERSION=PERCENT"),
        (["3=90.5", "4=9.5"], r"'3=90.5': expected VERSION=PERCENT with whole numbers"),
        (["3=-10", "4=110"], r"'3=-10': a percent is 0..100, got -10"),
        (["3=150"], r"'3=150': a percent is 0..100"),
        (["3=50", "3=50"], r"'3=50': v3 is given twice"),
        (["3=90", "4=20"], r"weights must sum to 100, got 110 \(3=90 4=20\)"),
        (["3=50"], r"sum to 100, got 50"),
        ([], r"no VERSION=PERCENT pair given"),
    ],
)
def test_invalid_splits_name_the_bad_pair(pairs: list[str], message: str) -> None:
    with pytest.raises(WeightsError, match=message):
        parse_weights(pairs)


def test_weights_error_is_a_value_error() -> None:
    # `mlp serve weights` catches ValueError around the gateway call: the parser's errors land there too.
    assert issubclass(WeightsError, ValueError)


def test_formatted_weights_parse_back() -> None:
    weights = {4: 10, 3: 90}
    assert format_weights(weights) == "3=90 4=10"
    assert parse_weights(format_weights(weights).split()) == weights


def test_every_weights_command_uses_this_parser() -> None:
    from pipelines.commands import render, serve

    assert serve.parse_weights is parse_weights
    with pytest.raises(Exception, match="v3 is given twice"):
        render.parse_versions("3=50,3=50")
    assert render.parse_versions("3=90,4=10") == {3: 90, 4: 10}
