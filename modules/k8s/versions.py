"""Versions the rendered manifests target: the EKS minor the schemas are checked against and the add-on APIs.

The infra engineer's add-on stack installs these; `crd_schemas/SOURCES.md` records where each vendored CRD schema
came from. Changing a version here means re-vendoring its schema (`python -m modules.k8s.crd_schemas.extract`).
"""

from __future__ import annotations

# kubernetes-validate ships schemas per minor; EKS standard support covers 1.33 in 2026.
KUBERNETES_VERSION = "1.33.0"

ROLLOUTS_API = "argoproj.io/v1alpha1"
GATEWAY_API = "gateway.networking.k8s.io/v1"
GATEWAY_API_BETA = "gateway.networking.k8s.io/v1beta1"  # ReferenceGrant: v1 only from Gateway API v1.6
ENVOY_GATEWAY_API = "gateway.envoyproxy.io/v1alpha1"
KEDA_API = "keda.sh/v1alpha1"
# HTTP add-on 0.14: InterceptorRoute (v1beta1) replaced the deprecated HTTPScaledObject (v1alpha1).
KEDA_HTTP_API = "http.keda.sh/v1beta1"
MONITORING_API = "monitoring.coreos.com/v1"

# The Argo Rollouts traffic-router plugin for Gateway API (argoproj-labs/rollouts-plugin-trafficrouter-gatewayapi).
GATEWAY_API_PLUGIN = "argoproj-labs/gatewayAPI"
