"""`mlp cost` commands."""

from __future__ import annotations

import typer

from core.policy import policy
from infra.local.paths import build_dir

app = typer.Typer(no_args_is_help=True)

VARIANTS = ("int8", "fp32")  # served variants, cheapest first


@app.command("report")
def report(
    variant: str = typer.Option("", help="Packaged variant to measure (default: first of int8, fp32 present)"),
    seconds: float = typer.Option(2.0, min=0.2, help="Measurement time per batch size"),
    busy_hours: float = typer.Option(2.0, min=0, max=24, help="Scale-to-zero scenario: busy hours per day"),
    bursts: float = typer.Option(12.0, min=0, help="Scale-to-zero scenario: bursts (cold starts) per day"),
) -> None:
    """Cost per 1,000 inferences on CPU (measured here) and GPU (published estimates) -> build/reports/cost.*"""
    from pipelines.cost import measure
    from pipelines.cost import report as rep
    from pipelines.data import load_split

    p = policy()
    models = build_dir() / "models"
    names = [variant] if variant else [v for v in VARIANTS if (models / v / "model.onnx").exists()]
    if not names or not (models / names[0] / "model.onnx").exists():
        typer.secho(
            f"no packaged model in {models} ({', '.join(VARIANTS)}): run `mlp model package` first", fg="red", err=True
        )
        raise typer.Exit(1)
    model_dir = models / names[0]
    texts = [e.text for e in load_split("heldout")][:500]
    cpu = measure.from_bench_file(build_dir() / "reports" / "bench-serving.json")
    if cpu is None:
        typer.echo(f"measuring {names[0]} with ONNX Runtime ({seconds:g} s per batch size)...")
        cpu = measure.measure_onnx(
            model_dir, texts, p, seconds_per_size=seconds, progress=lambda m: typer.echo("  " + m)
        )
    else:
        typer.echo(f"CPU throughput from {cpu.source}")
    cold = rep.measure_cold_start(model_dir, texts[0])
    result = rep.build(p, cpu, cold, rep.ScenarioInputs(busy_hours_per_day=busy_hours, bursts_per_day=bursts))
    js, md = rep.write(result, build_dir() / "reports")
    typer.echo(f"CPU: ${result['cpu']['usd_per_1k']:.6f} per 1,000 inferences on {result['cpu']['instance']}")
    for g in result["gpu"]:
        typer.echo(f"GPU {g['instance']}: ${g['usd_per_1k']:.6f} per 1,000 ({rep.GPU_LABEL})")
    typer.echo(f"wrote {js} and {md}")
