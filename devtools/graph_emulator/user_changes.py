"""Validation of user property changes, shared by Graph's PATCH and the admin API."""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import datetime
from typing import Any, Final

from devtools.graph_emulator.errors import GraphError, bad_request
from devtools.graph_emulator.schema import MAX_LENGTHS, UNSUPPORTED_PROPERTIES, USER_PROPERTIES

#: Generous limits: Graph's own are larger for some fields, and nothing here needs more.
MAX_STRING_LENGTH: Final = 16_000
MAX_LIST_ITEMS: Final = 1_000
#: The alias part of a user principal name is at most 64 characters.
MAX_UPN_LOCAL_LENGTH: Final = 64
_NOT_NULLABLE: Final = frozenset(
    {"displayName", "userPrincipalName", "accountEnabled", "id", "usageLocation"}
)
#: Characters Graph allows in the local part of a user principal name.
_UPN_LOCAL: Final = re.compile(r"[A-Za-z0-9'.\-_!#^~]+")


def _invalid(name: str) -> GraphError:
    return bad_request(f"Invalid value specified for property '{name}' of resource 'User'.")


def _too_long(name: str, limit: int) -> GraphError:
    return bad_request(
        f"Invalid value specified for property '{name}' of resource 'User': it is longer "
        f"than the maximum of {limit} characters."
    )


def _check_value(name: str, value: Any) -> Any:
    kind = USER_PROPERTIES[name]
    if value is None:
        if name in _NOT_NULLABLE:
            raise _invalid(name)
        return [] if kind == "strings" else None
    if kind == "string":
        if not isinstance(value, str):
            raise _invalid(name)
        limit = MAX_LENGTHS.get(name, MAX_STRING_LENGTH)
        if len(value) > limit:
            raise _too_long(name, limit)
        if name in _NOT_NULLABLE and not value.strip():
            raise _invalid(name)
        if name == "mail" and not value.isascii():
            # Graph: "This property can't contain accent characters."
            raise _invalid(name)
        return value
    if kind == "strings":
        if not isinstance(value, list) or len(value) > MAX_LIST_ITEMS:
            raise _invalid(name)
        if not all(isinstance(v, str) and len(v) <= MAX_STRING_LENGTH for v in value):
            raise _invalid(name)
        if name == "businessPhones" and len(value) > 1:
            # Graph: "only one number can be set for this property".
            raise _invalid(name)
        return list(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise _invalid(name)
        return value
    if kind == "datetime":
        if not isinstance(value, str):
            raise _invalid(name)
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise _invalid(name) from exc
        return value
    raise _invalid(name)


def validate_changes(body: object, writable: Collection[str], domain: str) -> dict[str, Any]:
    """Check a change set against ``writable``; return it with values normalised."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", code="BadRequest")
    changes: dict[str, Any] = {}
    for name, value in body.items():
        if not isinstance(name, str):
            raise _invalid(str(name))
        if name.startswith("@odata."):
            continue  # annotations such as @odata.type carry no data
        if name not in USER_PROPERTIES:
            raise bad_request(
                f"Property '{name}' does not exist as a declared property or extension property."
            )
        if name in UNSUPPORTED_PROPERTIES:
            raise bad_request(f"Property '{name}' is not supported and cannot be set.")
        if name not in writable:
            raise bad_request(f"Property '{name}' is read-only and cannot be set.")
        changes[name] = _check_value(name, value)
    upn = changes.get("userPrincipalName")
    if isinstance(upn, str):
        local, _, upn_domain = upn.partition("@")
        if (
            not _UPN_LOCAL.fullmatch(local)
            or len(local) > MAX_UPN_LOCAL_LENGTH
            or upn_domain.lower() != domain.lower()
        ):
            raise bad_request(
                "Property userPrincipalName has an invalid value: use alias@domain, where the "
                "domain is a verified domain of the tenant "
                f"({domain}) and the alias is 1 to {MAX_UPN_LOCAL_LENGTH} of the characters "
                "A-Z a-z 0-9 ' . - _ ! # ^ ~."
            )
    return changes
