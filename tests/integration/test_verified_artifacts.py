"""Verified artifacts against the real MLflow + S3: a registered version is signed and holds no pickle; a byte
changed in the artifact store (with the store's admin keys, as an attacker holding them would) is refused by the
download, the gate and the model server, each naming the file; a manifest re-signed with another key is refused."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core import contracts
from services.registry import client as registry
from services.registry import manifest
from tests.integration.conftest import mlp

pytestmark = pytest.mark.integration


def _s3():  # type: ignore[no-untyped-def]
    import boto3

    from core import endpoints
    from infra.local.s3 import credentials

    key, secret = credentials()
    return boto3.client(
        "s3", endpoint_url=endpoints.s3_url(), aws_access_key_id=key, aws_secret_access_key=secret,
        region_name="us-east-1",
    )  # fmt: skip


def _stored_keys(version: int) -> dict[str, str]:
    """Relative path inside the version's model -> S3 key in the artifact bucket."""
    source = registry.mlflow_client().get_model_version(registry.model_name(), str(version)).source
    model_id = source.rsplit("/", 1)[-1]  # models:/m-...
    marker = f"/models/{model_id}/artifacts/"
    keys: dict[str, str] = {}
    for page in _s3().get_paginator("list_objects_v2").paginate(Bucket=contracts.ARTIFACT_BUCKET):
        for obj in page.get("Contents", []):
            if marker in "/" + obj["Key"]:
                keys[("/" + obj["Key"]).split(marker, 1)[1]] = obj["Key"]
    assert keys, f"no object of {model_id} in {contracts.ARTIFACT_BUCKET}"
    return keys


@pytest.fixture(scope="module")
def fresh_version(registered_versions: dict[str, int], packaged_variants: dict[str, Path]) -> Iterator[int]:
    """A version of its own (the int8 package under a new input hash), so tampering touches no other test."""
    from pipelines.registry.register import register

    with tempfile.TemporaryDirectory() as tmp:
        dst = Path(tmp) / "int8"
        shutil.copytree(packaged_variants["int8"], dst)
        lineage = json.loads((dst / "lineage.json").read_text())
        lineage["input_hash"] = uuid.uuid4().hex
        (dst / "lineage.json").write_text(json.dumps(lineage))
        started = time.monotonic()
        version = register(dst, progress=lambda _m: None).version
        print(f"registration with manifest and signature: {time.monotonic() - started:.1f}s")
    yield version


def test_a_registered_version_is_signed_verifies_and_holds_no_pickle(fresh_version: int, tmp_path: Path) -> None:
    import mlflow.pyfunc
    import pandas as pd

    keys = _stored_keys(fresh_version)
    assert {"manifest.json", "manifest.sig", "MLmodel"} <= keys.keys()
    assert not [k for k in keys if k.endswith(".pkl")], f"a pickle is stored: {sorted(keys)}"
    started = time.monotonic()
    model_dir = registry.download_version(fresh_version, cache_root=tmp_path)
    print(f"download + verification: {time.monotonic() - started:.2f}s")
    signed = json.loads((model_dir.parents[1] / "manifest.json").read_text())["files"]
    assert set(signed) == set(keys) - {"manifest.json", "manifest.sig"}  # every stored file is covered
    assert "python_model.pkl" not in signed and any(k.endswith("pyfunc_model.py") for k in signed)
    # The models-from-code wrapper loads and predicts through MLflow's own loader.
    model = mlflow.pyfunc.load_model(f"models:/{registry.model_name()}/{fresh_version}")
    out = model.predict(pd.DataFrame({"text": ["A moving, beautifully acted film: the best of the year."]}))
    assert out["label"].tolist() == ["positive"]


@pytest.fixture
def tampered(fresh_version: int) -> Iterator[tuple[int, str]]:
    """model.onnx of the fresh version with one byte changed in the bucket; restored afterwards."""
    keys = _stored_keys(fresh_version)
    rel = next(k for k in keys if k.endswith("/model.onnx"))
    s3 = _s3()
    original = s3.get_object(Bucket=contracts.ARTIFACT_BUCKET, Key=keys[rel])["Body"].read()
    changed = bytes([original[0] ^ 0xFF]) + original[1:]
    s3.put_object(Bucket=contracts.ARTIFACT_BUCKET, Key=keys[rel], Body=changed)
    try:
        yield fresh_version, rel
    finally:
        s3.put_object(Bucket=contracts.ARTIFACT_BUCKET, Key=keys[rel], Body=original)


def test_a_changed_byte_is_refused_by_download_and_gate(tampered: tuple[int, str], tmp_path: Path) -> None:
    version, rel = tampered
    with pytest.raises(registry.RegistryError) as err:
        registry.download_version(version, cache_root=tmp_path)
    said = str(err.value)
    assert f"{rel} changed" in said and "re-register" in said and f"v{version}" in said
    assert not (tmp_path / registry.model_name() / str(version)).exists()  # nothing refused is left to load
    gate = mlp("model", "gate", str(version), check=False, extra_env={"MLP_MODEL_CACHE": str(tmp_path / "gate")})
    assert gate.returncode != 0
    assert f"{rel} changed" in gate.stdout + gate.stderr


def test_the_model_server_never_gets_ready_on_a_changed_artifact(tampered: tuple[int, str], tmp_path: Path) -> None:
    from core import env
    from infra.local.model_servers import model_server_program
    from infra.local.registry_auth import password
    from infra.local.s3 import credentials

    version, rel = tampered
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    program = model_server_program(version, port)
    key, secret = credentials()
    server_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")},
        **program.env,
        env.MODEL_CACHE.name: str(tmp_path),
        "BENTOML_HOME": str(tmp_path / "bentoml"),
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        contracts.MLFLOW_PASSWORD_VAR: password(contracts.REGISTRY_MODEL_SERVER),
    }
    log = tmp_path / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(program.command, cwd=program.cwd, env=server_env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and f"{rel} changed" not in log.read_text() and proc.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                assert ready.status_code != 200, "the server got ready serving a changed artifact"
            except httpx.TransportError:
                pass
            time.sleep(1)
        text = log.read_text()
        assert f"{rel} changed" in text and "re-register" in text, text[-3000:]
        with contextlib.suppress(httpx.TransportError):  # not listening at all is not ready either
            assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code != 200
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_a_manifest_signed_with_another_key_is_refused(fresh_version: int, tmp_path: Path) -> None:
    """Whoever rewrites the files and the manifest but lacks the signing key is refused at the signature."""
    keys = _stored_keys(fresh_version)
    s3 = _s3()
    originals = {
        name: s3.get_object(Bucket=contracts.ARTIFACT_BUCKET, Key=keys[name])["Body"].read()
        for name in ("manifest.json", "manifest.sig")
    }
    other = manifest.new_private_key_pem()
    from cryptography.hazmat.primitives import serialization

    forged = originals["manifest.json"]
    signature = serialization.load_pem_private_key(other.encode(), None).sign(forged)  # type: ignore[call-arg,union-attr]
    try:
        s3.put_object(Bucket=contracts.ARTIFACT_BUCKET, Key=keys["manifest.sig"], Body=base64.b64encode(signature))
        with pytest.raises(registry.RegistryError, match="signed with another key"):
            registry.download_version(fresh_version, cache_root=tmp_path)
    finally:
        for name, body in originals.items():
            s3.put_object(Bucket=contracts.ARTIFACT_BUCKET, Key=keys[name], Body=body)
    assert registry.download_version(fresh_version, cache_root=tmp_path / "after").is_dir()  # restored: verifies
