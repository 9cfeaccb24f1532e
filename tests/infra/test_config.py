"""The config validators refuse what a reviewer would otherwise have to catch."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from infra.config import EnvConfig, load_env
from infra.config.models import ChartVersion


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


def _chart(*images: dict[str, str]) -> ChartVersion:
    return ChartVersion.model_validate(
        {"repository": "https://x", "chart": "c", "version": "1.0.0", "namespace": "n", "source": "s", "images": images}
    )


HEX = "ab" * 32


def test_chart_images_become_nested_values_in_the_form_each_path_takes() -> None:
    chart = _chart(
        {
            "image": "q/a",
            "tag": "v1",
            "digest": f"sha256:{HEX}",
            "values": "image.digest",
            "form": "digest",
            "source": "s",
        },
        {
            "image": "q/b",
            "tag": "v1",
            "digest": f"sha256:{HEX}",
            "values": "webhook.image.sha",
            "form": "hex",
            "source": "s",
        },
        {
            "image": "q/c",
            "tag": "v2",
            "digest": f"sha256:{HEX}",
            "values": "c.image.tag",
            "form": "tag@digest",
            "source": "s",
        },
    )
    assert chart.image_values() == {
        "image": {"digest": f"sha256:{HEX}"},
        "webhook": {"image": {"sha": HEX}},
        "c": {"image": {"tag": f"v2@sha256:{HEX}"}},
    }


def test_two_images_at_one_values_path_or_a_short_digest_are_refused() -> None:
    one = {"image": "q/a", "tag": "v1", "digest": f"sha256:{HEX}", "values": "image.tag", "form": "tag@digest"}
    with pytest.raises(ValueError, match=r"two images set image\.tag"):
        _chart({**one, "source": "s"}, {**one, "image": "q/b", "source": "s"}).image_values()
    with pytest.raises(ValidationError, match="digest"):
        _chart({**one, "digest": "sha256:ab", "source": "s"})
