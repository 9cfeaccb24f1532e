"""Kubernetes resource quantities (as written in policy.serving) to numbers."""

from __future__ import annotations

import re

_CPU = re.compile(r"^(\d+(?:\.\d+)?)(m?)$")
_MEM = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|K|M|G|T)?$")
_MEM_FACTOR = {
    None: 1.0,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "K": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
}


def cpu_cores(quantity: str) -> float:
    """'500m' -> 0.5, '2' -> 2.0."""
    match = _CPU.match(quantity.strip())
    if not match:
        raise ValueError(f"not a CPU quantity: {quantity!r} (use cores like '2' or millicores like '500m')")
    value = float(match.group(1))
    return value / 1000 if match.group(2) else value


def memory_gib(quantity: str) -> float:
    """'768Mi' -> 0.75, '2Gi' -> 2.0."""
    match = _MEM.match(quantity.strip())
    if not match:
        raise ValueError(f"not a memory quantity: {quantity!r} (use e.g. '768Mi' or '2Gi')")
    return float(match.group(1)) * _MEM_FACTOR[match.group(2)] / 2**30
