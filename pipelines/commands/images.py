"""`mlp images`: the cluster's images built from the repository's Containerfiles with podman (cached by content)."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)


@app.command("build")
def build(
    force: bool = typer.Option(False, "--force", help="Rebuild even when the same content was built"),
    only: list[str] = typer.Option(
        [], "--image", help="Build only this image (repeatable), e.g. --image model-server; default: all"
    ),
) -> None:
    """Build the base image (once) and every image whose content changed; print each reference."""
    from infra.containers.images import IMAGES, build_all
    from infra.containers.podman import PodmanError

    unknown = sorted(set(only) - {spec.name for spec in IMAGES})
    if unknown:
        raise typer.BadParameter(f"unknown image {unknown}; declared: {', '.join(s.name for s in IMAGES)}")
    try:
        for image in build_all([s for s in IMAGES if not only or s.name in only], force=force):
            how = "built" if image.built else "unchanged"
            typer.echo(f"{image.ref}  {how} in {image.seconds:.1f}s, {image.size_bytes / 1e6:.0f} MB")
    except PodmanError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(1) from exc
