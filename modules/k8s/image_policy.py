"""Admission: pods in the platform's namespaces run images pinned by digest (`repo:tag@sha256:<hex>`).

A ValidatingAdmissionPolicy (built into Kubernetes since 1.30, no controller to install) checks the image of every
container, init container and ephemeral container of a Pod when it is created or changed. A tag can be moved to
other content after the release was gated; a digest cannot.

Two bindings, decision 0173:
- **Deny** where the platform chooses every image itself: the serving namespace (the release renders the model
  server, the drift job and the webhook receiver by the digests their pushes produced) and, once its image is
  pinned, the runners' namespace (the scale sets' pod template).
- **Warn and Audit** in the add-on namespaces: their pods come from third-party charts whose every image this
  repository cannot list offline. An unpinned image there shows as a warning on `helm upgrade` and in the audit
  log, and never blocks an add-on from starting.
"""

from __future__ import annotations

import re

from modules.k8s import common as c

NAME = "mlp-images-by-digest"
PINNED = r"@sha256:[0-9a-f]{64}$"

# Every image of the Pod, whatever kind of container runs it (CEL, Kubernetes' dialect).
IMAGES = (
    "object.spec.containers.map(c, c.image)"
    " + (has(object.spec.initContainers) ? object.spec.initContainers.map(c, c.image) : [])"
    " + (has(object.spec.ephemeralContainers) ? object.spec.ephemeralContainers.map(c, c.image) : [])"
)
UNPINNED = f"variables.images.filter(i, !i.matches('{PINNED}'))"
VALID = "size(variables.unpinned) == 0"
MESSAGE = (
    "'image not pinned by digest: ' + variables.unpinned[0] + ' (' + string(size(variables.unpinned)) + "
    "' unpinned in all). Deploy repo:tag@sha256:<hex>: mlp render k8s --image-digest/--sibling-digest, "
    "runbooks/image-not-pinned.md'"
)


def is_pinned(image: str) -> bool:
    return re.search(PINNED, image) is not None


def policy() -> c.Manifest:
    return c.manifest(
        "admissionregistration.k8s.io/v1",
        "ValidatingAdmissionPolicy",
        c.metadata(NAME, None, {"app.kubernetes.io/part-of": c.PART_OF}),
        spec={
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"],
                        # `kubectl debug` adds its container through the subresource.
                        "resources": ["pods", "pods/ephemeralcontainers"],
                    }
                ]
            },
            "variables": [{"name": "images", "expression": IMAGES}, {"name": "unpinned", "expression": UNPINNED}],
            "validations": [{"expression": VALID, "messageExpression": MESSAGE, "reason": "Forbidden"}],
        },
    )


def binding(suffix: str, actions: list[str], namespaces: list[str]) -> c.Manifest:
    return c.manifest(
        "admissionregistration.k8s.io/v1",
        "ValidatingAdmissionPolicyBinding",
        c.metadata(f"{NAME}-{suffix}", None, {"app.kubernetes.io/part-of": c.PART_OF}),
        spec={
            "policyName": NAME,
            "validationActions": actions,
            "matchResources": {
                "namespaceSelector": {
                    "matchExpressions": [
                        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": sorted(namespaces)}
                    ]
                }
            },
        },
    )


def manifests(*, enforced: list[str], audited: list[str]) -> list[c.Manifest]:
    """The policy, refusing unpinned images in `enforced` and reporting them in `audited`."""
    if overlap := set(enforced) & set(audited):
        raise ValueError(f"namespaces both enforced and audited: {sorted(overlap)}")
    if not enforced:
        raise ValueError("no namespace enforces images by digest; the serving namespace always does")
    found = [policy(), binding("deny", ["Deny"], enforced)]
    return found + ([binding("audit", ["Warn", "Audit"], audited)] if audited else [])
