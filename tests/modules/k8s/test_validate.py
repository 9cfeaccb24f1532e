"""Every rendered manifest is schema-valid (built-in kinds via kubernetes-validate, CRDs via vendored schemas)."""

from __future__ import annotations

import copy
import json

import pytest

from modules.k8s import render_all
from modules.k8s.validate import SCHEMA_DIR, ManifestInvalid, check, schema_file, validate_all, validate_manifest
from tests.modules.k8s.conftest import ALL_VARIANTS, by_kind, props


@pytest.mark.parametrize(("mode", "gpu"), ALL_VARIANTS)
def test_every_manifest_is_schema_valid(mode, gpu):
    rendered = render_all(props(mode, gpu))
    assert validate_all(rendered) == []


def test_every_crd_kind_rendered_has_a_vendored_schema_with_a_source():
    sources = (SCHEMA_DIR / "SOURCES.md").read_text()
    kinds = set()
    for mode, gpu in ALL_VARIANTS:
        for ms in render_all(props(mode, gpu)).values():
            kinds |= {(m["apiVersion"], m["kind"]) for m in ms if "." in m["apiVersion"].split("/")[0]}
    kinds -= {("networking.k8s.io/v1", "NetworkPolicy")}
    assert len(kinds) >= 10
    for api_version, kind in kinds:
        path = schema_file(api_version, kind)
        assert path.exists(), path
        meta = json.loads(path.read_text())["x-mlp-source"]
        assert meta["commit"] in sources and path.name in sources


def test_wrong_field_in_a_crd_fails_with_the_field_named(rollout):
    (ro,) = by_kind(rollout, "Rollout")
    bad = copy.deepcopy(ro)
    bad["spec"]["strategy"]["canary"]["stepz"] = bad["spec"]["strategy"]["canary"].pop("steps")
    problems = validate_manifest(bad)
    assert any(p.path == "spec.strategy.canary" and "'stepz' was unexpected" in p.message for p in problems)


def test_security_policy_rejects_the_forwarding_block_the_pinned_envoy_gateway_lacks(deployments):
    # Envoy Gateway v1.7 (our chart) spells client-id forwarding `apiKeyAuth.forwardClientIDHeader`; the newer
    # `extractFrom[].forwarding` block would be rejected by a strict apply (or pruned, losing the rate-limit key).
    sp = by_kind(deployments, "SecurityPolicy")[0]
    bad = copy.deepcopy(sp)
    auth = bad["spec"]["apiKeyAuth"]
    auth["extractFrom"][0]["forwarding"] = {"clientIdentityHeader": auth.pop("forwardClientIDHeader")}
    problems = validate_manifest(bad)
    where = "spec.apiKeyAuth.extractFrom.0"
    assert any(p.path == where and "'forwarding' was unexpected" in p.message for p in problems)


def test_wrong_type_in_a_crd_fails(deployments):
    (so,) = by_kind(deployments, "ScaledObject")[:1]
    bad = copy.deepcopy(so)
    bad["spec"]["triggers"][0]["metadata"]["threshold"] = 8  # KEDA metadata values are strings
    with pytest.raises(ManifestInvalid, match=r"ScaledObject/.*spec\.triggers\.0\.metadata\.threshold.*not of type"):
        check({"scaling": [bad]})


def test_wrong_field_in_a_rollout_pod_template_is_caught_by_the_builtin_schema(rollout):
    (ro,) = by_kind(rollout, "Rollout")
    bad = copy.deepcopy(ro)
    bad["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    problems = validate_manifest(bad)
    assert any("readinesProbe" in p.message and p.path.startswith("spec.template") for p in problems)


def test_wrong_field_in_a_builtin_kind_fails(deployments):
    d = copy.deepcopy(by_kind(deployments, "Deployment")[0])
    d["spec"]["strategy"]["rollingUpdate"]["maxUnavailabel"] = 0
    problems = validate_manifest(d)
    assert problems and "maxUnavailabel" in problems[0].message


def test_unknown_kind_is_reported_not_passed():
    problems = validate_manifest({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})
    assert problems and "no vendored CRD schema" in problems[0].message


def test_the_comparison_jobs_pod_in_an_analysis_template_is_checked_as_a_job(rollout):
    """Argo's job provider holds a whole batch/v1 Job, which the vendored CRD schema leaves open."""
    (tmpl,) = [t for t in by_kind(rollout, "AnalysisTemplate") if "job" in t["spec"]["metrics"][0]["provider"]]
    assert validate_manifest(tmpl) == []
    bad = copy.deepcopy(tmpl)
    pod = bad["spec"]["metrics"][0]["provider"]["job"]["spec"]["template"]["spec"]
    pod["containers"][0]["imagePullPolicyy"] = "Always"
    problems = validate_manifest(bad)
    assert problems and "provider.job" in problems[0].path, problems
