"""The retraining Job's entry point (`python -m pipelines.retrain.job`, the drift-job image): the cluster's
`mlp model retrain`, rendered by `mlp render retrain-job` and applied by the model-retrain workflow.

It works in a scratch folder (the pod's emptyDir), reaches MLflow with the credential its env holds (the release
bot's, from its Secret) and signs with the KMS key `MLP_ARTIFACT_SIGNING_KMS_KEY` names. stdout is the retraining
log, one JSON object per line (the last says `registered` or `refused`); progress goes to stderr. Exit 0:
registered; 3: a breaker refused (nothing registered, not a failure); 1: the retraining failed, nothing registered.
No release of the model runs meanwhile: the workflow that starts the Job holds the model's release concurrency group.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.policy import policy
from pipelines.retrain.breakers import RetrainRefused
from pipelines.retrain.run import Workspace, drift_alert, retrain
from services.registry.client import RegistryError

EXIT_REFUSED = 3
SCRATCH = Path("/tmp/retrain")  # the pod's emptyDir


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipelines.retrain.job", description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="parent", required=True, help="Version number or alias to retrain")
    parser.add_argument("--trigger", default="manual", help="What asked for it: manual or drift (lineage)")
    parser.add_argument("--alert-fingerprint", default="", help="The drift alert's fingerprint (trigger drift)")
    parser.add_argument("--drift-score", default="", help="The drift alert's score (trigger drift)")
    parser.add_argument("--candidate", action="store_true", help="Point the candidate alias at the new version")
    parser.add_argument("--scratch", type=Path, default=SCRATCH, help="Where downloads and the build go")
    return parser.parse_args(argv)


def workspace(scratch: Path) -> Workspace:
    return Workspace(
        model_cache=scratch / "models",
        embedding_cache=scratch / "embedding-cache",
        builds=scratch / "builds",
        events=scratch / "retraining.jsonl",
        running_release=lambda: None,  # the workflow's concurrency group (see the module's docstring)
    )


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    try:
        alert = drift_alert(args.trigger, args.alert_fingerprint, args.drift_score)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    space = workspace(args.scratch)
    alias = policy().release.candidate_alias if args.candidate else None
    code = 0
    try:
        retrain(args.parent, "drift" if alert else "manual", alias, lambda m: print(m, file=sys.stderr), space, alert)
    except RetrainRefused as exc:
        print(f"{exc} (runbooks/retraining-refused.md)", file=sys.stderr)
        code = EXIT_REFUSED
    except (RegistryError, RuntimeError, ValueError) as exc:
        print(f"error: {exc}\nNothing was registered.", file=sys.stderr)
        code = 1
    if space.events.exists():
        sys.stdout.write(space.events.read_text())
    return code


if __name__ == "__main__":
    sys.exit(main())
