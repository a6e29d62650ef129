"""Which Graph permissions allow which user operations (a faithful subset)."""

from __future__ import annotations

from typing import Final

from .errors import GraphError
from .tokens import Principal

_READ_ALL_ROLES: Final = frozenset(
    {
        "User.Read.All",
        "User.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
        "User.ReadBasic.All",
    }
)
_WRITE_ALL_ROLES: Final = frozenset({"User.ReadWrite.All", "Directory.ReadWrite.All"})
_READ_ALL_SCOPES: Final = _READ_ALL_ROLES | {"Directory.AccessAsUser.All"}
_WRITE_ALL_SCOPES: Final = _WRITE_ALL_ROLES | {"Directory.AccessAsUser.All"}
_READ_SELF_SCOPES: Final = _READ_ALL_SCOPES | {"User.Read", "User.ReadWrite"}
_WRITE_SELF_SCOPES: Final = _WRITE_ALL_SCOPES | {"User.ReadWrite"}


def denied() -> GraphError:
    return GraphError(
        403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
    )


def require_read(principal: Principal, target_id: str | None) -> None:
    """``target_id`` None means a list of users."""
    if principal.kind == "app":
        if principal.roles & _READ_ALL_ROLES:
            return
        raise denied()
    if principal.scopes & _READ_ALL_SCOPES:
        return
    if (
        target_id is not None
        and target_id == principal.object_id
        and (principal.scopes & _READ_SELF_SCOPES)
    ):
        return
    raise denied()


def require_directory_write(principal: Principal, target_id: str) -> None:
    if principal.kind == "app":
        if principal.roles & _WRITE_ALL_ROLES:
            return
        raise denied()
    if principal.scopes & _WRITE_ALL_SCOPES:
        return
    if target_id == principal.object_id and principal.scopes & _WRITE_SELF_SCOPES:
        return
    raise denied()


def require_profile_write(principal: Principal, target_id: str) -> None:
    """SharePoint profile fields: delegated only, and only the signed-in user's own."""
    if principal.kind != "user" or principal.object_id != target_id:
        raise denied()
    if not principal.scopes & _WRITE_SELF_SCOPES:
        raise denied()
