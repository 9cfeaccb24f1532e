"""Synthesize every stack of every environment once per session; tests read the JSON."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.app import build_app
from infra.config import ENVIRONMENTS, EnvConfig, load_env
from infra.stacks.base import LAYERS, stack_name


@dataclass(frozen=True)
class Synth:
    outdir: Path
    raw: dict[str, str]  # stack name -> cdk.tf.json text (for cdktn.Testing matchers)

    def stack(self, env: str, layer: str) -> dict[str, Any]:
        return json.loads(self.raw[stack_name(load_env(env), layer)])

    def text(self, env: str, layer: str) -> str:
        return self.raw[stack_name(load_env(env), layer)]

    def resources(self, env: str, layer: str, rtype: str) -> dict[str, dict[str, Any]]:
        return self.stack(env, layer).get("resource", {}).get(rtype, {})


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    outdir = tmp_path_factory.mktemp("cdktf.out")
    build_app(ENVIRONMENTS, outdir).synth()
    raw = {p.parent.name: p.read_text() for p in (outdir / "stacks").glob("*/cdk.tf.json")}
    expected = {stack_name(load_env(e), layer) for e in ENVIRONMENTS for layer in LAYERS}
    assert set(raw) == expected, f"synthesized {sorted(raw)}, expected {sorted(expected)}"
    return Synth(outdir=outdir, raw=raw)


@pytest.fixture(params=ENVIRONMENTS)
def env(request: pytest.FixtureRequest) -> EnvConfig:
    return load_env(request.param)


def only(resources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    assert len(resources) == 1, f"expected exactly one, got {sorted(resources)}"
    return next(iter(resources.values()))


def policy(doc: str) -> dict[str, Any]:
    """Parse a synthesized IAM policy. Interpolations like ${replace(x, "https://", "")} hold HCL quotes that are
    valid for Terraform (it evaluates them first) but not JSON: swap them for single quotes to read the shape."""
    readable = re.sub(r"\$\{([^{}]*)\}", lambda m: "${" + m.group(1).replace('"', "'") + "}", doc)
    parsed: dict[str, Any] = json.loads(readable)
    return parsed
