"""`VERSION=PERCENT` pairs, as `mlp serve weights`, `mlp release weights` and `mlp render k8s --versions` take them.

One parser, so every command accepts and refuses the same splits: integer versions and percents, each percent
0..100, no version twice, and the percents summing to 100 (the gateway never routes a partial split).
"""

from __future__ import annotations

from collections.abc import Iterable

EXAMPLE = "3=90 4=10"


class WeightsError(ValueError):
    """A split that cannot be routed; the message names the bad pair and shows the expected form."""


def parse_pair(pair: str) -> tuple[int, int]:
    """`"3=90"` -> `(3, 90)`."""
    version, sep, percent = (part.strip() for part in pair.partition("="))
    if not sep or not version.isdecimal() or not percent.lstrip("-").isdecimal():
        raise WeightsError(f"{pair!r}: expected VERSION=PERCENT with whole numbers, e.g. {EXAMPLE}")
    weight = int(percent)
    if not 0 <= weight <= 100:
        raise WeightsError(f"{pair!r}: a percent is 0..100, got {weight}")
    return int(version), weight


def parse_weights(pairs: Iterable[str]) -> dict[int, int]:
    """`["3=90", "4=10"]` -> `{3: 90, 4: 10}`; raises WeightsError (a ValueError) on the first bad pair."""
    weights: dict[int, int] = {}
    for pair in pairs:
        version, weight = parse_pair(pair)
        if version in weights:
            raise WeightsError(f"{pair!r}: v{version} is given twice (VERSION=PERCENT pairs, e.g. {EXAMPLE})")
        weights[version] = weight
    if not weights:
        raise WeightsError(f"no VERSION=PERCENT pair given, e.g. {EXAMPLE}")
    total = sum(weights.values())
    if total != 100:
        raise WeightsError(f"weights must sum to 100, got {total} ({format_weights(weights)})")
    return weights


def format_weights(weights: dict[int, int]) -> str:
    """`{3: 90, 4: 10}` -> `"3=90 4=10"`: the form `parse_weights` reads back."""
    return " ".join(f"{v}={w}" for v, w in sorted(weights.items()))
