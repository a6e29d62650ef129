"""Which Graph permissions allow which user operations (a faithful subset).

    require_read(principal, target_id)            # None for a list of users
    require_profile_write(principal, target_id)   # aboutMe, skills, ... : delegated only

Delegated access is the intersection of the token's scopes and what the signed-in user may
do: with ``User.ReadWrite.All`` a user still changes other users only when the token also
carries an administrator role (``wids``), as in Entra ID.
"""

from __future__ import annotations

from typing import Final, Literal

from devtools.graph_emulator.errors import GraphError
from devtools.graph_emulator.tokens import Principal

#: How much of another user a caller may read: every property, or the basic profile only.
ReadAccess = Literal["full", "basic"]

#: Read and update (not create or delete) every user's full profile: the least privileged
#: permission of "Update user", delegated and application alike.
#: https://learn.microsoft.com/en-us/graph/api/user-update?view=graph-rest-1.0#permissions
USER_READ_UPDATE_ALL: Final = "User.ReadUpdate.All"
#: Reads other users' basic profile only (and the signed-in user's full profile).
USER_READ_BASIC_ALL: Final = "User.ReadBasic.All"
#: The basic profile: "displayName, givenName, id, mail, photo, securityIdentifier, surname,
#: userPrincipalName" (photo is not a property here). Other properties read as null.
#: https://learn.microsoft.com/en-us/graph/api/resources/users?view=graph-rest-1.0#user-basic-profile-properties
BASIC_PROFILE: Final = frozenset(
    {"displayName", "givenName", "id", "mail", "securityIdentifier", "surname", "userPrincipalName"}
)

_READ_ALL_ROLES: Final = frozenset(
    {
        "User.Read.All",
        "User.ReadWrite.All",
        USER_READ_UPDATE_ALL,
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)
_WRITE_ALL_ROLES: Final = frozenset(
    {"User.ReadWrite.All", USER_READ_UPDATE_ALL, "Directory.ReadWrite.All"}
)
_READ_ALL_SCOPES: Final = _READ_ALL_ROLES | {"Directory.AccessAsUser.All"}
_WRITE_ALL_SCOPES: Final = _WRITE_ALL_ROLES | {"Directory.AccessAsUser.All"}
_READ_SELF_SCOPES: Final = _READ_ALL_SCOPES | {"User.Read", "User.ReadWrite", USER_READ_BASIC_ALL}
_WRITE_SELF_SCOPES: Final = _WRITE_ALL_SCOPES | {"User.ReadWrite"}

#: Directory role template ids (the ``wids`` claim) that may change other users' profiles.
GLOBAL_ADMINISTRATOR: Final = "62e90394-69f5-4237-9190-012177145e10"
USER_ADMINISTRATOR: Final = "fe930be7-5e62-47db-91af-98c3a49a38b1"
SHAREPOINT_ADMINISTRATOR: Final = "f28a1f50-f6e7-4571-818b-6a12f2af6b6c"
ADMIN_ROLES: Final = frozenset({GLOBAL_ADMINISTRATOR, USER_ADMINISTRATOR, SHAREPOINT_ADMINISTRATOR})


def denied() -> GraphError:
    return GraphError(
        403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
    )


def require_read(principal: Principal, target_id: str | None) -> ReadAccess:
    """What the caller may read of ``target_id`` (None: a list of users), or 403."""
    granted = principal.roles if principal.kind == "app" else principal.scopes
    if granted & _READ_ALL_ROLES or (
        principal.kind == "user" and "Directory.AccessAsUser.All" in granted
    ):
        return "full"
    if principal.kind == "user" and target_id is not None and target_id == principal.object_id:
        if granted & _READ_SELF_SCOPES:
            return "full"
        raise denied()
    if USER_READ_BASIC_ALL in granted:
        return "basic"
    raise denied()


def read_access_to(principal: Principal, access: ReadAccess, user_id: str) -> ReadAccess:
    """Within a list read with ``access``: what may be read of ``user_id``. User.ReadBasic.All
    "also allows the app to read the full profile of the signed-in user"."""
    if access == "basic" and principal.kind == "user" and user_id == principal.object_id:
        return "full"
    return access


def _may_write_others(principal: Principal) -> bool:
    return bool(principal.scopes & _WRITE_ALL_SCOPES) and bool(principal.wids & ADMIN_ROLES)


def require_directory_write(principal: Principal, target_id: str) -> None:
    if principal.kind == "app":
        if principal.roles & _WRITE_ALL_ROLES:
            return
        raise denied()
    if target_id == principal.object_id and principal.scopes & _WRITE_SELF_SCOPES:
        return
    if _may_write_others(principal):
        return
    raise denied()


def require_profile_write(principal: Principal, target_id: str) -> None:
    """SharePoint profile fields: never with an application token (Graph refuses them);
    a user changes their own, or others' with an administrator role."""
    if principal.kind != "user":
        raise denied()
    if principal.object_id == target_id and principal.scopes & _WRITE_SELF_SCOPES:
        return
    if _may_write_others(principal):
        return
    raise denied()
