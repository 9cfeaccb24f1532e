"""The local secret store: every secret file 0600 from its first byte, written atomically, one value per name."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest


@pytest.fixture()
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLP_STATE_DIR", str(tmp_path))
    return tmp_path / "secrets"


def _ask(state: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    os.environ["MLP_STATE_DIR"] = state
    from infra.local.secrets import get_secret

    queue.put(get_secret("raced"))


def test_a_new_secret_is_private_complete_and_stable(store: Path) -> None:
    from infra.local.secrets import get_secret

    value = get_secret("demo")
    assert len(value) >= 24
    assert (store / "demo").stat().st_mode & 0o777 == 0o600
    assert store.stat().st_mode & 0o777 == 0o700
    assert get_secret("demo") == value
    assert sorted(p.name for p in store.iterdir()) == ["demo"]  # no temporary file left behind


def test_processes_asking_for_a_new_secret_at_once_agree_on_one_value(store: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_ask, args=(str(store.parent), queue)) for _ in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    values = {queue.get(timeout=5) for _ in procs}
    assert len(values) == 1
    assert (store / "raced").read_text() in values
    assert sorted(p.name for p in store.iterdir()) == ["raced"]


def test_secret_files_replaced_atomically_stay_private(store: Path) -> None:
    from infra.local.secrets import get_secret, put_secret_file, rotate_secret

    path = put_secret_file("conf.ini", "[x]\npassword = one\n")
    os.chmod(path, 0o644)  # even if someone loosened it, a rewrite is private again
    put_secret_file("conf.ini", "[x]\npassword = two\n")
    assert path.read_text().endswith("two\n") and path.stat().st_mode & 0o777 == 0o600
    old = get_secret("token")
    new = rotate_secret("token")
    assert new != old and get_secret("token") == new
    assert (store / "token").stat().st_mode & 0o777 == 0o600


def test_the_artifact_signing_key_is_a_private_ed25519_key_and_only_its_public_half_leaves(store: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from infra.local.secrets import ARTIFACT_SIGNING_KEY, artifact_public_key, get_secret

    public = artifact_public_key()
    path = next(store.rglob(ARTIFACT_SIGNING_KEY))
    assert path.stat().st_mode & 0o777 == 0o600
    key = serialization.load_pem_private_key(get_secret(ARTIFACT_SIGNING_KEY).encode(), None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    assert "PRIVATE" not in public and artifact_public_key() == public  # stable, and not the private key
