"""Every image of the cluster, built from the repository with podman: unprivileged, labelled with the commit, no
build tools, its entry point importable on a read-only root without network, and an unchanged tree rebuilds
nothing.

Marked `integration` (it runs podman; `make rehearse` selects it) but needs no local server: it sits with the other
image tests, so under `make test` the images are built on the worker beside the integration suite, and the
rehearsals there find them built (`build` takes a machine-wide lock, so nothing is built twice)."""

from __future__ import annotations

import json
import re

import pytest

from infra.containers.images import REHEARSED, ImageSpec, build
from infra.containers.podman import podman

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("spec", REHEARSED, ids=lambda s: s.name)
def test_image_runs_its_entry_point_unprivileged_without_build_tools(spec: ImageSpec) -> None:
    image = build(spec)
    info = json.loads(podman("image", "inspect", image.ref))[0]
    assert info["Config"]["User"] == "10001:10001"
    assert re.fullmatch(r"[0-9a-f]{40}", info["Config"]["Labels"]["org.opencontainers.image.revision"])
    run = ["run", "--rm", "--network", "none", "--read-only", "--entrypoint", "sh", image.ref, "-c"]
    found = podman(*run, "for t in gcc cc make pip pip3; do command -v $t || true; done")
    assert found.strip() == "", f"build tools in {spec.name}: {found}"
    for entry in spec.entries:
        imported = podman(*run, f"python -c 'import {entry}; print(\"ok\")'")
        assert imported.strip().endswith("ok"), (entry, imported)
    assert build(spec).built is False, "an unchanged tree rebuilds nothing"
