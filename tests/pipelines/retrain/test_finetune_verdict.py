"""The fine-tuning benchmark's verdict is the gate's own criteria for a retrained candidate, read from the policy:
enough gain on the shifted held-out split, no in-domain held-out loss beyond the tolerance."""

from __future__ import annotations

import pytest

from core.policy import policy
from pipelines.bench.finetune_bench import verdict

HEAD_ONLY = {"validation": 0.75, "heldout": 0.75, "shifted_validation": 0.80, "shifted_heldout": 0.80}


def tuned(shifted_gain: float, in_domain_change: float) -> dict[str, float]:
    return {**HEAD_ONLY, "shifted_heldout": 0.80 + shifted_gain, "heldout": 0.75 + in_domain_change}


@pytest.mark.parametrize(
    ("shifted", "in_domain", "pays"),
    [
        (+1.5, 0.0, True),  # in units of the policy's required gain / tolerance (below)
        (+0.5, 0.0, False),
        (+1.5, -1.5, False),
        (+1.5, -0.5, True),
    ],
)
def test_pays_only_with_the_gates_gain_and_within_its_tolerance(shifted: float, in_domain: float, pays: bool) -> None:
    need, tolerance = policy().retraining.min_shifted_heldout_gain, policy().promotion.regression_tolerance_overall
    got, why = verdict(HEAD_ONLY, tuned(shifted * need, in_domain * tolerance))
    assert got is pays, why
    assert ("does not pay" in why) is (not pays)
