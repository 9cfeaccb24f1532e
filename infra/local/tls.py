"""The local gateway's certificates: a CA generated on first use, and a short-lived server certificate it signs.

- CA: an EC P-256 key in the secret store (`tls_ca_key`, 0600, atomic) and its certificate `<state>/tls/ca.pem`,
  valid `gateway.tls.ca_validity_days`. The certificate is public: it is the bundle every client of the gateway
  verifies with (`ca_bundle()`; `curl --cacert .state/tls/ca.pem`).
- Server: a key in the secret store (`tls_gateway_key`) and `<state>/tls/gateway.pem`, SANs `127.0.0.1` and
  `localhost`, valid `gateway.tls.server_cert_validity_days`. `ensure()` re-issues it when fewer than
  `renew_before_days` are left, when its SANs are not the wanted ones, or when the current CA did not sign it (the CA
  was rotated), so every gateway start or config change leaves a valid certificate in place.

One process issues at a time (a lock in the folder); a crash between writing a key and its certificate leaves a
pair that does not match, which the next `ensure()` notices and replaces. Rotation: runbooks/certificate-rotation.md.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from core import endpoints
from core.policy import GatewayTls, policy
from infra.local.files import atomic_write_text, locked
from infra.local.paths import secrets_dir, sub
from infra.local.secrets import put_secret_file

CA_KEY = "tls_ca_key"  # secret store names
SERVER_KEY = "tls_gateway_key"
CA_NAME = "mlp local CA"
SERVER_NAMES = ("localhost",)  # DNS SANs; the IP SAN is the address the gateway listens on
# Backdated a little so a clock a few seconds behind the issuer's does not reject a fresh certificate.
CLOCK_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class ServerCertificate:
    cert: Path  # PEM, the leaf only (clients hold the CA)
    key: Path  # PEM, 0600, in the secret store
    issued: bool  # True when this call wrote a new certificate


def tls_dir() -> Path:
    return sub("tls")


def ca_bundle() -> Path:
    """The CA certificate every client of the local gateway verifies it with."""
    return tls_dir() / "ca.pem"


def server_cert_path() -> Path:
    return tls_dir() / "gateway.pem"


def server_key_path() -> Path:
    return secrets_dir() / SERVER_KEY


def wanted_sans() -> set[str]:
    return {endpoints.HOST, *SERVER_NAMES}


def client_context() -> ssl.SSLContext:
    """What the platform's own clients call the gateway with: verification on, the local CA the only trust anchor.
    A client only creates the CA when there is none yet (it may run before the gateway ever started); re-issuing and
    rotating are the gateway's, so nginx always serves what was last issued."""
    if load_cert(ca_bundle()) is None:
        ensure()
    return ssl.create_default_context(cafile=str(ca_bundle()))


def ensure(settings: GatewayTls | None = None, now: dt.datetime | None = None) -> ServerCertificate:
    """The CA (created on first use) and a server certificate good for at least `renew_before_days` more days."""
    settings = settings or policy().gateway.tls
    now = now or dt.datetime.now(dt.UTC)
    with locked(tls_dir() / ".lock"):
        ca_key, ca_cert = _ca(settings, now)
        issued = False
        if _needs_server_cert(ca_cert, settings, now):
            _issue_server(ca_key, ca_cert, settings, now)
            issued = True
    return ServerCertificate(server_cert_path(), server_key_path(), issued)


def sans(cert: x509.Certificate) -> set[str]:
    """The certificate's DNS and IP subject alternative names, as text."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {*ext.get_values_for_type(x509.DNSName), *(str(ip) for ip in ext.get_values_for_type(x509.IPAddress))}


def load_cert(path: Path) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (FileNotFoundError, ValueError):
        return None


def _load_key(name: str) -> ec.EllipticCurvePrivateKey | None:
    try:
        key = serialization.load_pem_private_key((secrets_dir() / name).read_bytes(), password=None)
    except (FileNotFoundError, ValueError):
        return None
    return key if isinstance(key, ec.EllipticCurvePrivateKey) else None


def _same_key(key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> bool:
    return key.public_key() == cert.public_key()


def _ca(settings: GatewayTls, now: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key, cert = _load_key(CA_KEY), load_cert(ca_bundle())
    if key is not None and cert is not None and _same_key(key, cert) and cert.not_valid_after_utc > now:
        return key, cert
    # First use, an expired CA, or a key and certificate that do not belong together (a crash between the writes).
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=settings.ca_validity_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    put_secret_file(CA_KEY, _key_pem(key))
    atomic_write_text(ca_bundle(), cert.public_bytes(serialization.Encoding.PEM).decode())
    return key, cert


def _needs_server_cert(ca_cert: x509.Certificate, settings: GatewayTls, now: dt.datetime) -> bool:
    key, cert = _load_key(SERVER_KEY), load_cert(server_cert_path())
    if key is None or cert is None or not _same_key(key, cert):
        return True
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return True  # signed by a CA that was since replaced
    left = cert.not_valid_after_utc - now
    return left < dt.timedelta(days=settings.renew_before_days) or sans(cert) != wanted_sans()


def _issue_server(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, settings: GatewayTls, now: dt.datetime
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    alt_names: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(endpoints.HOST))]
    alt_names += [x509.DNSName(name) for name in SERVER_NAMES]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mlp gateway")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=settings.server_cert_validity_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    # Key first: a crash before the certificate is written leaves a mismatch the next call repairs.
    put_secret_file(SERVER_KEY, _key_pem(key))
    atomic_write_text(server_cert_path(), cert.public_bytes(serialization.Encoding.PEM).decode())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
