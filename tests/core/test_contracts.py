"""The names that cross process boundaries and the small rules that read them."""

from __future__ import annotations

import pytest

from core import contracts


@pytest.mark.parametrize(
    "host",
    ["api.example.com-shadow", "API.EXAMPLE.COM-SHADOW", "127.0.0.1:13001-shadow", "api.example.com-shadow:443"],
)
def test_a_mirrors_host_is_recognised_with_or_without_a_port(host: str) -> None:
    assert contracts.is_mirrored_host(host)


@pytest.mark.parametrize("host", ["", "api.example.com", "shadow.example.com", "127.0.0.1:13001", "api-shadowy.io"])
def test_other_hosts_are_not_mirrors(host: str) -> None:
    assert not contracts.is_mirrored_host(host)
