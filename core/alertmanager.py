"""Alertmanager's routing, rendered from the policy for both runtimes.

`config()` is the one source: the local Alertmanager (infra/local/alertmanager.py) and kube-prometheus-stack's
(modules/alerting.py) get the same route tree, grouping, intervals and inhibition; only the receivers' destinations
differ, and each runtime passes its own. Severity `page` (and `critical`, kube-prometheus-stack's) goes to
`contracts.RECEIVER_PAGE`, every other alert (`ticket`, `info`, `warning`, none) to `contracts.RECEIVER_TICKET`, so no
alert can go nowhere. The alerts the platform acts on (`ACTIONABLE`) are also delivered to `contracts.RECEIVER_ACT`,
the platform's own receiver, first and with `continue`, so the people get them as well.
"""

from __future__ import annotations

from typing import Any

from core import contracts
from core import promql as q
from core.policy import Policy, policy

SEVERITY = "severity"
# Our rules page with `page`; kube-prometheus-stack's own rules (cluster) mark page-worthy alerts `critical`.
PAGE_SEVERITIES = ("page", "critical")
# One notification per model version: its alerts of one severity arrive together (decision 0160).
GROUP_BY = ["model_name", "model_version"]
# A model server down answers nothing, so its latency and error SLO alerts are symptoms of the same cause.
INHIBIT_SOURCE = contracts.ALERT_SERVER_DOWN
INHIBIT_TARGETS = (contracts.ALERT_LATENCY_BURN, contracts.ALERT_ERROR_BURN)
RECEIVERS = (contracts.RECEIVER_ACT, contracts.RECEIVER_PAGE, contracts.RECEIVER_TICKET)
# Alerts that start something: drift starts a retraining (services/webhook/actions.py).
ACTIONABLE = (contracts.ALERT_DRIFT,)


def _duration(seconds: int) -> str:
    return q.seconds_to_promql(seconds)  # Alertmanager reads the same duration syntax as PromQL


def route(p: Policy | None = None) -> dict[str, Any]:
    r = (p or policy()).alert_routing
    return {
        "receiver": contracts.RECEIVER_TICKET,
        "group_by": list(GROUP_BY),
        "group_wait": _duration(r.group_wait_seconds),
        "group_interval": _duration(r.group_interval_seconds),
        "repeat_interval": _duration(r.ticket_repeat_interval_seconds),
        "routes": [
            {
                # One notification per alert: an action is keyed by the alert, never by a group of them.
                "receiver": contracts.RECEIVER_ACT,
                "matchers": [f'alertname=~"{"|".join(ACTIONABLE)}"'],
                "group_by": ["alertname", *GROUP_BY],
                # Re-sent every group interval while it fires: the receiver acts once per alert (fingerprint and
                # start), and an alert that fires again after resolving must reach it without waiting a day.
                "repeat_interval": _duration(r.group_interval_seconds),
                "continue": True,
            },
            {
                "receiver": contracts.RECEIVER_PAGE,
                "matchers": [f'{SEVERITY}=~"{"|".join(PAGE_SEVERITIES)}"'],
                "repeat_interval": _duration(r.page_repeat_interval_seconds),
            },
            # Everything else. Explicit, because a route matched with `continue` (the action receiver's) means the
            # parent's own receiver is no longer the fallback.
            {"receiver": contracts.RECEIVER_TICKET},
        ],
    }


def inhibit_rules() -> list[dict[str, Any]]:
    return [
        {
            "source_matchers": [f'alertname="{INHIBIT_SOURCE}"'],
            "target_matchers": [f'alertname=~"{"|".join(INHIBIT_TARGETS)}"'],
            "equal": list(GROUP_BY),  # only the same model version's alerts are muted
        }
    ]


def config(receivers: dict[str, dict[str, Any]], p: Policy | None = None) -> dict[str, Any]:
    """The whole Alertmanager config; `receivers` maps each of `RECEIVERS` to its notifier configs
    (`webhook_configs`, `slack_configs`, ...)."""
    missing = [name for name in RECEIVERS if name not in receivers]
    extra = [name for name in receivers if name not in RECEIVERS]
    if missing or extra:
        raise ValueError(f"receivers must be exactly {list(RECEIVERS)}: missing {missing}, unknown {extra}")
    pol = p or policy()
    return {
        "global": {"resolve_timeout": _duration(pol.alert_routing.resolve_timeout_seconds)},
        "route": route(pol),
        "inhibit_rules": inhibit_rules(),
        "receivers": [{"name": name, **receivers[name]} for name in RECEIVERS],
    }
