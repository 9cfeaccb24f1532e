"""The local gateway's certificates: a CA on first use, a server certificate it signs, re-issued when it should be."""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

import pytest
from cryptography import x509

from core import env
from core.policy import GatewayTls, policy
from infra.local import tls

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


@pytest.fixture()
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(env.STATE_DIR.name, str(tmp_path))
    return tmp_path


def settings() -> GatewayTls:
    return policy().gateway.tls


def cert(path: Path) -> x509.Certificate:
    loaded = tls.load_cert(path)
    assert loaded is not None, f"no certificate at {path}"
    return loaded


def test_first_use_creates_a_ca_and_a_server_certificate_it_signs(state: Path) -> None:
    result = tls.ensure(settings(), NOW)
    assert result.issued
    ca, server = cert(tls.ca_bundle()), cert(result.cert)
    server.verify_directly_issued_by(ca)
    assert tls.sans(server) == {"127.0.0.1", "localhost"}
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    # Keys sit in the secret store, private; the CA certificate is public.
    for key in (result.key, state / "secrets" / tls.CA_KEY):
        assert key.stat().st_mode & 0o777 == 0o600
    assert result.key.parent == state / "secrets"


def test_validity_comes_from_the_policy(state: Path) -> None:
    s = settings()
    tls.ensure(s, NOW)
    assert cert(tls.ca_bundle()).not_valid_after_utc == NOW + dt.timedelta(days=s.ca_validity_days)
    assert cert(tls.server_cert_path()).not_valid_after_utc == NOW + dt.timedelta(days=s.server_cert_validity_days)


def test_a_client_that_runs_first_gets_the_ca_as_its_only_trust_anchor(state: Path) -> None:
    context = tls.client_context()  # before the gateway ever started: the CA is created, not skipped
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", tls.CA_NAME),),)]
    assert cert(tls.ca_bundle()).subject.rfc4514_string() == f"CN={tls.CA_NAME}"


def test_a_valid_certificate_is_kept(state: Path) -> None:
    first = tls.ensure(settings(), NOW)
    again = tls.ensure(settings(), NOW + dt.timedelta(days=1))
    assert not again.issued
    assert cert(again.cert).serial_number == cert(first.cert).serial_number


def test_reissued_when_fewer_than_renew_before_days_are_left(state: Path) -> None:
    s = settings()
    first = cert(tls.ensure(s, NOW).cert)
    just_before = NOW + dt.timedelta(days=s.server_cert_validity_days - s.renew_before_days) - dt.timedelta(hours=1)
    assert not tls.ensure(s, just_before).issued
    inside = NOW + dt.timedelta(days=s.server_cert_validity_days - s.renew_before_days, hours=1)
    renewed = tls.ensure(s, inside)
    assert renewed.issued
    assert cert(renewed.cert).serial_number != first.serial_number
    assert cert(renewed.cert).not_valid_after_utc == inside + dt.timedelta(days=s.server_cert_validity_days)


def test_reissued_when_the_wanted_names_change(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tls.ensure(settings(), NOW)
    monkeypatch.setattr(tls, "SERVER_NAMES", ("localhost", "gateway.local"))
    result = tls.ensure(settings(), NOW)
    assert result.issued
    assert tls.sans(cert(result.cert)) == {"127.0.0.1", "localhost", "gateway.local"}


def test_a_new_ca_reissues_the_server_certificate_under_it(state: Path) -> None:
    tls.ensure(settings(), NOW)
    old_ca = cert(tls.ca_bundle())
    (state / "secrets" / tls.CA_KEY).unlink()  # rotation: runbooks/certificate-rotation.md
    result = tls.ensure(settings(), NOW)
    new_ca = cert(tls.ca_bundle())
    assert result.issued
    assert new_ca.serial_number != old_ca.serial_number
    cert(result.cert).verify_directly_issued_by(new_ca)


def test_a_key_that_does_not_match_its_certificate_is_replaced(state: Path) -> None:
    """A crash between writing a new key and its certificate leaves a mismatched pair: the next call repairs it."""
    tls.ensure(settings(), NOW)
    tls.put_secret_file(tls.SERVER_KEY, tls._key_pem(tls.ec.generate_private_key(tls.ec.SECP256R1())))
    result = tls.ensure(settings(), NOW)
    assert result.issued
    key = tls._load_key(tls.SERVER_KEY)
    assert key is not None and key.public_key() == cert(result.cert).public_key()
