"""Cluster-side Kubernetes objects, rendered from the policy (one module per concern) and validated offline."""

from __future__ import annotations

from modules.k8s.props import GatewayProps, MonitoringProps, RenderProps, ServingProps, WebhookProps
from modules.k8s.render import render_all, write

__all__ = ["GatewayProps", "MonitoringProps", "RenderProps", "ServingProps", "WebhookProps", "render_all", "write"]
