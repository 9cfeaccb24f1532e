"""Local secret store: random values generated on first use, kept 0600 under `.state/secrets/`.

Secrets never enter the repository or the logs. In the cluster the same names live in
AWS Secrets Manager; here a file per secret is enough and survives restarts.
"""

from __future__ import annotations

import hashlib
import secrets as _random
from collections.abc import Callable

from infra.local.paths import secrets_dir


def _fernet_key() -> str:
    import base64

    return base64.urlsafe_b64encode(_random.token_bytes(32)).decode()


GENERATORS: dict[str, Callable[[], str]] = {
    "mlflow_fernet_key": _fernet_key,
}


def get_secret(name: str) -> str:
    """Return the secret `name`, creating it the first time it is asked for."""
    path = secrets_dir() / name
    if path.exists():
        return path.read_text().strip()
    value = GENERATORS.get(name, lambda: _random.token_urlsafe(24))()
    path.touch(mode=0o600)
    path.write_text(value)
    return value


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def api_key(client: str) -> str:
    """The gateway API key of a client named in policy.gateway.api_keys."""
    return get_secret(f"api_key_{client}")
