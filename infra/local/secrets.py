"""Local secret store: random values generated on first use, kept 0600 under `.state/secrets/` (folder 0700).

Secrets never enter the repository or the logs. In the cluster the same names live in
AWS Secrets Manager; here a file per secret is enough and survives restarts.

A secret file is created atomically: the value is written to a temporary file that is 0600 from its first byte
(`mkstemp`), synced, then hard-linked to its name, which fails if another process created the secret meanwhile;
the loser reads the winner's value. A reader never sees an empty or half-written secret, and two processes asking
for a new secret at once agree on one value.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets as _random
import tempfile
from collections.abc import Callable
from pathlib import Path

from infra.local.files import atomic_write_text
from infra.local.paths import secrets_dir

SECRET_FILE_MODE = 0o600


def _fernet_key() -> str:
    import base64

    return base64.urlsafe_b64encode(_random.token_bytes(32)).decode()


def _artifact_signing_key() -> str:
    from services.registry.manifest import new_private_key_pem

    return new_private_key_pem()


ARTIFACT_SIGNING_KEY = "artifact_signing_key"  # Ed25519, PKCS#8 PEM: signs registered versions' manifests

GENERATORS: dict[str, Callable[[], str]] = {
    "mlflow_fernet_key": _fernet_key,
    ARTIFACT_SIGNING_KEY: _artifact_signing_key,
}


def artifact_public_key() -> str:
    """The public half of the artifact signing key (not secret): what every verifier is given."""
    from services.registry.manifest import public_key_text

    return public_key_text(get_secret(ARTIFACT_SIGNING_KEY))


def _write_new(path: Path, value: str) -> bool:
    """Create `path` holding `value`, mode 0600, atomically; False when it already exists (nothing written)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # 0600 from creation
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(value)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # atomic, and unlike rename it never replaces an existing secret
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def get_secret(name: str) -> str:
    """Return the secret `name`, creating it the first time it is asked for."""
    path = secrets_dir() / name
    if not path.exists():
        _write_new(path, GENERATORS.get(name, lambda: _random.token_urlsafe(24))())
    return path.read_text().strip()


def secret_file(name: str) -> Path:
    """The file holding the secret `name` (created the first time), for a reader that takes a path."""
    get_secret(name)
    return secrets_dir() / name


def write_private(path: Path, text: str) -> Path:
    """Write (or replace) a secret-bearing file atomically, mode 0600 from its first byte."""
    atomic_write_text(path, text, mode=0o600)
    return path


def put_secret_file(name: str, text: str) -> Path:
    """Write (or replace) the file `name` in the secret store, atomically and 0600."""
    return write_private(secrets_dir() / name, text)


def rotate_secret(name: str) -> str:
    """Replace the secret `name` with a new random value (atomically, 0600) and return it."""
    value = GENERATORS.get(name, lambda: _random.token_urlsafe(24))()
    put_secret_file(name, value)
    return value


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def api_key(client: str) -> str:
    """The gateway API key of a client named in policy.gateway.api_keys."""
    return get_secret(f"api_key_{client}")
