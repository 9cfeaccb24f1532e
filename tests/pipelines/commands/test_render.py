from __future__ import annotations

import yaml
from typer.testing import CliRunner

from pipelines.commands.render import app


def test_render_writes_one_yaml_per_concern(tmp_path):
    result = CliRunner().invoke(
        app, ["k8s", "--out", str(tmp_path), "--versions", "3=90,4=10", "--gpu", "--image-tag", "abc1234"]
    )
    assert result.exit_code == 0, result.output
    files = {p.name for p in tmp_path.glob("*.yaml")}
    assert {"serving.yaml", "gateway.yaml", "scaling.yaml", "monitoring.yaml", "namespace.yaml"} <= files
    docs = list(yaml.safe_load_all((tmp_path / "serving.yaml").read_text()))
    images = {d["spec"]["template"]["spec"]["containers"][0]["image"] for d in docs if d["kind"] == "Deployment"}
    assert images == {"123456789012.dkr.ecr.us-east-1.amazonaws.com/mlp-dev/model-server-gpu:abc1234"}


def test_a_gpu_render_of_the_cpu_image_is_refused_naming_the_image_to_use(tmp_path):
    # The CPU image has no CUDA build of ONNX Runtime: its pods would hold a GPU and serve on the CPU.
    cpu_repo = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlp-dev/model-server"
    result = CliRunner().invoke(app, ["k8s", "--out", str(tmp_path), "--gpu", "--image-repository", cpu_repo])
    assert result.exit_code != 0
    assert "`model-server-gpu` image" in result.output
    assert not list(tmp_path.glob("*.yaml")), "nothing is written"


def test_bad_weights_are_refused_with_a_hint(tmp_path):
    result = CliRunner().invoke(app, ["k8s", "--out", str(tmp_path), "--versions", "3=50"])
    assert result.exit_code != 0
    assert "sum to 100" in result.output
    result = CliRunner().invoke(app, ["k8s", "--out", str(tmp_path), "--versions", "3:50"])
    assert "VERSION=PERCENT" in result.output


def test_retrain_job_prints_one_schema_checked_job_and_names_a_bad_input(tmp_path):
    args = ["retrain-job", "--from", "3", "--image", "r/mlp/drift-job:abc", "--signing-kms-key", "alias/k"]
    result = CliRunner().invoke(app, [*args, "--artifact-public-key", "MFkw", "--alert-fingerprint", "ab12cd"])
    assert result.exit_code == 0, result.output
    (job,) = list(yaml.safe_load_all(result.stdout))  # stderr may carry the CDK runtime's notices
    assert job["kind"] == "Job" and "--alert-fingerprint" in job["spec"]["template"]["spec"]["containers"][0]["args"]
    bad = CliRunner().invoke(app, [*args, "--artifact-public-key", "MFkw", "--alert-fingerprint", "NOT-HEX"])
    assert bad.exit_code == 2 and "alert_fingerprint" in bad.output
