"""What the emulator knows about ``microsoft.graph.user``: property names, types and rules."""

from __future__ import annotations

from typing import Any, Final, Literal

PropertyType = Literal["string", "strings", "bool", "datetime", "complex", "complexes"]

UserRecord = dict[str, Any]

#: Properties Graph v1.0 returns for a user when the request has no $select, in Graph's order.
DEFAULT_PROPERTIES: Final = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)

#: Stored in SharePoint Online rather than the directory: "returned only on $select", and only
#: when reading one user; asking for them on a list answers 501.
PROFILE_PROPERTIES: Final = frozenset(
    {
        "aboutMe",
        "birthday",
        "hireDate",
        "interests",
        "mySite",
        "pastProjects",
        "preferredName",
        "responsibilities",
        "schools",
        "skills",
    }
)

#: SharePoint-backed properties that need a delegated token and their own PATCH request
#: (Graph's update-user notes list exactly these).
SEPARATE_PATCH_PROPERTIES: Final = frozenset(
    {
        "aboutMe",
        "birthday",
        "interests",
        "mySite",
        "pastProjects",
        "responsibilities",
        "schools",
        "skills",
    }
)

#: Declared but not supported, with the value Graph always answers: "preferredName ... Not
#: Supported. This attribute returns an empty string."
#: https://learn.microsoft.com/en-us/graph/api/resources/user?view=graph-rest-1.0
#: Update user no longer lists it among the properties that can be updated.
UNSUPPORTED_PROPERTIES: Final[dict[str, Any]] = {"preferredName": ""}

#: Every property the emulator accepts in $select, with its type. Properties the generated
#: tenant does not fill are answered as null (or an empty collection), as Graph does.
USER_PROPERTIES: Final[dict[str, PropertyType]] = {
    "id": "string",
    "aboutMe": "string",
    "accountEnabled": "bool",
    "ageGroup": "string",
    "assignedLicenses": "complexes",
    "assignedPlans": "complexes",
    "birthday": "datetime",
    "businessPhones": "strings",
    "city": "string",
    "companyName": "string",
    "consentProvidedForMinor": "string",
    "country": "string",
    "createdDateTime": "datetime",
    "creationType": "string",
    "deletedDateTime": "datetime",
    "department": "string",
    "displayName": "string",
    "employeeHireDate": "datetime",
    "employeeId": "string",
    "employeeType": "string",
    "externalUserState": "string",
    "faxNumber": "string",
    "givenName": "string",
    "hireDate": "datetime",
    "identities": "complexes",
    "imAddresses": "strings",
    "interests": "strings",
    "isResourceAccount": "bool",
    "jobTitle": "string",
    "lastPasswordChangeDateTime": "datetime",
    "legalAgeGroupClassification": "string",
    "mail": "string",
    "mailNickname": "string",
    "mobilePhone": "string",
    "mySite": "string",
    "officeLocation": "string",
    "onPremisesDistinguishedName": "string",
    "onPremisesDomainName": "string",
    "onPremisesImmutableId": "string",
    "onPremisesLastSyncDateTime": "datetime",
    "onPremisesSamAccountName": "string",
    "onPremisesSecurityIdentifier": "string",
    "onPremisesSyncEnabled": "bool",
    "onPremisesUserPrincipalName": "string",
    "otherMails": "strings",
    "passwordPolicies": "string",
    "pastProjects": "strings",
    "postalCode": "string",
    "preferredDataLocation": "string",
    "preferredLanguage": "string",
    "preferredName": "string",
    "proxyAddresses": "strings",
    "responsibilities": "strings",
    "schools": "strings",
    "securityIdentifier": "string",
    "showInAddressList": "bool",
    "skills": "strings",
    "state": "string",
    "streetAddress": "string",
    "surname": "string",
    "usageLocation": "string",
    "userPrincipalName": "string",
    "userType": "string",
}

#: Directory properties a PATCH may change (with the right permission).
DIRECTORY_WRITABLE: Final = frozenset(
    {
        "accountEnabled",
        "businessPhones",
        "city",
        "companyName",
        "country",
        "department",
        "displayName",
        "employeeId",
        "employeeType",
        "faxNumber",
        "givenName",
        "jobTitle",
        "mail",
        "mailNickname",
        "mobilePhone",
        "officeLocation",
        "otherMails",
        "postalCode",
        "preferredLanguage",
        "state",
        "streetAddress",
        "surname",
        "usageLocation",
        "userPrincipalName",
        "userType",
    }
)

#: Answered by Graph when a date-typed profile property was never set.
UNSET_DATE: Final = "0001-01-01T00:00:00Z"


def property_value(user: UserRecord, name: str) -> Any:
    """The value Graph shows for ``name``: stored value, else null or an empty collection."""
    if name in UNSUPPORTED_PROPERTIES:
        return UNSUPPORTED_PROPERTIES[name]
    if name in user:
        return user[name]
    if name in ("birthday", "hireDate"):
        return UNSET_DATE
    return empty_value(name)


def empty_value(name: str) -> Any:
    """How Graph shows a property with no value: an empty collection, else null."""
    return [] if USER_PROPERTIES[name] in ("strings", "complexes") else None


def canonical_property(name: str) -> str | None:
    """Graph matches property names case-insensitively; return the declared spelling."""
    if name in USER_PROPERTIES:
        return name
    return _LOWER.get(name.lower())


_LOWER: Final = {name.lower(): name for name in USER_PROPERTIES}

#: Documented maximum lengths (characters) of user properties; others use the generous
#: defaults of ``user_changes``.
MAX_LENGTHS: Final = {
    "city": 128,
    "companyName": 64,
    "country": 128,
    "department": 64,
    "displayName": 256,
    "employeeId": 16,
    "givenName": 64,
    "jobTitle": 128,
    "mailNickname": 64,
    "mobilePhone": 64,
    "postalCode": 40,
    "state": 128,
    "streetAddress": 1024,
    "surname": 64,
    "usageLocation": 2,
}
