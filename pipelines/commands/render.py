"""`mlp render` commands: cluster manifests from the policy."""

from __future__ import annotations

from pathlib import Path

import typer

from core import images
from pipelines.release.weights import WeightsError, parse_weights

app = typer.Typer(no_args_is_help=True)

# Example inputs: a fork sets its real image, role and URIs (infra outputs) on the command line or in CI.
DEFAULT_REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
DEFAULT_ROLE_ARN = "arn:aws:iam::123456789012:role/mlp-model-server"
DEFAULT_MLFLOW = "http://mlflow.mlflow.svc.cluster.local:5000"
DEFAULT_INFERENCE_LOG_BUCKET = "mlp-dev-inference-logs-123456789012"  # infra/stacks/data.py names it per account


def parse_versions(text: str) -> dict[int, int]:
    """`3=90,4=10` -> {3: 90, 4: 10} (the shared VERSION=PERCENT parser, comma-separated here)."""
    try:
        return parse_weights(filter(None, (p.strip() for p in text.split(","))))
    except WeightsError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _pairs(values: list[str], option: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        name, sep, digest = value.partition("=")
        if not sep or not name or not digest:
            raise typer.BadParameter(f"{value!r}: expected IMAGE=sha256:<hex>", param_hint=option)
        pairs[name] = digest
    return pairs


@app.command("k8s")
def k8s(
    out: Path = typer.Option(Path("build/k8s"), help="Output folder: one YAML file per concern"),
    model: str | None = typer.Option(
        None, "--model", help="Catalogue model (policy.yaml models) to render; default: release.default_model"
    ),
    versions: str = typer.Option("1=100", help="Live versions and weights, e.g. 3=90,4=10"),
    gpu: bool = typer.Option(False, "--gpu", help="GPU node group variant of the model servers"),
    mode: str = typer.Option("deployments", help="deployments | rollout (Argo Rollouts canary)"),
    image_repository: str | None = typer.Option(
        None, help="The model server's repository (`.../model-server`, with --gpu `.../model-server-gpu`)"
    ),
    image_tag: str = typer.Option("dev", help="Immutable tag (CI uses the git SHA)"),
    image_digest: str | None = typer.Option(None, help="sha256:<hex> of the pushed image: pods run it by digest"),
    sibling_digest: list[str] = typer.Option(
        [], help="IMAGE=sha256:<hex> of another pushed image (drift-job, webhook-receiver): run by digest; repeatable"
    ),
    irsa_role_arn: str = typer.Option(DEFAULT_ROLE_ARN),
    artifact_public_key: str | None = typer.Option(
        None,
        help="The artifact-signing key's public half (`aws kms get-public-key --key-id <data stack output "
        "artifact_signing_key_arn> --query PublicKey --output text`): rendered into the ConfigMap the pods verify with",
    ),
    inference_log_bucket: str = typer.Option(
        DEFAULT_INFERENCE_LOG_BUCKET, help="The environment's inference-log bucket (data stack output)"
    ),
    mlflow_tracking_uri: str = typer.Option(DEFAULT_MLFLOW),
    hostname: str = typer.Option("models.example.com"),
    github_repository: str = typer.Option(
        "", help="owner/name: also render the registry-webhook receiver, which dispatches releases to this repository"
    ),
    validate: bool = typer.Option(True, help="Schema-check every manifest before writing"),
) -> None:
    """Render one catalogue model's cluster manifests (serving, gateway, release, scaling, monitoring) and the
    platform-wide objects beside them from policy.yaml: one folder per model, applied one after the other."""
    from pydantic import ValidationError

    from core.policy import policy
    from modules.k8s import GatewayProps, RenderProps, ServingProps, WebhookProps, render_all, write
    from modules.k8s.validate import ManifestInvalid, check

    try:
        name = model or policy().release.default_model
        policy().model(name)  # a name not in the catalogue is a usage error naming the catalogue
        props = RenderProps(
            model_name=name,
            weights=parse_versions(versions),
            mode=mode,  # pydantic checks the literal
            serving=ServingProps(
                image_repository=image_repository
                or f"{DEFAULT_REGISTRY}/{images.repository('mlp-dev', images.model_server(gpu))}",
                image_tag=image_tag,
                image_digest=image_digest,
                sibling_digests=_pairs(sibling_digest, "--sibling-digest"),
                irsa_role_arn=irsa_role_arn,
                artifact_public_key=artifact_public_key,
                inference_log_bucket=inference_log_bucket,
                mlflow_tracking_uri=mlflow_tracking_uri,
                gpu=gpu,
            ),
            gateway=GatewayProps(hostname=hostname),
            webhook=WebhookProps(github_repository=github_repository) if github_repository else None,
        )
        rendered = render_all(props)
    except (ValidationError, ValueError) as exc:  # ValidationError is a ValueError: both are the caller's input
        raise typer.BadParameter(str(exc)) from exc
    if validate:
        try:
            check(rendered)
        except ManifestInvalid as exc:
            typer.secho(str(exc), fg="red", err=True)
            raise typer.Exit(1) from exc
    paths = write(rendered, out)
    count = sum(len(m) for m in rendered.values())
    typer.echo(f"wrote {count} manifests to {len(paths)} files in {out}" + (" (schema-valid)" if validate else ""))


@app.command("retrain-job")
def retrain_job(
    parent: int = typer.Option(..., "--from", help="The version that drifted: the retraining's parent"),
    image: str = typer.Option(..., help="The drift-job image, by tag or digest (it runs the retraining too)"),
    signing_kms_key: str = typer.Option(..., help="The artifact-signing KMS key's ARN or alias"),
    artifact_public_key: str = typer.Option(..., help="Its public half (base64 DER): verifies the parent it reads"),
    alert_fingerprint: str = typer.Option("", help="The drift alert's fingerprint (empty: a manual retraining)"),
    drift_score: str = typer.Option("", help="The drift alert's score"),
    mlflow_tracking_uri: str = typer.Option(DEFAULT_MLFLOW),
    candidate: bool = typer.Option(True, help="Point the candidate alias at the new version (starts its release)"),
    validate: bool = typer.Option(True, help="Schema-check the manifest before printing it"),
) -> None:
    """Print the retraining Job (YAML) for one drifted version: `... | kubectl apply -f -` (model-retrain.yml)."""
    from pydantic import ValidationError

    from core.policy import policy
    from modules.k8s.render import to_yaml
    from modules.k8s.retrain import RetrainJobProps
    from modules.k8s.retrain import retrain_job as render_job
    from modules.k8s.validate import ManifestInvalid, check

    try:
        props = RetrainJobProps(
            image=image,
            model_name=policy().release.default_model,
            parent_version=parent,
            trigger="drift" if alert_fingerprint else "manual",
            alert_fingerprint=alert_fingerprint,
            drift_score=drift_score,
            mlflow_tracking_uri=mlflow_tracking_uri,
            signing_kms_key=signing_kms_key,
            artifact_public_key=artifact_public_key,
            candidate=candidate,
        )
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from exc
    job = render_job(props)
    if validate:
        try:
            check({"retrain": [job]})
        except ManifestInvalid as exc:
            typer.secho(str(exc), fg="red", err=True)
            raise typer.Exit(1) from exc
    typer.echo(to_yaml([job]), nl=False)
