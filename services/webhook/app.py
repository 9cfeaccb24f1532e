"""The registry-webhook receiver: a tiny ASGI app (Starlette, served by uvicorn).

`POST /alertmanager` takes Alertmanager's notifications (bearer token, `services/webhook/alerts.py`) and appends
them to the notification log `<state>/webhook/notifications.jsonl`. Those the action receiver delivered may act: a
firing drift alert starts one retraining of the drifted version (`services/webhook/actions.py`).

`POST /mlflow` takes MLflow registry deliveries. Setting the candidate alias
(`model_version_alias.created` with alias = policy.release.candidate_alias) on the platform's model starts a
release through the dispatcher; every other event is acknowledged and ignored. Decisions are appended as JSON
lines to `<state>/webhook/events.jsonl` (no secrets, no bodies).

Answers: 202 release started; 200 ignored or duplicate (no retry wanted); 400 stale or malformed; 401 bad
signature; 502 the dispatch failed (MLflow retries with the same delivery id, which is then accepted).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from core import contracts, env
from services.webhook import actions, alerts
from services.webhook.deliveries import DeliveryLedger
from services.webhook.dispatch import Dispatcher, DispatchError, Promotion
from services.webhook.verify import Rejected, verify

PROMOTION_ENTITY = "model_version_alias"
PROMOTION_ACTION = "created"


@dataclass
class ReceiverConfig:
    secret: str
    model_name: str
    candidate_alias: str
    max_skew_seconds: int
    ledger: DeliveryLedger
    dispatcher: Dispatcher
    events_log: Path
    clock: Callable[[], float] = time.time
    alert_token: str = ""  # Alertmanager's bearer token; empty: every alert delivery is refused
    notifications_log: Path | None = None  # default: notifications.jsonl beside events_log

    @property
    def notifications(self) -> Path:
        return self.notifications_log or self.events_log.parent / alerts.NOTIFICATION_LOG


def _record(cfg: ReceiverConfig, **fields: Any) -> None:
    cfg.events_log.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **fields})
    with cfg.events_log.open("a") as fh:
        fh.write(line + "\n")
    print(line, flush=True)


def create_app(cfg: ReceiverConfig) -> Starlette:
    async def receive(request: Request) -> JSONResponse:
        body = await request.body()
        try:
            delivery = verify(request.headers, body, cfg.secret, cfg.clock(), cfg.max_skew_seconds)
        except Rejected as exc:
            _record(cfg, decision="rejected", status=exc.status, reason=exc.reason, peer=_peer(request))
            return JSONResponse({"error": exc.reason}, status_code=exc.status)
        try:
            event = json.loads(body)
            entity, action, data = event["entity"], event["action"], event.get("data") or {}
        except (ValueError, KeyError, TypeError):
            _record(cfg, decision="rejected", status=400, reason="body is not an MLflow webhook event")
            return JSONResponse({"error": "body is not an MLflow webhook event"}, status_code=400)
        did = delivery.delivery_id
        wanted = (
            entity == PROMOTION_ENTITY
            and action == PROMOTION_ACTION
            and data.get("alias") == cfg.candidate_alias
            and data.get("name") == cfg.model_name
        )
        if not wanted:
            _record(cfg, decision="ignored", delivery_id=did, event=f"{entity}.{action}", data=data)
            return JSONResponse({"status": "ignored", "reason": "not a promotion of the platform's model"})
        if not cfg.ledger.claim(did):
            _record(cfg, decision="duplicate", delivery_id=did)
            return JSONResponse({"status": "duplicate", "reason": f"delivery {did} was already handled"})
        try:
            promotion = Promotion(str(data["name"]), int(data["version"]), str(data["alias"]), did)
            done = cfg.dispatcher.dispatch(promotion)
        except (DispatchError, OSError, ValueError, KeyError) as exc:
            cfg.ledger.forget(did)  # let MLflow's retry (same delivery id) try again
            _record(cfg, decision="dispatch_failed", delivery_id=did, error=str(exc))
            return JSONResponse({"error": f"could not start the release: {exc}"}, status_code=502)
        _record(cfg, decision="accepted", delivery_id=did, model=promotion.model_name, version=promotion.version)
        _record(cfg, decision="dispatched", delivery_id=did, action=done)
        return JSONResponse({"status": "accepted", "action": done}, status_code=202)

    async def receive_alerts(request: Request) -> JSONResponse:
        try:
            alerts.authenticate(request.headers, cfg.alert_token)  # before the body is read: a stranger costs nothing
            notification = alerts.parse(await request.body())
        except Rejected as exc:
            _record(cfg, decision="rejected", route=contracts.ALERTMANAGER_ROUTE, status=exc.status, reason=exc.reason)
            return JSONResponse({"error": exc.reason}, status_code=exc.status)
        record = {"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **notification.record()}
        alerts.append(cfg.notifications, record)
        names = sorted({a.get("alertname", "?") for a in notification.alerts})
        _record(cfg, decision="notified", receiver=notification.receiver, status=notification.status, alerts=names)
        started = []
        requests = actions.retrain_requests(notification, cfg.model_name)
        why_paused = actions.paused(cfg.events_log.parent) if requests else None
        if why_paused is not None:
            _record(cfg, decision="paused", action="retrain", versions=[r.version for r in requests], reason=why_paused)
            return JSONResponse({"status": "logged", "actions": f"paused: {why_paused}"})
        for req in requests:
            if not cfg.ledger.claim(req.key):
                _record(cfg, decision="duplicate", action="retrain", alert=req.key, version=req.version)
                continue
            try:
                started.append(cfg.dispatcher.retrain(req))
            except (DispatchError, OSError) as exc:
                cfg.ledger.forget(req.key)  # Alertmanager retries a failed notification: that retry acts again
                _record(cfg, decision="dispatch_failed", action="retrain", alert=req.key, error=str(exc))
                return JSONResponse({"error": f"could not start the retraining: {exc}"}, status_code=502)
            _record(cfg, decision="dispatched", action="retrain", alert=req.key, version=req.version, done=started[-1])
        if started:
            return JSONResponse({"status": "accepted", "actions": started}, status_code=202)
        return JSONResponse({"status": "logged", "alerts": len(notification.alerts)})

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route(contracts.WEBHOOK_ROUTE, receive, methods=["POST"]),
            Route(contracts.ALERTMANAGER_ROUTE, receive_alerts, methods=["POST"]),
            Route(contracts.HEALTH_ROUTE, health),
        ]
    )


def _peer(request: Request) -> str:
    return request.client.host if request.client else "?"


def receiver_config(state_dir: Path, logs_dir: Path) -> ReceiverConfig:
    """The receiver's settings: policy and secret from the environment, folders from its runtime (the local stack
    passes its own, see infra/local/webhook.py; an image mounts volumes)."""
    from core.policy import policy
    from services.webhook import dispatch

    p = policy()
    return ReceiverConfig(
        secret=env.WEBHOOK_SECRET.get(),
        model_name=p.release.default_model,
        candidate_alias=p.release.candidate_alias,
        max_skew_seconds=p.release.webhook_max_skew_seconds,
        ledger=DeliveryLedger(state_dir / "deliveries.sqlite"),
        dispatcher=dispatch.from_env(logs_dir),
        events_log=state_dir / "events.jsonl",
        alert_token=env.ALERTMANAGER_TOKEN.get(),
        notifications_log=state_dir / alerts.NOTIFICATION_LOG,
    )


def main(argv: list[str] | None = None) -> None:
    import argparse

    import uvicorn

    from core.policy import policy

    parser = argparse.ArgumentParser(description="The registry-webhook receiver.")
    parser.add_argument("--state-dir", type=Path, required=True, help="delivery ledger and events.jsonl")
    parser.add_argument("--logs-dir", type=Path, required=True, help="logs of the releases it starts")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (a pod: 0.0.0.0)")
    parser.add_argument("--port", type=int, default=None, help="port (default: policy ports.webhook)")
    args = parser.parse_args(argv)
    cfg = receiver_config(args.state_dir, args.logs_dir)
    if not cfg.secret:
        raise SystemExit(f"{env.WEBHOOK_SECRET.name} is empty: start the receiver through `mlp env up` (secret store)")
    port = args.port if args.port is not None else policy().ports.webhook
    uvicorn.run(create_app(cfg), host=args.host, port=port, log_level="warning")


if __name__ == "__main__":
    main()
