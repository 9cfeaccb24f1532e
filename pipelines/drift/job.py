"""The drift check as the cluster runs it: `python -m pipelines.drift.job`, the command of the drift CronJob.

The same `check_version` as `mlp drift check`, with a pod's settings: the model, bucket and Pushgateway from the
rendered env (required: a job that silently checks a default bucket would report "insufficient" forever), S3 through
the default AWS credential chain (the pod's IRSA role), and every file in the pod's scratch folder (`TMPDIR`, an
`emptyDir`), since the image's filesystem is read-only. Exit codes are `mlp drift check`'s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core import env
from core.policy import policy
from pipelines.drift.check import EXIT_ERROR, Workspace, check_version
from pipelines.drift.logs import Window, parse_ts


def aws_s3() -> Any:
    import boto3

    return boto3.client("s3")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipelines.drift.job", description=__doc__.splitlines()[0])
    parser.add_argument("--version", default="", help="version number or alias (default: the champion alias)")
    parser.add_argument("--hours", type=float, default=None, help="window length (default: policy drift.window_hours)")
    parser.add_argument("--since", type=parse_ts, default=None, help="window start, ISO 8601 (overrides --hours)")
    parser.add_argument("--until", type=parse_ts, default=None, help="window end, ISO 8601 (default: now)")
    return parser.parse_args(argv)


def window(args: argparse.Namespace) -> Window:
    until = args.until or datetime.now(UTC)
    if args.since is not None:
        return Window(args.since, until)
    return Window.last_hours(args.hours if args.hours is not None else policy().drift.window_hours, until)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    bucket, pushgateway = env.INFERENCE_LOG_BUCKET.get(), env.PUSHGATEWAY_URL.get()
    if not bucket or not pushgateway:
        unset = [var.name for var in (env.INFERENCE_LOG_BUCKET, env.PUSHGATEWAY_URL) if not var.get()]
        print(f"drift job: {', '.join(unset)} not set; the rendered CronJob sets them", file=sys.stderr)
        return EXIT_ERROR
    return check_version(
        args.version or policy().release.champion_alias,
        window(args),
        s3=aws_s3,
        workspace=Workspace.under(Path(tempfile.gettempdir()) / "mlp-drift"),
        model_name=env.MODEL_NAME.get(),
        bucket=bucket,
        pushgateway=pushgateway,
    )


if __name__ == "__main__":
    raise SystemExit(main())
