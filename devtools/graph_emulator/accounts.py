"""The kinds of account a real directory holds, and what SharePoint answers for each.

    mix = TenantMix.parse("realistic")            # or "none", or "guests=0.05,rooms=0.01"
    users = apply_mix(generate_users(500, seed), mix, seed)
    error = profile_read_error(user)               # None when SharePoint has a profile

A generated user is a licensed member with a personal site. A tenant mix turns a share of
them into guests (``#EXT#`` user principal names, ``userType`` Guest), shared mailboxes,
room and equipment accounts (disabled, unlicensed, as Exchange creates them), unlicensed
members, members whose personal site was never provisioned, and disabled members (who keep
their licence and profile). Which users change is drawn from its own seeded generator, so
a seed gives the same users (ids, names, profiles) with or without a mix.

Whether a user has a SharePoint profile follows their ``assignedPlans`` (a SharePoint
service plan with ``capabilityStatus`` Enabled) and ``mySite`` (null: no personal site).
Microsoft documents no per-user error for reading SharePoint-backed properties of such
accounts; the answers below are the ones reported in Microsoft's own trackers:

- no SharePoint licence: 400 ``BadRequest`` "Tenant does not have a SPO license."
  (https://github.com/microsoftgraph/microsoft-graph-docs/issues/4233, for the
  SharePoint-backed user properties ``aboutMe``, ``skills``, ...);
- no personal site: "Unable to retrieve user's mysite URL.", reported with the code
  ``UnknownError`` (https://github.com/microsoftgraph/microsoft-graph-docs/issues/11344,
  https://github.com/Azure-Samples/ms-identity-python-daemon/issues/18) and ``BadRequest``
  (https://github.com/qkqpttgf/OneManager-php/issues/264); the emulator answers 400
  ``UnknownError``;
- SharePoint's transient ``Microsoft.SharePoint.SPException`` "Cannot complete this action.
  Please try again." (https://github.com/microsoftgraph/msgraph-sdk-dotnet/issues/580) is not
  emulated as such; injected 5xx failures (``failureRate``) stand for it.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from typing import Any, Final

from devtools.graph_emulator.errors import GraphError
from devtools.graph_emulator.schema import UserRecord

__all__ = [
    "SHAREPOINT_PLAN_IDS",
    "TenantMix",
    "apply_mix",
    "has_sharepoint_licence",
    "licensed_plans",
    "profile_read_error",
    "set_sharepoint",
]

#: Service plans of SharePoint Online (Plan 2, as in Office 365 E3/E5; Plan 1) and of
#: Exchange Online (Plan 2), as Microsoft's licensing service plan reference lists them.
SHAREPOINT_PLAN_IDS: Final = (
    "5dbe027f-2339-4123-9542-606e4d348a72",
    "c7699d2e-19aa-44de-8edf-1736da088ca1",
)
_EXCHANGE_PLAN_ID: Final = "efb87545-963c-4e0d-99df-69c6916d9eb0"
#: ``assignedPlan.service`` of SharePoint Online plans.
SHAREPOINT_SERVICE: Final = "SharePoint"

NO_LICENCE_MESSAGE: Final = "Tenant does not have a SPO license."
NO_PERSONAL_SITE_MESSAGE: Final = "Unable to retrieve user's mysite URL."


def licensed_plans(assigned: str) -> list[dict[str, Any]]:
    """The ``assignedPlans`` of a member with an Office 365 E3-like licence."""
    return [
        {
            "assignedDateTime": assigned,
            "capabilityStatus": "Enabled",
            "service": SHAREPOINT_SERVICE,
            "servicePlanId": SHAREPOINT_PLAN_IDS[0],
        },
        {
            "assignedDateTime": assigned,
            "capabilityStatus": "Enabled",
            "service": "exchange",
            "servicePlanId": _EXCHANGE_PLAN_ID,
        },
    ]


def has_sharepoint_licence(user: UserRecord) -> bool:
    return any(
        isinstance(plan, dict)
        and plan.get("service") == SHAREPOINT_SERVICE
        and plan.get("capabilityStatus") == "Enabled"
        for plan in user.get("assignedPlans") or []
    )


def profile_read_error(user: UserRecord) -> GraphError | None:
    """Why SharePoint-backed properties of ``user`` cannot be read or written; None if they can."""
    if not has_sharepoint_licence(user):
        return GraphError(400, "BadRequest", NO_LICENCE_MESSAGE)
    if not user.get("mySite"):
        return GraphError(400, "UnknownError", NO_PERSONAL_SITE_MESSAGE)
    return None


def set_sharepoint(
    user: UserRecord, *, licensed: bool | None = None, personal_site: bool | None = None
) -> None:
    """Gives or takes a user's SharePoint licence and personal site (the admin API's switch)."""
    if licensed is not None:
        others = [
            plan
            for plan in user.get("assignedPlans") or []
            if not (isinstance(plan, dict) and plan.get("service") == SHAREPOINT_SERVICE)
        ]
        if licensed:
            others = licensed_plans(str(user.get("createdDateTime") or ""))[:1] + others
        user["assignedPlans"] = others
    if personal_site is not None:
        alias = str(user.get("mailNickname") or user["id"]).replace(".", "_")
        user["mySite"] = (
            f"https://contoso-my.sharepoint.com/personal/{alias}/" if personal_site else None
        )


#: Kinds of a mix: JSON / command-line name -> attribute.
MIX_NAMES: Final = {
    "guests": "guests",
    "sharedMailboxes": "shared_mailboxes",
    "rooms": "rooms",
    "equipment": "equipment",
    "unlicensed": "unlicensed",
    "noPersonalSite": "no_personal_site",
    "disabled": "disabled",
}


@dataclass(frozen=True)
class TenantMix:
    """Shares (0..1) of the tenant's users turned into each kind of account."""

    guests: float = 0.0
    shared_mailboxes: float = 0.0
    rooms: float = 0.0
    equipment: float = 0.0
    unlicensed: float = 0.0
    no_personal_site: float = 0.0
    disabled: float = 0.0

    @classmethod
    def realistic(cls) -> TenantMix:
        """A few percent of each, as in a mid-sized company's directory."""
        return cls(
            guests=0.04,
            shared_mailboxes=0.02,
            rooms=0.02,
            equipment=0.01,
            unlicensed=0.02,
            no_personal_site=0.02,
            disabled=0.02,
        )

    @property
    def total(self) -> float:
        return sum(float(getattr(self, attr)) for attr in MIX_NAMES.values())

    def to_json(self) -> dict[str, float]:
        return {name: getattr(self, attr) for name, attr in MIX_NAMES.items()}

    @classmethod
    def parse(cls, text: str) -> TenantMix:
        """``realistic``, ``none``, or ``name=share,...`` (names of ``to_json``); ValueError
        naming the problem otherwise."""
        value = text.strip()
        if value == "realistic":
            return cls.realistic()
        if value in ("none", ""):
            return cls()
        changes: dict[str, float] = {}
        for part in value.split(","):
            name, sep, raw = part.partition("=")
            name = name.strip()
            if not sep or name not in MIX_NAMES:
                raise ValueError(
                    f"{part.strip()!r} is not name=share; names: " + ", ".join(MIX_NAMES)
                )
            try:
                share = float(raw)
            except ValueError:
                raise ValueError(f"{name}: {raw.strip()!r} is not a number") from None
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"{name}: the share must be between 0 and 1")
            changes[MIX_NAMES[name]] = share
        mix = dataclasses.replace(cls(), **changes)
        if mix.total > 1.0:
            raise ValueError(f"the shares add up to {mix.total:g}, more than 1")
        return mix


def _guest(user: UserRecord) -> None:
    alias = str(user["mailNickname"])
    home = "fabrikam.com"
    domain = str(user["userPrincipalName"]).partition("@")[2]
    user.update(
        userPrincipalName=f"{alias}_{home}#EXT#@{domain}",
        mail=f"{alias}@{home}",
        mailNickname=f"{alias}_{home}#EXT#",
        userType="Guest",
        companyName=None,
        jobTitle=None,
        department=None,
        assignedPlans=[],
        mySite=None,
    )


def _resource(user: UserRecord, kind: str, index: int) -> None:
    """A shared mailbox, room or equipment account: Exchange creates them disabled, and
    they need no licence."""
    names = {
        "shared": ("Shared mailbox", "shared"),
        "room": ("Meeting room", "room"),
        "equipment": ("Equipment", "equipment"),
    }
    label, prefix = names[kind]
    alias = f"{prefix}{index:04d}"
    domain = str(user["userPrincipalName"]).partition("@")[2]
    user.update(
        userPrincipalName=f"{alias}@{domain}",
        mail=f"{alias}@{domain}",
        mailNickname=alias,
        displayName=f"{label} {index:04d}",
        givenName=None,
        surname=None,
        jobTitle=None,
        department=None,
        accountEnabled=False,
        assignedPlans=[],
        mySite=None,
    )


def apply_mix(users: list[UserRecord], mix: TenantMix, seed: int) -> list[UserRecord]:
    """Turns shares of ``users`` (in place) into the kinds of ``mix``; returns them."""
    if mix.total <= 0 or not users:
        return users
    rng = random.Random(f"mix:{seed}")
    order = list(range(len(users)))
    rng.shuffle(order)
    start = 0
    for attr in MIX_NAMES.values():
        count = round(getattr(mix, attr) * len(users))
        for position, index in enumerate(order[start : start + count]):
            user = users[index]
            if attr == "guests":
                _guest(user)
            elif attr == "shared_mailboxes":
                _resource(user, "shared", position)
            elif attr == "rooms":
                _resource(user, "room", position)
            elif attr == "equipment":
                _resource(user, "equipment", position)
            elif attr == "unlicensed":
                set_sharepoint(user, licensed=False, personal_site=False)
            elif attr == "no_personal_site":
                set_sharepoint(user, personal_site=False)
            else:  # disabled: the account cannot sign in; its licence and profile stay
                user["accountEnabled"] = False
        start += count
    return users
