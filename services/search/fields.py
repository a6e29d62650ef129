"""The searchable fields and the ranking rules, in one place.

A word's score in one profile is, for every field it matches in,
`field weight x match kind`, summed over the fields; a query's score is the
sum over its terms (see docs/search.md for the whole rule set). The index
stores only which profile has what, so these take effect without a rebuild.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

__all__ = [
    "FIELD_ALIASES",
    "FIELD_WEIGHTS",
    "PREFIX_MATCH",
    "SEARCH_FIELDS",
    "WHOLE_VALUE_MATCH",
    "WORD_MATCH",
    "resolve_field",
]

# lowerCamelCase profile fields, as the API spells them, with their weights.
# A name match ranks first (people search), then what the person knows and
# did; a mention in free text counts least.
FIELD_WEIGHTS: Final = MappingProxyType(
    {
        "displayName": 12.0,
        "skills": 10.0,
        "pastProjects": 8.0,
        "jobTitle": 6.0,
        "schools": 6.0,
        "interests": 6.0,
        "department": 5.0,
        "aboutMe": 2.0,
    }
)
SEARCH_FIELDS: Final = tuple(FIELD_WEIGHTS)

# Match kinds. The term is a whole value of the field (the skill "Kubernetes"
# itself rather than "Kubernetes operators"), a word or phrase inside a value,
# or a longer word found through `prefix*`. The search script adds scores as
# integers in half points, so these must be multiples of 1/2 (and weights
# whole numbers).
WHOLE_VALUE_MATCH: Final = 1.5
WORD_MATCH: Final = 1.0
PREFIX_MATCH: Final = 0.5

# Field names are matched without regard to case; these short forms are
# accepted too.
FIELD_ALIASES: Final = MappingProxyType(
    {
        **{name.lower(): name for name in SEARCH_FIELDS},
        "name": "displayName",
        "skill": "skills",
        "project": "pastProjects",
        "projects": "pastProjects",
        "school": "schools",
        "education": "schools",
        "interest": "interests",
        "hobby": "interests",
        "hobbies": "interests",
        "title": "jobTitle",
        "dept": "department",
        "about": "aboutMe",
    }
)


def resolve_field(name: str) -> str | None:
    """The field a query names (`Skills`, `skill`, `skills` -> `skills`), or None."""
    return FIELD_ALIASES.get(name.lower())
