"""The config validators refuse what a reviewer would otherwise have to catch."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import EnvConfig, load_env


def _variant(name: str, **changes: Any) -> dict[str, Any]:
    data = load_env(name).model_dump()
    for dotted, value in changes.items():
        node = data
        *path, leaf = dotted.split("__")
        for key in path:
            node = node[key]
        node[leaf] = value
    return data


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"database__multi_az": False}, "Multi-AZ"),
        ({"network__nat_gateways": "single"}, "NAT"),
        ({"database__deletion_protection": False}, "deletion protection"),
    ],
)
def test_prod_rules(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EnvConfig.model_validate(_variant("prod", **changes))


def test_public_endpoint_cannot_be_open_to_the_world() -> None:
    with pytest.raises(ValueError, match="too wide"):
        EnvConfig.model_validate(_variant("dev", cluster__public_access_cidrs=["0.0.0.0/0"]))


def test_gpu_group_must_scale_from_zero_and_be_tainted() -> None:
    with pytest.raises(ValueError, match="min_size must be 0"):
        EnvConfig.model_validate(
            _variant("dev", cluster__gpu_inference__min_size=1, cluster__gpu_inference__desired_size=1)
        )
    with pytest.raises(ValueError, match="taint"):
        EnvConfig.model_validate(_variant("dev", cluster__gpu_inference__taints=[]))


def test_azs_must_belong_to_the_region() -> None:
    with pytest.raises(ValueError, match="not an availability zone"):
        EnvConfig.model_validate(_variant("dev", network__azs=["eu-west-1a", "eu-west-1b"]))


def test_state_bucket_comes_from_ci_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from infra.config import loader

    loader.load_env.cache_clear()
    monkeypatch.setenv(loader.STATE_BUCKET_ENV, "acme-tfstate-{env}")
    try:
        assert loader.load_env("staging").state.bucket == "acme-tfstate-staging"
    finally:
        loader.load_env.cache_clear()
