"""`mlp serve` helpers: weight parsing and rebalancing keep integer percents that sum to 100."""

from __future__ import annotations

import pytest

from pipelines.commands.serve import parse_weights, rebalance


def test_parse_weights() -> None:
    assert parse_weights(["3=90", "4=10"]) == {3: 90, 4: 10}
    for bad in (["3:90"], ["x=1"], ["3=ninety"]):
        with pytest.raises(ValueError, match="VERSION=PERCENT"):
            parse_weights(bad)


@pytest.mark.parametrize(
    ("current", "version", "weight", "expected"),
    [
        ({}, 4, 10, {4: 100}),  # the first live version takes everything
        ({3: 100}, 4, 10, {3: 90, 4: 10}),
        ({3: 100}, 4, 0, {3: 100, 4: 0}),
        ({3: 50, 5: 50}, 4, 10, {3: 45, 5: 45, 4: 10}),
        ({3: 67, 5: 33}, 4, 10, {3: 61, 5: 29, 4: 10}),
        ({3: 90, 4: 10}, 4, 50, {3: 50, 4: 50}),
    ],
)
def test_rebalance(current: dict[int, int], version: int, weight: int, expected: dict[int, int]) -> None:
    result = rebalance(current, version, weight)
    assert result == expected and sum(result.values()) == 100


def test_rebalance_refuses_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"0\.\.100"):
        rebalance({3: 100}, 4, 101)
