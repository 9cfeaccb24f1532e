"""`make synth`: synthesize every stack of every environment into infra/cdktf.out and list them."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from infra.app import DEFAULT_OUTDIR, build_app
from infra.config import ENVIRONMENTS


def synth(outdir: Path = DEFAULT_OUTDIR, environments: tuple[str, ...] = ENVIRONMENTS) -> list[Path]:
    build_app(environments, outdir).synth()
    return sorted(p.parent for p in (outdir / "stacks").glob("*/cdk.tf.json"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--outdir", type=Path, default=DEFAULT_OUTDIR)
    parser.add_argument("--env", action="append", choices=ENVIRONMENTS, help="repeatable; default: all")
    args = parser.parse_args()
    start = time.perf_counter()
    stacks = synth(args.outdir, tuple(args.env or ENVIRONMENTS))
    for stack in stacks:
        print(f"  {stack.name}")
    print(f"synthesized {len(stacks)} stacks into {args.outdir} in {time.perf_counter() - start:.1f}s")


if __name__ == "__main__":
    main()
