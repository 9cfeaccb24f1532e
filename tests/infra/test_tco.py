"""The TCO figures follow from policy prices and the environment config (no hard-coded totals)."""

from __future__ import annotations

import pytest

from core.policy import policy
from infra import tco
from infra.config import load_env


def test_totals_are_the_sum_of_priced_items() -> None:
    for name in ("dev", "staging", "prod"):
        env = load_env(name)
        items = tco.items(env)
        assert all(i.unit_price > 0 for i in items)
        assert sum(tco.monthly_by_layer(env).values()) == pytest.approx(sum(i.monthly for i in items))


def test_prod_pays_for_multi_az_and_per_az_nat() -> None:
    prices = policy().prices
    dev, prod = ({i.name.split(" (")[0]: i for i in tco.items(load_env(e))} for e in ("dev", "prod"))
    assert prod["NAT gateways"].monthly == pytest.approx(
        3 * prices.other["nat_gateway_per_hour"] * prices.monthly_hours
    )
    assert dev["NAT gateways"].monthly == pytest.approx(prices.other["nat_gateway_per_hour"] * prices.monthly_hours)
    rds = next(i for i in tco.items(load_env("prod")) if i.name.startswith("RDS db."))
    assert rds.quantity == 2 * prices.monthly_hours


def test_gpu_nodes_cost_nothing_at_rest_but_have_an_hourly_price() -> None:
    env = load_env("prod")
    gpu = next(i for i in tco.items(env) if i.name.startswith("GPU inference (min 0) nodes"))
    assert gpu.monthly == 0
    assert tco.gpu_node_hour(env) > policy().prices.instances["g5.xlarge"].usd_per_hour


def test_a_missing_price_names_the_key() -> None:
    prices = policy().prices.model_copy(update={"other": {}})
    with pytest.raises(KeyError, match=r"prices\.other\.nat_gateway_per_hour"):
        tco.items(load_env("dev"), prices)
