"""cdktn entry point (`cdktf.json` runs `python -m infra.main` from the repository root)."""

from __future__ import annotations

from core import env
from infra.app import build_app


def main() -> None:
    # MLP_ENVS=dev limits a deploy to one environment; default: all of them.
    envs = [e for e in env.ENVS.get() if e] or None
    app = build_app(envs) if envs else build_app()
    app.synth()


if __name__ == "__main__":
    main()
