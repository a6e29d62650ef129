"""What one Graph operation costs against the identity-and-access quotas.

    cost_of("GET", "GET /users", {"$select": "id", "$top": "999"})   # Cost(units=1, writes=0)

The rules are Graph's documented base costs and modifiers: listing ``users`` costs 2 and any
other identity path 1; every write (POST, PATCH, PUT, DELETE) also costs one write; ``$select``
takes 1 off, ``$expand`` adds 1, ``$top`` under 20 takes 1 off; a cost is never below 1.
Requests under ``/me`` cost what the same request under ``/users/{id}`` costs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

_WRITE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Base resource-unit cost by route name; unlisted routes cost 1.
_BASE_UNITS: Final = {"GET /users": 2}


@dataclass(frozen=True)
class Cost:
    units: int
    writes: int


def cost_of(method: str, route: str, options: Mapping[str, str]) -> Cost:
    """``options`` are the request's query options, names lower-case with their ``$``."""
    units = _BASE_UNITS.get(route, 1)
    if "$select" in options:
        units -= 1
    if "$expand" in options:
        units += 1
    top = options.get("$top", "").strip()
    if top.isdigit() and int(top) < 20:
        units -= 1
    writes = 1 if method in _WRITE_METHODS else 0
    return Cost(units=max(units, 1), writes=writes)
