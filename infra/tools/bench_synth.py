"""`make bench`: how long synthesizing every stack of every environment takes (imports counted separately)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path


def main() -> None:
    start = time.perf_counter()
    from infra.app import build_app  # the provider bindings are the slow part of a cold start
    from infra.config import ENVIRONMENTS

    imported = time.perf_counter()
    runs = []
    for _ in range(3):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            build_app(ENVIRONMENTS, Path(tmp)).synth()
            runs.append(time.perf_counter() - t0)
            stacks = len(list((Path(tmp) / "stacks").glob("*/cdk.tf.json")))
    print(
        f"synth bench: import {imported - start:.1f}s; synth of {stacks} stacks: "
        f"best {min(runs):.2f}s, median {sorted(runs)[1]:.2f}s over {len(runs)} runs"
    )


if __name__ == "__main__":
    main()
