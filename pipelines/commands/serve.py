"""`mlp serve`: model servers and the gateway of the local runtime.

mlp serve start champion            # a server for the version; the first live version gets 100%
mlp serve start 4 --weight 10       # beside the others: 10% to v4, the rest scaled to 90%
mlp serve weights 3=90 4=10         # move traffic by hand (graceful nginx reload, no server restarts)
mlp serve request "great film" --pin 4
mlp serve list
mlp serve stop 4 --drain 3
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from core import contracts, endpoints
from infra.local.registry_auth import use_identity
from pipelines.release.weights import parse_weights

app = typer.Typer(no_args_is_help=True)


@app.callback()
def _registry_identity() -> None:
    """Fetching and resolving versions only reads the registry."""
    use_identity(contracts.REGISTRY_READER)


err = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]{message}[/red]")
    return typer.Exit(1)


def rebalance(current: dict[int, int], version: int, weight: int) -> dict[int, int]:
    """`version` gets `weight` percent; the others keep their proportions within the rest (integers, sum 100)."""
    if not 0 <= weight <= 100:
        raise ValueError(f"--weight must be 0..100, got {weight}")
    others = {v: w for v, w in current.items() if v != version and w > 0}
    if not others:
        return {version: 100}
    rest, total = 100 - weight, sum(others.values())
    scaled = {v: (w * rest) // total for v, w in others.items()}
    # Hand the rounding remainder to the largest share, so the sum is exactly 100.
    biggest = max(scaled, key=lambda v: (others[v], -v))
    scaled[biggest] += rest - sum(scaled.values())
    return {**scaled, version: weight}


@app.command()
def start(
    version: str = typer.Argument(..., help="Version number or alias (champion, challenger...)"),
    weight: int | None = typer.Option(
        None, help="Percent of traffic for it (others scaled); default: 0, or 100 if first"
    ),
    timeout: float = typer.Option(180, help="Seconds to wait for /readyz"),
) -> None:
    """Start the model server of a version and add it to the gateway."""
    from infra.local import serving

    try:
        number = serving.resolve(version)
        err.print(f"starting the server of v{number} (loads, warms up, then /readyz) ...")
        t0 = time.monotonic()
        server = serving.start_model_server(number, wait=True, timeout=timeout)
        if weight is not None and serving.current_weights().get(number, 0) != weight:
            serving.set_weights(rebalance(serving.current_weights(), number, weight))
    except (serving.ModelServerError, serving.GatewayError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    err.print(f"v{number} ready on {server.url} ({server.program}) in {time.monotonic() - t0:.1f}s")
    typer.echo(f"v{number} serving on {server.url}; weights {_fmt(serving.current_weights())}")


@app.command()
def stop(
    version: int = typer.Argument(..., help="Version number"),
    drain: float = typer.Option(0, help="Seconds to let in-flight requests finish after it leaves the gateway"),
) -> None:
    """Stop a version's server (refused while it still receives traffic beside another version)."""
    from infra.local import serving

    try:
        serving.stop_model_server(version, drain_seconds=drain)
    except (serving.ModelServerError, serving.GatewayError) as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"v{version} stopped; weights {_fmt(serving.current_weights())}")


@app.command("list")
def list_() -> None:
    """Live versions: port, weight, readiness; and which one is stable."""
    from infra.local import serving

    rows = serving.status()
    table = Table("version", "port", "program", "weight", "ready", "stable")
    for row in rows:
        table.add_row(
            str(row.server.version),
            str(row.server.port),
            row.server.program,
            f"{row.weight}%",
            "[green]yes[/green]" if row.ready else "[red]no[/red]",
            "yes" if row.stable else "",
        )
    Console().print(table)
    if not rows:
        err.print("No model server is running: `mlp serve start VERSION`.")


@app.command()
def weights(pairs: list[str] = typer.Argument(None, help="VERSION=PERCENT pairs summing to 100; none: show")) -> None:
    """Set the traffic split by hand (graceful reload; no server restarts)."""
    from infra.local import serving

    if pairs:
        try:
            serving.set_weights(parse_weights(pairs))
        except (ValueError, serving.GatewayError) as exc:
            raise _fail(str(exc)) from exc
    typer.echo(json.dumps({"weights": serving.current_weights(), "stable": serving.stable_version()}))


@app.command()
def request(
    text: list[str] = typer.Argument(..., help="One or more texts"),
    key: str | None = typer.Option(
        None, help="API key name (policy gateway.api_keys; default: demo, or the internal key with --pin)"
    ),
    pin: int | None = typer.Option(None, help="Route to this version only (pin header; internal keys only)"),
) -> None:
    """Send texts through the gateway; print the response and the version that answered."""
    import httpx

    from core.policy import policy
    from infra.local import tls
    from infra.local.secrets import api_key

    keys = {k.name: k for k in policy().gateway.api_keys}
    name = key or (policy().gateway.internal_key() if pin is not None else "demo")
    if name not in keys:
        raise _fail(f"--key {name!r} is not a gateway key; policy gateway.api_keys has {', '.join(keys)}")
    if pin is not None and not keys[name].internal:
        raise _fail(f"--pin needs an internal key (policy gateway.api_keys[].internal); {name!r} is not one")
    headers = {contracts.API_KEY_HEADER: api_key(name)}
    if pin is not None:
        headers[contracts.PIN_HEADER] = str(pin)
    url = f"{endpoints.gateway_url()}/classify"
    try:
        resp = httpx.post(url, json={"texts": text}, headers=headers, timeout=30, verify=tls.client_context())
    except httpx.HTTPError as exc:
        raise _fail(f"the gateway at {url} did not answer ({exc}); run `mlp env up`") from exc
    answered = resp.headers.get(contracts.VERSION_HEADER, "none")
    typer.echo(json.dumps(resp.json() if _is_json(resp) else resp.text, indent=2))
    typer.echo(f"HTTP {resp.status_code}; answered by v{answered}")
    if resp.status_code >= 400:
        raise typer.Exit(1)


def _is_json(resp: object) -> bool:
    try:
        resp.json()  # type: ignore[attr-defined]
    except ValueError:
        return False
    return True


def _fmt(weights: dict[int, int]) -> str:
    return ", ".join(f"v{v}={w}%" for v, w in sorted(weights.items())) or "none (no traffic)"


generator_app = typer.Typer(no_args_is_help=True, help="Generate servers: one per catalogue model of task generate.")
app.add_typer(generator_app, name="generator")


@generator_app.command("start")
def generator_start(
    version: str | None = typer.Argument(None, help="Registered version of the model: a number or an alias"),
    model: str = typer.Option("gemma3-270m", help="Catalogue model of task generate"),
    path: Path | None = typer.Option(None, help="Serve this packaged folder instead of a registered version"),
) -> None:
    """Start the model's generate server (a registered version, fetched and verified; or a packaged folder), wait
    until it is ready, then route `/v1/models/<model>/generate` to it."""
    from infra.local import generators, serving
    from services.registry.client import RegistryError, resolve_version

    if (version is None) == (path is None):
        raise _fail("name a registered version (`mlp serve generator start 1`) or a folder (`--path`), one of them")
    try:
        number = resolve_version(version, model) if version is not None else 0
        server = serving.start_catalogue_server(model, number, path)
    except (generators.GeneratorError, RegistryError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"{model} v{server.version} ready on {server.url}; routed at {endpoints.gateway_url()}{server.route}")


@app.command()
def generate(
    prompt: str = typer.Argument(..., help="Text to continue"),
    model: str = typer.Option("gemma3-270m", help="Catalogue model of task generate"),
    max_tokens: int | None = typer.Option(None, help="Most tokens to generate (default: the policy's)"),
    key: str = typer.Option("demo", help="API key name (policy gateway.api_keys)"),
) -> None:
    """Send a prompt through the gateway to `/v1/models/<model>/generate`; print the answer and how it was made."""
    import httpx

    from infra.local import tls
    from infra.local.secrets import api_key

    url = f"{endpoints.gateway_url()}{contracts.model_route(model, 'generate')}"
    body: dict[str, object] = {"prompt": prompt, **({"max_tokens": max_tokens} if max_tokens else {})}
    try:
        resp = httpx.post(
            url, json=body, headers={contracts.API_KEY_HEADER: api_key(key)}, timeout=60, verify=tls.client_context()
        )
    except httpx.HTTPError as exc:
        raise _fail(f"the gateway at {url} did not answer ({exc}); run `mlp env up`") from exc
    if resp.status_code >= 400:
        hint = " (is it served? `mlp serve generator start`)" if resp.status_code == 404 else ""
        raise _fail(f"HTTP {resp.status_code} from {url}: {resp.text.strip()[:500]}{hint}")
    out = resp.json()
    typer.echo(f"{prompt}[{out['text']}]")
    typer.echo(
        f"{out['model_name']} v{out['model_version']}: {out['usage']['completion_tokens']} tokens "
        f"({out['finish_reason']}), first after {out['ttft_ms']:.0f} ms, {out['tokens_per_second']:.1f} tokens/s"
    )


@generator_app.command("stop")
def generator_stop(model: str = typer.Option("gemma3-270m", help="Catalogue model of task generate")) -> None:
    """Unroute the model's generate server, then stop it."""
    from infra.local import generators, serving

    try:
        serving.stop_catalogue_server(model)
    except generators.GeneratorError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"{model}: unrouted and stopped")
