"""Which users a sync lists: the operator's SYNC_USERS, as a Graph `$filter`.

    scope = UserScope.parse("members")
    url = scope.list_url("https://graph.microsoft.com/v1.0", page_size=999)
    headers = scope.list_headers()     # {"ConsistencyLevel": "eventual"} for a filter

Only users who can have a SharePoint profile are worth a profile read: a
guest, a room or a shared mailbox answers "Tenant does not have a SPO
license." or "Unable to retrieve user's mysite URL." instead. Graph filters
them out server-side, for the cost of the list pages only:

- `members` (the default): members (`userType eq 'Member'`) holding an enabled
  SharePoint Online service plan
  (`assignedPlans/any(p:p/service eq 'SharePoint' and p/capabilityStatus eq 'Enabled')`);
  disabled accounts keep their licence and profile, so they are synced;
- `enabled-members`: the same, signed-in-able accounts only (`accountEnabled eq true`);
- `members-and-guests`: licensed members and every guest (a guest's profile,
  where the tenant gives guests one, is read; one without is counted apart);
- `all`: every user `/users` lists, unfiltered (no advanced query);
- `group:<object id>`: the users of that group and of the groups nested in it
  (`/groups/{id}/transitiveMembers/microsoft.graph.user`, which needs the
  application permission GroupMember.Read.All), whoever they are: those
  without a profile are counted apart.

A lambda over `assignedPlans` is an advanced query: Graph answers it only with
the `ConsistencyLevel: eventual` header and `$count=true`
(https://learn.microsoft.com/graph/aad-advanced-queries, "List users with a
particular service plan"; the user resource lists `assignedPlans` as
filterable). Advanced queries are eventually consistent: a licence given a
moment ago may show at the next sync.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Final
from urllib.parse import quote

__all__ = ["SHAREPOINT_LICENSED", "UserScope"]

#: Users holding an enabled SharePoint Online service plan (`assignedPlan.service`).
SHAREPOINT_LICENSED: Final = (
    "assignedPlans/any(p:p/service eq 'SharePoint' and p/capabilityStatus eq 'Enabled')"
)


_KINDS: Final = ("members", "enabled-members", "members-and-guests", "all", "group:<id>")
_GUID: Final = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")


@dataclass(frozen=True)
class UserScope:
    """One of `_KINDS`; `group` carries the group's object id."""

    kind: str
    group: str | None = None

    MEMBERS: ClassVar[UserScope]
    ENABLED_MEMBERS: ClassVar[UserScope]
    MEMBERS_AND_GUESTS: ClassVar[UserScope]
    ALL: ClassVar[UserScope]

    @classmethod
    def parse(cls, text: str) -> UserScope:
        """The scope named by SYNC_USERS; ValueError listing the valid names."""
        value = text.strip()
        kind, sep, group = value.partition(":")
        if kind.lower() == "group" and sep:
            if not _GUID.fullmatch(group.strip()):
                raise ValueError(f"{group.strip()!r} is not a group object id (a GUID)")
            return cls("group", group.strip().lower())
        if value.lower() in _KINDS[:-1]:
            return cls(value.lower())
        raise ValueError(f"{text!r} is not a user scope; use one of {', '.join(_KINDS)}")

    @property
    def value(self) -> str:
        return f"group:{self.group}" if self.group else self.kind

    @property
    def filter(self) -> str | None:
        """The `$filter` of the user list; None lists everyone."""
        if self.kind == "members":
            return f"userType eq 'Member' and {SHAREPOINT_LICENSED}"
        if self.kind == "enabled-members":
            return f"accountEnabled eq true and userType eq 'Member' and {SHAREPOINT_LICENSED}"
        if self.kind == "members-and-guests":
            return f"userType eq 'Guest' or (userType eq 'Member' and {SHAREPOINT_LICENSED})"
        return None

    def list_url(self, graph_url: str, page_size: int) -> str:
        """The first page of the user list (ids only); `@odata.nextLink` goes on from it."""
        if self.group:
            # Users of the group and of the groups nested in it; the cast drops other members.
            return (
                f"{graph_url}/groups/{self.group}/transitiveMembers/microsoft.graph.user"
                f"?$select=id&$top={page_size}"
            )
        url = f"{graph_url}/users?$select=id&$top={page_size}"
        if self.filter is None:
            return url
        return f"{url}&$count=true&$filter={quote(self.filter, safe=chr(39) + '/:(),=')}"

    def list_headers(self) -> dict[str, str]:
        """Graph's advanced-query header, which a filtered list needs."""
        return {} if self.filter is None else {"ConsistencyLevel": "eventual"}


UserScope.MEMBERS = UserScope("members")
UserScope.ENABLED_MEMBERS = UserScope("enabled-members")
UserScope.MEMBERS_AND_GUESTS = UserScope("members-and-guests")
UserScope.ALL = UserScope("all")
