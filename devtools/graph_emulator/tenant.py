"""Deterministic generation of a tenant's users from ``(users, seed)``.

The same pair always yields the same users (ids included), so tests, the demo and benchmarks
can refer to users across runs. Only ``random.Random(seed)`` drives the choices; nothing
depends on hash randomisation or the clock.
"""

from __future__ import annotations

import random
import unicodedata
import uuid
from datetime import UTC, datetime, timedelta
from typing import Final

from devtools.graph_emulator import vocab
from devtools.graph_emulator.accounts import TenantMix, apply_mix, licensed_plans
from devtools.graph_emulator.defaults import DEFAULT_TENANT_DOMAIN
from devtools.graph_emulator.schema import UserRecord

#: Share of users whose SharePoint profile was never filled in.
EMPTY_PROFILE_SHARE: Final = 0.15

_OFFICE_PLACES: Final[dict[str, tuple[str, str, str]]] = {
    # office -> (city, country, usageLocation)
    "Redmond Building 18": ("Redmond", "United States", "US"),
    "Seattle HQ 12/1105": ("Seattle", "United States", "US"),
    "New York 5th Avenue": ("New York", "United States", "US"),
    "London Paddington": ("London", "United Kingdom", "GB"),
    "Dublin Leopardstown": ("Dublin", "Ireland", "IE"),
    "Paris Issy-les-Moulineaux": ("Issy-les-Moulineaux", "France", "FR"),
    "München Schwabing": ("München", "Germany", "DE"),
    "Zürich Oerlikon": ("Zürich", "Switzerland", "CH"),
    "Amsterdam Zuidas": ("Amsterdam", "Netherlands", "NL"),
    "Stockholm Kista": ("Kista", "Sweden", "SE"),
    "Warszawa Mokotów": ("Warszawa", "Poland", "PL"),
    "Madrid La Finca": ("Pozuelo de Alarcón", "Spain", "ES"),
    "São Paulo Vila Olímpia": ("São Paulo", "Brazil", "BR"),
    "Toronto Front Street": ("Toronto", "Canada", "CA"),
    "Bengaluru Whitefield": ("Bengaluru", "India", "IN"),
    "Hyderabad Gachibowli": ("Hyderabad", "India", "IN"),
    "Singapore Marina One": ("Singapore", "Singapore", "SG"),
    "Tokyo Shinagawa": ("Tokyo", "Japan", "JP"),
    "Sydney North Ryde": ("Sydney", "Australia", "AU"),
    "Remote": ("Redmond", "United States", "US"),
}

_LANGUAGES: Final = (
    "en-US",
    "en-US",
    "en-GB",
    "fr-FR",
    "de-DE",
    "es-ES",
    "pt-BR",
    "ja-JP",
    "sv-SE",
    "pl-PL",
    "it-IT",
    "nl-NL",
    None,
)

# Letters NFKD does not decompose into ASCII.
_TRANSLIT: Final = str.maketrans(
    {
        "ø": "o",
        "Ø": "O",
        "ß": "ss",
        "æ": "ae",
        "Æ": "AE",
        "ł": "l",
        "Ł": "L",
        "đ": "d",
        "\u0131": "i",
        "œ": "oe",
        "å": "a",
        "Å": "A",
    }
)

_EPOCH: Final = datetime(2024, 1, 1, tzinfo=UTC)


def ascii_alias(name: str) -> str:
    """Lower-case ASCII mail alias part: accents folded, spaces and apostrophes dropped."""
    folded = unicodedata.normalize("NFKD", name.translate(_TRANSLIT))
    return "".join(c for c in folded.lower() if c.isascii() and c.isalnum())


def _guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _sample(rng: random.Random, pool: tuple[str, ...], low: int, high: int) -> list[str]:
    return rng.sample(pool, rng.randint(low, high))


def _about_me(
    rng: random.Random,
    department: str,
    title: str,
    office: str,
    skills: list[str],
    interests: list[str],
    projects: list[str],
) -> str:
    skill = skills[0] if skills else rng.choice(vocab.SKILLS)
    interest = interests[0] if interests else rng.choice(vocab.INTERESTS)
    project = projects[0] if projects else rng.choice(vocab.PROJECT_CODENAMES)
    opener = rng.choice(vocab.ABOUT_ME_OPENERS).format(
        company="Contoso",
        years=rng.randint(1, 18),
        department=department,
        office=office,
        skill=skill,
        interest=interest,
        project=project,
        project2=rng.choice(vocab.PROJECT_CODENAMES),
        title=title,
    )
    closer = rng.choice(vocab.ABOUT_ME_CLOSERS).format(interest_lower=interest.lower())
    return f"{opener} {closer}"


def generate_user(
    rng: random.Random, taken_aliases: dict[str, int], domain: str = DEFAULT_TENANT_DOMAIN
) -> UserRecord:
    """One realistic user; ``taken_aliases`` keeps user principal names unique."""
    user_id = _guid(rng)
    first = rng.choice(vocab.FIRST_NAMES)
    last = rng.choice(vocab.SURNAMES)
    alias = f"{ascii_alias(first)}.{ascii_alias(last)}"
    count = taken_aliases.get(alias, 0) + 1
    taken_aliases[alias] = count
    if count > 1:
        alias = f"{alias}{count}"
    upn = f"{alias}@{domain}"
    department = rng.choice(vocab.DEPARTMENTS)
    title = rng.choice(vocab.JOB_TITLES[department])
    office = rng.choice(vocab.OFFICES)
    city, country, usage = _OFFICE_PLACES[office]
    created = _EPOCH - timedelta(days=rng.randint(0, 3650), seconds=rng.randint(0, 86399))
    has_phone = rng.random() < 0.8
    phone = f"+1 425 555 {rng.randint(0, 9999):04d}"

    user: UserRecord = {
        "id": user_id,
        "userPrincipalName": upn,
        "displayName": f"{first} {last}",
        "givenName": first,
        "surname": last,
        "mail": upn,
        "mailNickname": alias,
        "jobTitle": title,
        "department": department,
        "officeLocation": office,
        "businessPhones": [phone] if has_phone else [],
        "mobilePhone": f"+1 206 555 {rng.randint(0, 9999):04d}" if rng.random() < 0.4 else None,
        "preferredLanguage": rng.choice(_LANGUAGES),
        "accountEnabled": rng.random() > 0.02,
        "userType": "Member",
        "companyName": "Contoso",
        "city": city,
        "country": country,
        "usageLocation": usage,
        "employeeId": f"{rng.randint(100000, 999999)}",
        "createdDateTime": _iso(created),
        # Licensed from the day the account was made (no draw: seeds keep their tenants).
        "assignedPlans": licensed_plans(_iso(created)),
        "mySite": f"https://contoso-my.sharepoint.com/personal/{alias.replace('.', '_')}_"
        f"{domain.replace('.', '_')}/",
    }

    if rng.random() < EMPTY_PROFILE_SHARE:
        # Never opened Delve: nothing filled in.
        user.update(
            aboutMe=None,
            skills=[],
            pastProjects=[],
            schools=[],
            interests=[],
            responsibilities=[],
        )
        return user

    skills = _sample(rng, vocab.SKILLS, 1, 9)
    interests = _sample(rng, vocab.INTERESTS, 0, 6)
    projects = [
        f"{name} {rng.choice(vocab.PROJECT_SUFFIXES)}" if rng.random() < 0.5 else name
        for name in _sample(rng, vocab.PROJECT_CODENAMES, 0, 5)
    ]
    user["skills"] = skills
    user["interests"] = interests
    user["pastProjects"] = projects
    user["schools"] = _sample(rng, vocab.SCHOOLS, 0, 3)
    user["responsibilities"] = _sample(rng, vocab.RESPONSIBILITIES, 0, 4)
    user["aboutMe"] = (
        _about_me(rng, department, title, office, skills, interests, projects)
        if rng.random() < 0.9
        else None
    )
    # This draw once filled preferredName, which Graph does not support (always ""); it is
    # still made so that every seed keeps generating the tenant it always did.
    rng.random()
    if rng.random() < 0.5:
        born = datetime(1960, 1, 1, tzinfo=UTC) + timedelta(days=rng.randint(0, 15000))
        user["birthday"] = _iso(born)
    if rng.random() < 0.6:
        user["hireDate"] = _iso(created.replace(hour=0, minute=0, second=0))
    return user


def generate_users(
    count: int,
    seed: int,
    domain: str = DEFAULT_TENANT_DOMAIN,
    mix: TenantMix | None = None,
) -> list[UserRecord]:
    """``count`` users, identical for identical ``(count, seed, mix)``; without a mix, a
    prefix for a larger count. ``mix`` turns shares of them into guests, rooms, ... (see
    accounts.py); every user is a licensed member with a profile without one."""
    if count < 0:
        raise ValueError("count must be >= 0")
    rng = random.Random(seed)
    taken: dict[str, int] = {}
    users = [generate_user(rng, taken, domain) for _ in range(count)]
    return apply_mix(users, mix, seed) if mix is not None else users
