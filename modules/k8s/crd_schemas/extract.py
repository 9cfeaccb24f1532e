"""Extract the served version's openAPIV3Schema from a full CRD YAML into this folder (descriptions and status
dropped), for replacing a vendored subset by the complete upstream schema.

    python -m modules.k8s.crd_schemas.extract rollout-crd.yaml --repo argoproj/argo-rollouts --ref v1.8.3
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).parent


def _strip(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def extract(crd: dict[str, Any], version: str | None = None) -> tuple[str, dict[str, Any]]:
    spec = crd["spec"]
    versions = [v for v in spec["versions"] if v.get("served")]
    chosen = next((v for v in versions if v["name"] == version), None) if version else None
    chosen = chosen or next((v for v in versions if v.get("storage")), versions[0])
    schema = _strip(chosen["schema"]["openAPIV3Schema"])
    schema.get("properties", {}).pop("status", None)
    return f"{spec['group']}_{chosen['name']}_{spec['names']['kind']}.json", schema


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("crd", type=Path)
    ap.add_argument("--version")
    ap.add_argument("--repo", default="")
    ap.add_argument("--ref", default="", help="tag or commit the file came from")
    args = ap.parse_args()
    for doc in yaml.safe_load_all(args.crd.read_text()):
        if not doc or doc.get("kind") != "CustomResourceDefinition":
            continue
        name, schema = extract(doc, args.version)
        schema = {
            "x-mlp-source": {"repo": args.repo, "path": args.crd.name, "commit": args.ref, "subset": False},
            **schema,
        }
        (HERE / name).write_text(json.dumps(schema, indent=1) + "\n")
        print(f"wrote {HERE / name}: record it in SOURCES.md")


if __name__ == "__main__":
    main()
