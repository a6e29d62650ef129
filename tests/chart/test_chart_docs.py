"""Every value is documented where it is declared, typed in the schema, and listed in the
chart's README; the schema knows no value the chart does not have."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import yaml
from chart_harness import CHART_DIR, chart_script

PARAM = re.compile(r"^\s*## @param (\S+) (.+)$")


def values_text() -> str:
    return (CHART_DIR / "values.yaml").read_text()


def documented() -> dict[str, str]:
    return {m.group(1): m.group(2) for m in map(PARAM.match, values_text().splitlines()) if m}


def value_paths(node: dict[str, Any], docs: dict[str, str], prefix: str = "") -> Iterator[str]:
    """Paths of the values a user sets: documented ones, or leaves that should have been."""
    for key, value in node.items():
        path = f"{prefix}{key}"
        if path in docs or not isinstance(value, dict) or not value:
            yield path
        else:
            yield from value_paths(value, docs, f"{path}.")


def schema_at(schema: dict[str, Any], path: str) -> dict[str, Any] | None:
    node: dict[str, Any] | None = schema
    for part in path.split("."):
        if node is None:
            return None
        node = node.get("properties", {}).get(part)
    return node


def schema_paths(schema: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for key, node in schema.get("properties", {}).items():
        path = f"{prefix}{key}"
        yield path
        yield from schema_paths(node, f"{path}.")


def test_every_value_is_documented_where_it_is_declared() -> None:
    docs = documented()
    values = yaml.safe_load(values_text())
    undocumented = [p for p in value_paths(values, docs) if p not in docs]
    assert not undocumented, f"add '## @param <name> <description>' above {undocumented}"
    unknown = sorted(set(docs) - set(value_paths(values, docs)))
    assert not unknown, f"'## @param' lines name values that do not exist: {unknown}"


def test_schema_types_every_value_and_refuses_unknown_keys() -> None:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    values = yaml.safe_load(values_text())
    docs = documented()
    untyped = [p for p in value_paths(values, docs) if schema_at(schema, p) is None]
    assert not untyped, f"values.schema.json lacks {untyped}"
    all_values = set(value_paths(values, {}))
    parents = {p.rsplit(".", 1)[0] for p in all_values if "." in p}
    stale = [
        p
        for p in schema_paths(schema)
        if p != "global"
        and p not in all_values
        and p not in parents
        and p not in docs
        and not any(p.startswith(f"{d}.") for d in docs if d.endswith("subscribers"))
    ]
    assert not stale, f"values.schema.json describes values the chart does not have: {stale}"
    # Every object the chart defines is closed, so a misspelled key fails the install.
    open_objects = [
        p
        for p in parents | {""}
        if (node := schema if not p else schema_at(schema, p)) is not None
        and "properties" in node
        and node.get("additionalProperties") is not False
    ]
    assert not open_objects, f"these objects accept unknown keys: {open_objects}"


def test_chart_readme_lists_every_value() -> None:
    readme = (CHART_DIR / "README.md").read_text()
    assert readme == chart_script().with_parameter_table(readme), (
        "charts/profile-sync/README.md is out of date: run `python scripts/chart_test.py readme`"
    )
    for path in documented():
        assert f"| `{path}` |" in readme


def test_chart_deploys_the_version_the_project_builds() -> None:
    import tomllib

    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    project = tomllib.loads((CHART_DIR.parent.parent / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"]
