"""`make plan`: offline `terraform init`, `validate` and `plan` of every AWS stack of every environment.

No AWS account is reachable here, so each synthesized stack is copied to `build/plan/<stack>/` and planned with an
override file (`zz_offline_override.tf.json`) that changes only what cannot work offline:
- backend -> local (the real one is the S3 state bucket);
- the AWS provider -> fake credentials and `skip_*` flags, pinned to the mirrored hashicorp/aws 5.100.0 (the
  synthesized JSON asks for 6.69.1, the version cdktn-provider-aws 25.x is generated from; the mirror in
  /opt/tf-plugins holds 5.100.0 only; every argument the stacks use exists in both);
- cross-stack inputs (`terraform_remote_state`) -> a local state file holding placeholder outputs, so a layer is
  planned without the layer below it having been applied.
Resources, their arguments and dependencies are exactly the synthesized ones. The report (counts of resources to
create, by type, per stack) goes to `build/reports/infra-plan.json` and `.md`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from infra.app import DEFAULT_OUTDIR
from infra.stacks import AWS_LAYERS

REPO_ROOT = Path(__file__).resolve().parent.parent
PLUGIN_MIRROR = Path("/opt/tf-plugins")
MIRROR_AWS_VERSION = "5.100.0"
PLAN_DIR = REPO_ROOT / "build" / "plan"
REPORT_DIR = REPO_ROOT / "build" / "reports"
OVERRIDE_FILE = "zz_offline_override.tf.json"
REMOTE_OUTPUT = re.compile(r"data\.terraform_remote_state\.([\w-]+)\.outputs\.([\w-]+)")
FAKE_ACCOUNT = "123456789012"
PARALLEL = 2


class OfflinePlanUnavailable(RuntimeError):
    """terraform or the provider mirror is missing: the only reason to skip the offline plan."""


@dataclass
class StackPlan:
    stack: str
    creates: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.creates.values())


def terraform_binary() -> str:
    binary = shutil.which("terraform")
    if not binary:
        raise OfflinePlanUnavailable("terraform is not on PATH (CI installs it with hashicorp/setup-terraform)")
    mirror = PLUGIN_MIRROR / "registry.terraform.io" / "hashicorp" / "aws" / MIRROR_AWS_VERSION
    if not mirror.is_dir():
        raise OfflinePlanUnavailable(f"provider mirror {mirror} is missing: the offline plan needs hashicorp/aws there")
    return binary


def placeholder(output_name: str) -> str:
    """A plausible value for a cross-stack output, by what its name says it is."""
    name = output_name.lower()
    if name.endswith("issuer"):
        return "https://oidc.eks.us-east-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF"
    if name.endswith("arn"):
        return f"arn:aws:iam::{FAKE_ACCOUNT}:role/offline-plan-placeholder"
    if "security_group" in name:
        return "sg-0123456789abcdef0"
    if "subnet" in name:
        return "subnet-0123456789abcdef0"
    if "vpc" in name:
        return "vpc-0123456789abcdef0"
    return "offline-plan-placeholder"


def upstream_outputs(config: dict[str, object]) -> dict[str, dict[str, str]]:
    """Remote-state source -> {output name: placeholder} for every cross-stack value the config reads."""
    remote: dict[str, dict[str, str]] = {}
    for source, output in REMOTE_OUTPUT.findall(json.dumps(config)):
        remote.setdefault(source, {})[output] = placeholder(output)
    return remote


def upstream_state(outputs: dict[str, str]) -> dict[str, object]:
    """A local state file standing in for an upstream layer that was never applied here."""
    return {
        "version": 4,
        "terraform_version": "1.10.0",
        "serial": 1,
        "lineage": "offline-plan",
        "outputs": {k: {"value": v, "type": "string"} for k, v in outputs.items()},
        "resources": [],
    }


def override_for(config: dict[str, object]) -> dict[str, object]:
    remote = upstream_outputs(config)
    override: dict[str, object] = {
        "terraform": {
            "backend": {"local": {"path": "terraform.tfstate"}},
            "required_providers": {"aws": {"source": "hashicorp/aws", "version": MIRROR_AWS_VERSION}},
        },
        "provider": {
            "aws": [
                {
                    "access_key": "offline-plan",
                    "secret_key": "offline-plan",
                    "skip_credentials_validation": True,
                    "skip_requesting_account_id": True,
                    "skip_metadata_api_check": True,
                    "skip_region_validation": True,
                }
            ]
        },
    }
    if remote:
        override["data"] = {
            "terraform_remote_state": {
                source: {"backend": "local", "config": {"path": f"{source}.tfstate"}} for source in remote
            }
        }
    return override


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:2])} failed in {cwd}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc.stdout


def terraform_env(work: Path) -> dict[str, str]:
    rc = work / "terraformrc"
    rc.write_text(
        'provider_installation {\n  filesystem_mirror {\n    path = "%s"\n  }\n}\n' % PLUGIN_MIRROR  # noqa: UP031
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TF_"))}
    cache = work / ".plugin-cache"  # one unpacked provider, symlinked into every stack: init in seconds
    cache.mkdir(exist_ok=True)
    env.update(
        TF_PLUGIN_CACHE_DIR=str(cache),
        TF_CLI_CONFIG_FILE=str(rc),
        TF_IN_AUTOMATION="1",
        CHECKPOINT_DISABLE="1",
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def prepare_stack(terraform: str, stack_dir: Path, work: Path, env: dict[str, str]) -> Path:
    """A copy of the synthesized stack with the offline override and upstream states, initialised."""
    target = work / stack_dir.name
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(stack_dir, target, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", "plan.bin"))
    config = json.loads((target / "cdk.tf.json").read_text())
    (target / OVERRIDE_FILE).write_text(json.dumps(override_for(config), indent=2))
    for source, outputs in upstream_outputs(config).items():
        (target / f"{source}.tfstate").write_text(json.dumps(upstream_state(outputs)))
    _run([terraform, "init", "-input=false", "-no-color"], target, env)
    return target


def plan_stack(terraform: str, target: Path, env: dict[str, str]) -> StackPlan:
    """Validate and plan a prepared stack; count what it would create."""
    start = time.perf_counter()
    _run([terraform, "validate", "-no-color"], target, env)
    _run([terraform, "plan", "-input=false", "-lock=false", "-no-color", "-out=plan.bin"], target, env)
    shown = json.loads(_run([terraform, "show", "-json", "plan.bin"], target, env))
    result = StackPlan(stack=target.name)
    for change in shown.get("resource_changes", []):
        if change.get("mode") == "managed" and "create" in change["change"]["actions"]:
            result.creates[change["type"]] += 1
    result.seconds = time.perf_counter() - start
    return result


def aws_stack_dirs(outdir: Path) -> list[Path]:
    dirs = sorted(p for p in (outdir / "stacks").iterdir() if p.name.rsplit("-", 1)[-1] in AWS_LAYERS)
    if not dirs:
        raise FileNotFoundError(f"no synthesized stacks in {outdir}: run `make synth` first")
    return dirs


def plan_all(outdir: Path = DEFAULT_OUTDIR, work: Path = PLAN_DIR, echo: bool = True) -> list[StackPlan]:
    terraform = terraform_binary()
    work.mkdir(parents=True, exist_ok=True)
    env = terraform_env(work)
    dirs = aws_stack_dirs(outdir)
    if echo:
        print(f"planning {len(dirs)} stacks offline, {PARALLEL} at a time ...", flush=True)
    # Every init first, one at a time: terraform's plugin cache is not safe for concurrent use (hashicorp/terraform
    # #31964): two inits unpacking the provider at once left one with "provider binary not found", and a validate
    # beside another stack's init found "no package ... cached in .terraform/providers".
    targets = [prepare_stack(terraform, d, work, env) for d in dirs]
    # terraform is mostly waiting on the provider process: two at a time halves the wall time on 2 cores.
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        results = list(pool.map(lambda t: plan_stack(terraform, t, env), targets))
    return results


def write_report(results: list[StackPlan], report_dir: Path = REPORT_DIR) -> Path:
    report_dir.mkdir(parents=True, exist_ok=True)
    data = {
        "provider_for_plan": f"hashicorp/aws {MIRROR_AWS_VERSION} (offline mirror)",
        "stacks": {r.stack: {"total": r.total, "by_type": dict(sorted(r.creates.items()))} for r in results},
    }
    (report_dir / "infra-plan.json").write_text(json.dumps(data, indent=2))
    lines = ["# Offline terraform plan", "", "| stack | resources to create |", "|---|---|"]
    lines += [f"| {r.stack} | {r.total} |" for r in results]
    for r in results:
        lines += ["", f"## {r.stack}", "", "| type | count |", "|---|---|"]
        lines += [f"| {t} | {n} |" for t, n in sorted(r.creates.items())]
    path = report_dir / "infra-plan.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    try:
        results = plan_all()
    except OfflinePlanUnavailable as exc:
        print(f"offline plan unavailable: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    for r in results:
        print(f"\n{r.stack}: {r.total} resources to create ({r.seconds:.0f}s)")
        for rtype, count in sorted(r.creates.items()):
            print(f"  {count:3d}  {rtype}")
    print(f"\nreport: {write_report(results)}")


if __name__ == "__main__":
    main()
