"""Programs this area adds to the local stack (see infra/local/stack.py)."""

from __future__ import annotations

from infra.local.supervisor import Program


def programs() -> list[Program]:
    return []
