"""Argo Rollouts' reading of a measurement, for the tests: its expr conditions on a Prometheus result vector."""

from __future__ import annotations

import math
from typing import Any


def argo_condition(cond: str, result: list[float]) -> bool:
    """A success or failure condition evaluated the way Argo's expr does, on a Prometheus result vector."""
    expr = (
        cond.replace("&&", " and ")
        .replace("||", " or ")
        .replace("!isNaN", " not isNaN")
        .replace("!isInf", " not isInf")
    )
    env = {"result": result, "len": len, "isNaN": math.isnan, "isInf": math.isinf, "false": False, "true": True}
    return bool(eval(expr, {"__builtins__": {}}, env))


def verdict(metric: dict[str, Any], result: list[float]) -> str:
    """One measurement's phase: Failed when the failure condition holds, Successful when the success condition does,
    else Inconclusive (Argo checks failure first)."""
    if argo_condition(metric["failureCondition"], result):
        return "failed"
    return "successful" if argo_condition(metric["successCondition"], result) else "inconclusive"
