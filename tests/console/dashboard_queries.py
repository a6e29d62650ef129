"""Reading the Grafana dashboard's and the alert rules' PromQL, and the services' metrics.

for where, expr in dashboard_queries(dashboard): metric_names(expr)
exported_names(metrics_text)      # sample names a /metrics page can produce
sample_values(metrics_text)       # (name, labels) -> value of every sample on the page
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import promql_parser
from prometheus_client.parser import text_string_to_metric_families

# Grafana's own variables, and what they stand for when the query is parsed.
GRAFANA_BUILTINS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
_LABEL_VALUES = re.compile(r"^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*\w+\s*\)$")

# The series a metric family of each type shows on /metrics (prometheus_client and Envoy).
_SUFFIXES = {
    "counter": ("_total", "_created", ""),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created", ""),
    "gauge": ("",),
    "untyped": ("",),
    "info": ("_info", ""),
}


def variables_in(expr: str) -> set[str]:
    return {braced or bare for braced, bare in _VARIABLE.findall(expr)}


def as_promql(expr: str) -> str:
    """The query with Grafana's variables replaced so a PromQL parser takes it: durations
    for the built-in ones, a match-anything regex for the dashboard's own (used in label
    matchers only)."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return GRAFANA_BUILTINS.get(name, ".*")

    return _VARIABLE.sub(substitute, expr)


def metric_names(expr: str) -> set[str]:
    """Every metric a PromQL expression selects; raises ValueError when it does not parse."""
    tree = promql_parser.parse(as_promql(expr))
    names: set[str] = set()

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)
        return True

    promql_parser.walk(tree, visit)
    return names


def dashboard_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target, rows' nested panels included."""
    for panel in _panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            yield f"panel {panel['id']} ({panel['title']}) {target['refId']}", target["expr"]


def variable_metrics(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(variable, metric) for each query variable of the form label_values(metric, label)."""
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]
        text = query["query"] if isinstance(query, dict) else query
        match = _LABEL_VALUES.match(text.strip())
        if match is None:
            raise ValueError(f"variable {variable['name']}: unsupported query {text!r}")
        yield variable["name"], match.group(1)


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def all_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return list(_panels(dashboard["panels"]))


def exported_names(metrics_text: str) -> set[str]:
    """Sample names a Prometheus text exposition can carry, from its `# TYPE` lines
    (present even for a labelled metric that has no samples yet) and its samples."""
    names: set[str] = set()
    for line in metrics_text.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split(maxsplit=3)
            names.update(family + suffix for suffix in _SUFFIXES.get(kind.strip(), ("",)))
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return names


def sample_values(metrics_text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """(sample name, labels) -> value, for a prometheus_client /metrics page."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
    }
