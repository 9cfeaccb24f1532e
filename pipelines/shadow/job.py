"""The shadow comparison as the cluster runs it: `python -m pipelines.shadow.job`, the Job a release's
`<model>-shadow-compare` AnalysisTemplate starts after the shadow phase (modules/k8s/release.py).

It reads both versions' inference logs over the window (S3 through the pod's IRSA role, as the drift job does),
pairs them by request id, and pushes the measures to the Pushgateway for the `<model>-shadow-quality` AnalysisTemplate
to judge in Prometheus: the thresholds are applied there, from the same policy, so this job succeeds whenever it
measured, whatever the candidate answered. It also pushes `mlp_release_quality_failed` (the alert's input).

The window ends `serving.inference_log_flush_seconds` (+2 s) before now: the mirror is still on while the job runs,
and the newest records of either server may not have landed yet.

Exit codes: 0 measured and pushed (too few pairs included: that is for the analysis to call inconclusive), 2 an
error (a setting missing, S3 or the Pushgateway unreachable).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from core import env
from core.policy import policy
from pipelines.drift.logs import ReadStats, Window
from pipelines.shadow.compare import QualityThresholds, compare, judge, paired
from pipelines.shadow.export import push_quality, quality_numbers
from pipelines.shadow.logs import read_answers

EXIT_OK, EXIT_ERROR = 0, 2


def aws_s3() -> Any:
    import boto3

    return boto3.client("s3")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipelines.shadow.job", description=__doc__.splitlines()[0])
    parser.add_argument("--candidate", type=int, required=True, help="the candidate's version (the canary)")
    parser.add_argument("--stable", type=int, required=True, help="the stable version the client was answered by")
    parser.add_argument("--window-seconds", type=int, required=True, help="how far back the pairs are read")
    return parser.parse_args(argv)


def window(window_seconds: int, now: datetime) -> Window:
    until = now - timedelta(seconds=policy().serving.inference_log_flush_seconds + 2)
    return Window(until - timedelta(seconds=window_seconds), until)


def main(argv: Sequence[str] | None = None, now: datetime | None = None) -> int:
    args = parse_args(argv)
    model, bucket, pushgateway = env.MODEL_NAME.get(), env.INFERENCE_LOG_BUCKET.get(), env.PUSHGATEWAY_URL.get()
    settings = ((env.MODEL_NAME, model), (env.INFERENCE_LOG_BUCKET, bucket), (env.PUSHGATEWAY_URL, pushgateway))
    if not (model and bucket and pushgateway):
        unset = [var.name for var, value in settings if not value]
        print(f"shadow comparison: {', '.join(unset)} not set; the AnalysisTemplate sets them", file=sys.stderr)
        return EXIT_ERROR
    try:
        quality = policy().for_model(model).canary.quality
    except ValueError as exc:  # not in the catalogue: the template was rendered from another policy
        print(f"shadow comparison: {exc}", file=sys.stderr)
        return EXIT_ERROR
    span = window(args.window_seconds, now or datetime.now(UTC))
    stats = {"stable": ReadStats(), "candidate": ReadStats()}
    try:
        s3 = aws_s3()
        pairs = paired(
            read_answers(s3, bucket, model, args.stable, span, stats["stable"]),
            read_answers(s3, bucket, model, args.candidate, span, stats["candidate"]),
        )
    except Exception as exc:  # botocore's errors have no common base worth naming here
        print(f"shadow comparison: could not read the inference logs in s3://{bucket}: {exc!r}", file=sys.stderr)
        return EXIT_ERROR
    comparison = compare(pairs)
    judgement = judge(comparison, QualityThresholds.from_policy(quality))
    numbers = quality_numbers(comparison, quality.min_pairs_per_label)
    measures = {k: v for k, v in numbers.items() if k != "label_shift_p_value"}
    report = {
        "model_name": model,
        "candidate": args.candidate,
        "stable": args.stable,
        "window": [span.since.isoformat(timespec="seconds"), span.until.isoformat(timespec="seconds")],
        "records": {side: s.records for side, s in stats.items()},
        "malformed": {side: s.malformed for side, s in stats.items()},
        "verdict": judgement.verdict.value,
        "reasons": judgement.reasons,
        **numbers,
    }
    print(json.dumps(report, sort_keys=True))
    try:
        push_quality(pushgateway, model, args.candidate, args.stable, measures, failed=judgement.verdict == "fail")
    except OSError as exc:
        print(f"shadow comparison: could not push to the Pushgateway at {pushgateway}: {exc!r}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
