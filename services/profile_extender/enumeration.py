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
- `all`: every user `/users` lists, unfiltered (no advanced query).

A lambda over `assignedPlans` is an advanced query: Graph answers it only with
the `ConsistencyLevel: eventual` header and `$count=true`
(https://learn.microsoft.com/graph/aad-advanced-queries, "List users with a
particular service plan"; the user resource lists `assignedPlans` as
filterable). Advanced queries are eventually consistent: a licence given a
moment ago may show at the next sync.
"""

from __future__ import annotations

import enum
from typing import Final
from urllib.parse import quote

__all__ = ["SHAREPOINT_LICENSED", "UserScope"]

#: Users holding an enabled SharePoint Online service plan (`assignedPlan.service`).
SHAREPOINT_LICENSED: Final = (
    "assignedPlans/any(p:p/service eq 'SharePoint' and p/capabilityStatus eq 'Enabled')"
)


class UserScope(enum.Enum):
    MEMBERS = "members"
    ENABLED_MEMBERS = "enabled-members"
    MEMBERS_AND_GUESTS = "members-and-guests"
    ALL = "all"

    @classmethod
    def parse(cls, text: str) -> UserScope:
        """The scope named by SYNC_USERS; ValueError listing the valid names."""
        try:
            return cls(text.strip().lower())
        except ValueError:
            names = ", ".join(scope.value for scope in cls)
            raise ValueError(f"{text!r} is not a user scope; use one of {names}") from None

    @property
    def filter(self) -> str | None:
        """The `$filter` of the user list; None lists everyone."""
        if self is UserScope.MEMBERS:
            return f"userType eq 'Member' and {SHAREPOINT_LICENSED}"
        if self is UserScope.ENABLED_MEMBERS:
            return f"accountEnabled eq true and userType eq 'Member' and {SHAREPOINT_LICENSED}"
        if self is UserScope.MEMBERS_AND_GUESTS:
            return f"userType eq 'Guest' or (userType eq 'Member' and {SHAREPOINT_LICENSED})"
        return None

    def list_url(self, graph_url: str, page_size: int) -> str:
        """The first page of the user list (ids only); `@odata.nextLink` goes on from it."""
        url = f"{graph_url}/users?$select=id&$top={page_size}"
        if self.filter is None:
            return url
        return f"{url}&$count=true&$filter={quote(self.filter, safe=chr(39) + '/:(),=')}"

    def list_headers(self) -> dict[str, str]:
        """Graph's advanced-query header, which a filtered list needs."""
        return {} if self.filter is None else {"ConsistencyLevel": "eventual"}
