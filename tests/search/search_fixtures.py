"""Test data for the search tests: a generated tenant as profile dicts, and
profiles that exercise the edges of analysis and matching."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from devtools.graph_emulator.tenant import generate_users
from services.common.profiles import PROFILE_FIELDS, digest
from services.common.redis_client import connect
from services.search import SearchIndex

TENANT_SIZE = 700
TENANT_SEED = 20240607

# Profiles that exercise the edges of analysis and matching.
EDGE_PROFILES: list[dict[str, Any]] = [
    {
        "id": "00000000-0000-4000-8000-000000000001",
        "displayName": "Zoë Ångström",
        "jobTitle": "Principal Engineer",
        "department": "Research & Development",
        "aboutMe": "Straße in München. C++ and C# fan; O'Brien's friend. Machine. Learning!",
        "skills": ["Kubernetes", "C++", "C#"],
        "pastProjects": ["Apollo migration"],
        "schools": ["ETH Zürich"],
        "interests": ["3D printing"],
    },
    {
        "id": "00000000-0000-4000-8000-000000000002",
        "displayName": "Kube Admin",
        "jobTitle": "Site Reliability Engineer",
        "department": "IT",
        "aboutMe": "",
        "skills": ["Kubernetes operators", "machine", "learning"],
        "pastProjects": ["Apollo"],
        "schools": [],
        "interests": [],
    },
    {
        "id": "00000000-0000-4000-8000-000000000003",
        "displayName": "Seán O'Brien",
        "jobTitle": "Data Scientist",
        "department": "Data & Analytics",
        "aboutMe": "I do machine learning ops at scale and CI/CD for node.js services.",
        "skills": ["Machine learning ops", "Node.js", "CI/CD"],
        "pastProjects": ["Apollo rollout", "Beacon pilot"],
        "schools": ["University of Washington"],
        "interests": ["Kubernetes at home"],
    },
    {
        # Every word pair of "big data lakes" and "kubernetes operators guide",
        # but never the whole phrase in one value: must not match them.
        "id": "00000000-0000-4000-8000-000000000004",
        "displayName": "Pat Near Miss",
        "jobTitle": "Data Engineer",
        "department": "Data & Analytics",
        "aboutMe": "Big data pipelines feed our data lakes. I joined Contoso last year.",
        "skills": ["Kubernetes operators", "Operators guide", "Big data"],
        "pastProjects": ["Data lakes"],
        "schools": ["University of Washington Bothell"],
        "interests": [],
    },
]


def as_profile(user: Mapping[str, Any]) -> dict[str, Any]:
    """A Graph user record as the differ commits it: the profile fields only."""
    profile = {name: user.get(name) for name in PROFILE_FIELDS}
    for name in ("skills", "pastProjects", "schools", "interests"):
        profile[name] = list(profile.get(name) or [])
    for name in ("displayName", "jobTitle", "department", "aboutMe", "mail", "userPrincipalName"):
        profile[name] = profile.get(name) or ""
    profile["version"] = digest(profile)
    profile["fetchTime"] = "2025-01-02T03:04:05Z"
    return profile


def tenant_profiles() -> list[dict[str, Any]]:
    """The generated tenant plus the edge profiles, as fresh dicts."""
    users = [as_profile(u) for u in generate_users(TENANT_SIZE, TENANT_SEED)]
    return users + [as_profile(p) for p in EDGE_PROFILES]


def db_url(redis_url: str, db: int) -> str:
    """The session's redis-server, another database (so a module can keep its data)."""
    return redis_url.rsplit("/", 1)[0] + f"/{db}"


def index_in_own_db(redis_url: str, db: int, tenant: list[dict[str, Any]]) -> None:
    """Indexes `tenant` in database `db` of the session's redis-server, emptied first."""

    async def build() -> None:
        client = connect(db_url(redis_url, db))
        try:
            await client.flushdb()
            await SearchIndex(client).apply(tenant, [])
        finally:
            await client.aclose()

    asyncio.run(build())
