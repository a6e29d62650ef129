from __future__ import annotations

from devtools.graph_emulator.schema import USER_PROPERTIES
from devtools.graph_emulator.tenant import ascii_alias, generate_users

PROFILE_LISTS = ("skills", "pastProjects", "schools", "interests", "responsibilities")


def test_same_seed_same_tenant() -> None:
    assert generate_users(120, seed=3) == generate_users(120, seed=3)


def test_other_seed_other_tenant() -> None:
    first = generate_users(50, seed=3)
    other = generate_users(50, seed=4)
    assert {u["id"] for u in first}.isdisjoint({u["id"] for u in other})
    assert [u["displayName"] for u in first] != [u["displayName"] for u in other]


def test_smaller_tenant_is_a_prefix_of_a_larger_one() -> None:
    assert generate_users(500, seed=9)[:40] == generate_users(40, seed=9)


def test_users_are_unique_and_well_formed() -> None:
    users = generate_users(3000, seed=11)
    assert len({u["id"] for u in users}) == 3000
    upns = [u["userPrincipalName"].lower() for u in users]
    assert len(set(upns)) == 3000
    for user in users:
        assert set(user) <= set(USER_PROPERTIES)
        local, _, domain = user["userPrincipalName"].partition("@")
        assert domain == "contoso.onmicrosoft.com"
        assert local.isascii() and " " not in local
        assert user["mail"] == user["userPrincipalName"]
        assert user["aboutMe"] is None or isinstance(user["aboutMe"], str)
        for name in PROFILE_LISTS:
            assert isinstance(user[name], list)
            assert all(isinstance(v, str) for v in user[name])


def test_profiles_are_varied_with_some_empty() -> None:
    users = generate_users(4000, seed=5)
    empty = [u for u in users if u["aboutMe"] is None and not any(u[n] for n in PROFILE_LISTS)]
    assert 0.10 < len(empty) / len(users) < 0.22
    skills = {s for u in users for s in u["skills"]}
    assert len(skills) >= 150
    assert "Résumé writing" in skills and "Café management" in skills
    assert len({p for u in users for p in u["pastProjects"]}) > 100
    assert len({s for u in users for s in u["schools"]}) >= 60
    assert len({s for u in users for s in u["interests"]}) >= 60


def test_ascii_alias_folds_accents() -> None:
    assert ascii_alias("Søren") == "soren"
    assert ascii_alias("O'Brien") == "obrien"
    assert ascii_alias("Van der Berg") == "vanderberg"
    assert ascii_alias("Dąbrowski") == "dabrowski"


def test_large_tenants_keep_names_unique() -> None:
    # Far more users than first-name/surname pairs: aliases must be numbered apart.
    # (How fast a 100,000-user tenant is generated is measured by make bench.)
    users = generate_users(40_000, seed=1)
    assert len({u["userPrincipalName"] for u in users}) == 40_000
    assert len({u["id"] for u in users}) == 40_000
