"""Latency budgets as users type them: ``40ms``, ``40 ms``, ``0.04s``, ``40000us``."""

from __future__ import annotations

import math
import re

from explorer.errors import UserError

UNITS_MS = {"ms": 1.0, "s": 1000.0, "us": 1e-3, "µs": 1e-3}
_BUDGET = re.compile(r"^\s*(?P<number>[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?)\s*(?P<unit>[a-zµ]*)\s*$")
EXAMPLES = "e.g. 40ms, 40 ms, 0.04s or 40000us"


class BudgetError(UserError, ValueError):
    """A budget that is not a positive latency with a unit; the message says what is allowed."""

    def __init__(self, text: str, reason: str):
        self.text = text
        super().__init__(f"invalid budget {text!r}: {reason}")


def parse_budget(text: str) -> float:
    """Milliseconds from a budget string with a unit (ms, s, us)."""
    match = _BUDGET.match(str(text))
    if match is None:
        raise BudgetError(text, f"expected a positive latency with a unit (ms, s or us), {EXAMPLES}")
    value, unit = float(match["number"]), match["unit"]
    if not math.isfinite(value) or value <= 0:
        raise BudgetError(text, f"the budget must be a positive latency, {EXAMPLES}")
    if not unit:
        raise BudgetError(text, f"a unit is required (ms, s or us), {EXAMPLES}")
    if unit not in UNITS_MS:
        raise BudgetError(text, f"unknown unit {unit!r}; allowed: ms, s, us ({EXAMPLES})")
    return value * UNITS_MS[unit]
