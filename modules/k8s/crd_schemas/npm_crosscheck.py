"""Cross-check the rendered custom resources against the @kubernetes-models packages on npm (maintainer tool).

The vendored schemas in this folder are what the tests use (no npm at test time). This tool is the second
opinion from *published* artifacts: it installs the pinned packages with npm into a scratch dir, then
1. runs each package's own validator (types, enums, patterns, bounds, required fields) on every rendered CR, and
2. checks every field name we render exists in the package's API types (`*.d.ts` property names): those
   validators accept unknown fields, so a misspelt or too-new field would otherwise pass.
Why not vendor these packages' schemas: they ship ajv-*compiled* validator code generated from the upstream Go
API types, not JSON schemas (see SOURCES.md).

    python -m modules.k8s.crd_schemas.npm_crosscheck [--workdir /tmp/mlp-npm-crosscheck]

Needs `npm` and `node` (>= 20). Exit 1 when any manifest fails either check.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from modules.k8s import RenderProps, ServingProps, render_all

HERE = Path(__file__).parent

# npm package@version -> upstream Go module it was generated from (go.mod of kubernetes-models-ts
# third-party/<pkg> at commit 03786a462bddb7a5f6bc45a60e8df96cd5fc7346).
PACKAGES = {
    "@kubernetes-models/argo-rollouts@2.0.0": "github.com/argoproj/argo-rollouts v1.9.0",
    "@kubernetes-models/keda@2.0.0": "github.com/kedacore/keda/v2 v2.19.0",
    "@kubernetes-models/gateway-api@2.0.0": "sigs.k8s.io/gateway-api v1.5.1",
    "@kubernetes-models/envoy-gateway@2.0.0": "github.com/envoyproxy/gateway v1.7.3",
    "@kubernetes-models/prometheus-operator@6.0.0": "github.com/prometheus-operator/.../pkg/apis/monitoring v0.91.0",
}
# API group -> packages whose types describe it (+ the shared Kubernetes/apimachinery types for pod templates etc.).
GROUP_PACKAGES = {
    "argoproj.io": ["argo-rollouts"],
    "keda.sh": ["keda"],
    "gateway.networking.k8s.io": ["gateway-api"],
    "gateway.envoyproxy.io": ["envoy-gateway", "gateway-api"],
    "monitoring.coreos.com": ["prometheus-operator"],
}
SHARED = ["@kubernetes-models/apimachinery", "kubernetes-models"]
# Map-typed fields: their keys are data, not field names.
MAP_FIELDS = {"labels", "annotations", "matchLabels", "nodeSelector", "limits", "requests", "plugins"}
MAP_PATHS = {("spec", "triggers", "metadata")}  # KEDA trigger metadata is map[string]string
PROP = re.compile(r'^\s*"([^"]+)"\??:', re.MULTILINE)


def sample_manifests() -> list[dict[str, Any]]:
    """Every distinct CR the renderer emits, across both modes and CPU/GPU."""
    seen: dict[str, dict[str, Any]] = {}
    for mode in ("deployments", "rollout"):
        for gpu in (False, True):
            serving = ServingProps(
                image_repository="123456789012.dkr.ecr.us-east-1.amazonaws.com/mlp-model-server",
                image_tag="0a1b2c3",
                mlflow_tracking_uri="http://mlflow.mlflow.svc:5000",
                irsa_role_arn="arn:aws:iam::123456789012:role/mlp-model-server",
                inference_log_bucket="mlp-dev-inference-logs-123456789012",
                gpu=gpu,
            )
            props = RenderProps(
                model_name="review-polarity-classifier", weights={3: 90, 4: 10}, mode=mode, serving=serving
            )
            for manifests in render_all(props).values():
                for m in manifests:
                    if "." in m["apiVersion"].split("/")[0] and m["kind"] != "NetworkPolicy":
                        seen[json.dumps(m, sort_keys=True)] = m
    return list(seen.values())


def install(workdir: Path) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    if not (workdir / "package.json").exists():
        (workdir / "package.json").write_text('{"name": "mlp-crosscheck", "private": true, "type": "module"}\n')
    print(f"installing {', '.join(PACKAGES)} into {workdir} ...", flush=True)
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", *PACKAGES], cwd=workdir, check=True)


def field_names(workdir: Path, packages: list[str]) -> set[str]:
    names: set[str] = set()
    for pkg in packages:
        for f in (workdir / "node_modules" / pkg).rglob("*.d.ts"):
            names |= set(PROP.findall(f.read_text()))
    return names


def unknown_fields(node: Any, known: set[str], path: tuple[str, ...] = ()) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key not in known:
                found.append(".".join((*path, key)))
            plain = tuple(p for p in (*path, key) if not p.isdigit())
            if key in MAP_FIELDS or plain in MAP_PATHS:
                continue
            found.extend(unknown_fields(value, known, (*path, key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(unknown_fields(value, known, (*path, str(i))))
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/mlp-npm-crosscheck"))
    args = ap.parse_args()
    if not shutil.which("npm") or not shutil.which("node"):
        sys.exit("npm and node are required: apt-get install nodejs npm")
    install(args.workdir)
    manifests = sample_manifests()
    (args.workdir / "manifests.json").write_text(json.dumps(manifests))
    # ESM resolves bare package names next to the script, so it runs from the scratch dir.
    shutil.copy(HERE / "crosscheck.mjs", args.workdir / "crosscheck.mjs")
    run = subprocess.run(
        ["node", "crosscheck.mjs", "manifests.json"],
        cwd=args.workdir,
        check=True,
        capture_output=True,
        text=True,
    )
    failed = skipped = 0
    for m, line in zip(manifests, run.stdout.splitlines(), strict=True):
        result = json.loads(line)
        group = m["apiVersion"].split("/")[0]
        label = f"{m['kind']}/{m['metadata']['name']}"
        if result["package"] is None:
            print(f"SKIP {label}: no @kubernetes-models package covers {m['apiVersion']}")
            skipped += 1
            continue
        pkgs = [f"@kubernetes-models/{p}" for p in GROUP_PACKAGES[group]] + SHARED
        unknown = unknown_fields(m, field_names(args.workdir, pkgs))
        ok = result["ok"] and not unknown
        failed += not ok
        notes = [result["error"]] if result["error"] else []
        notes += [f"fields not in the API types: {unknown}"] if unknown else []
        detail = "; ".join(notes)
        print(f"{'OK  ' if ok else 'FAIL'} {label}{': ' + detail if detail else ''}")
    print(f"{len(manifests) - failed - skipped} passed, {failed} failed, {skipped} skipped")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
