"""The chart and the README name exactly the environment variables the services read.

What a service reads is found two ways: by building its settings from a recording
environment (`from_env`, whatever module reads the variable), and by scanning its package for
reads of a literal name (settings read outside `from_env`, or only on some branch).
"""

from __future__ import annotations

import ast
import functools
import pathlib
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from chart_harness import PREFIX, ROOT, VALUE_SETS, find, render

from services.common.settings import ConfigError, EnvReader

ENV_NAME = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")
# EnvReader's methods and os.environ / os.getenv: the ways code here reads a variable.
READER_METHODS = {"text", "optional", "integer", "number", "flag"}

# Variables some component reads that the chart leaves alone on purpose, and why.
NOT_FROM_CHART: dict[str, str] = {
    "READY_FILE": "for launchers on one machine; in a pod the probes ask the health service",
    "JOB_COMPLETION_INDEX": "set by Kubernetes in each pod of an Indexed Job",
    "SHARD_INDEX": "a pod's shard is its JOB_COMPLETION_INDEX; the differ sets it on its own Jobs",
    "SYNC_RUN_ID": "set by the differ on the Job it creates for an on-demand sync",
    "SYNC_DRY_RUN": "set by the differ on the Job it creates for an on-demand sync",
    "HOSTNAME": "set by Kubernetes to the pod name",
    "KUBERNETES_SERVICE_HOST": "set by Kubernetes in every pod",
    "AWS_DEFAULT_REGION": "injected by IRSA; the chart sets S3_REGION",
    "AWS_REGION": "injected by IRSA; the chart sets S3_REGION",
}
# Variables the chart may set that no service code reads (they configure libraries).
LIBRARY_VARIABLES: set[str] = set()
# Variables read in services/common by code every service runs, and where.
COMMON_READS: dict[str, str] = {
    "REDIS_CLUSTER": "services/common/redis_client.py: connect(), from each entry point",
}


# -- what the services read ------------------------------------------------------------------


class RecordingEnviron(dict[str, str]):
    """An environment that remembers every name asked for."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return super().__getitem__(key)


def _candidates() -> list[str]:
    # Values that satisfy the common shapes of a required setting.
    return ["localhost:1", "1", "s3://bucket/prefix", str(ROOT / "build" / "profilesync.pb")]


def read_by(build: Callable[[EnvReader], object], given: dict[str, str] | None = None) -> set[str]:
    """Names `build` reads, giving each required one a value until it succeeds."""
    values: dict[str, str] = dict(given or {})
    tried: dict[str, int] = {}
    read: set[str] = set()
    for _ in range(200):
        environ = RecordingEnviron(values)
        try:
            build(EnvReader(environ))
        except ConfigError as error:
            read |= environ.read
            match = re.match(r"([A-Z][A-Z0-9_]+)", str(error))
            assert match, f"configuration error without a variable name: {error}"
            name = match.group(1)
            attempt = tried.get(name, 0)
            assert attempt < len(_candidates()), f"no value satisfies {name}: {error}"
            values[name] = _candidates()[attempt]
            tried[name] = attempt + 1
            continue
        return read | environ.read
    raise AssertionError("settings never built")


def literal_reads(package: pathlib.Path) -> set[str]:
    """Literal names passed to EnvReader methods, os.environ or os.getenv under `package`."""
    found: set[str] = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            name = _read_name(node)
            if name and ENV_NAME.match(name):
                found.add(name)
    return found


def _read_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Subscript) and _is_environ(node.value):
        key = node.slice
        return key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else None
    if not isinstance(node, ast.Call) or not node.args:
        return None
    first = node.args[0]
    if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
        return None
    func = node.func
    if isinstance(func, ast.Attribute):
        if func.attr in READER_METHODS and not _is_environ(func.value):
            return first.value
        if func.attr == "get" and _is_environ(func.value):
            return first.value
        if func.attr == "getenv":
            return first.value
    return None


def _is_environ(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ"


def _settings_builders() -> dict[str, list[Callable[[EnvReader], object]]]:
    from services.gateway.launcher import LaunchSettings
    from services.gateway.settings import GatewaySettings
    from services.lob_notifier.settings import NotifierSettings
    from services.profile_extender.settings import ExtenderSettings
    from services.snapshot_differ.settings import DifferSettings

    return {
        "extender": [ExtenderSettings.from_env],
        "notifier": [NotifierSettings.from_env],
        "differ": [DifferSettings.from_env],
        "gateway": [GatewaySettings.from_env, LaunchSettings.from_env],
    }


PACKAGES = {
    "extender": "profile_extender",
    "notifier": "lob_notifier",
    "differ": "snapshot_differ",
    "gateway": "gateway",
}

# Settings that appear only with some values (branches `from_env` takes on them).
BRANCHES: dict[str, list[dict[str, str]]] = {
    "differ": [
        {"SNAPSHOT_STORE": "s3://bucket/prefix", "S3_REGION": "eu-west-1"},
        {"SYNC_MODE": "kubernetes", "POD_NAMESPACE": "profiles"},
    ],
}


@functools.cache
def component_reads(component: str) -> frozenset[str]:
    names = literal_reads(ROOT / "services" / PACKAGES[component])
    for build in _settings_builders()[component]:
        names |= read_by(build)
        for given in BRANCHES.get(component, []):
            names |= read_by(build, given)
    return frozenset(names)


def all_reads() -> set[str]:
    names = set().union(*(component_reads(c) for c in PACKAGES))
    return names | literal_reads(ROOT / "services")


# -- what the chart sets ---------------------------------------------------------------------

CHART_WORKLOADS = {
    "extender": [("Deployment", f"{PREFIX}-extender")],
    "notifier": [("Deployment", f"{PREFIX}-notifier")],
    "differ": [
        ("Deployment", f"{PREFIX}-differ"),
        ("CronJob", f"{PREFIX}-differ"),
        ("Deployment", f"{PREFIX}-differ-sweeper-0"),
    ],
}


@functools.cache
def chart_env(component: str) -> dict[str, set[str]]:
    """Variable -> the value sets in which the chart sets it for `component`."""
    found: dict[str, set[str]] = {}
    for value_set, values in VALUE_SETS.items():
        manifests = render(values)
        for kind, name in CHART_WORKLOADS[component]:
            try:
                workload = find(manifests, kind, name)
            except AssertionError:
                continue  # e.g. the differ server is off in this value set
            for container in _containers(workload):
                for entry in container.get("env", []):
                    found.setdefault(entry["name"], set()).add(value_set)
    return found


def _containers(workload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    yield from spec["template"]["spec"]["containers"]


# -- what the README documents ---------------------------------------------------------------


def readme_configuration() -> tuple[set[str], set[str]]:
    """(names in the first column of the configuration table, names anywhere in it)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    first_column: set[str] = set()
    anywhere: set[str] = set()
    for line in section.splitlines():
        if not line.startswith("|"):
            continue
        cells = line.split("|")
        first_column |= {n for n in re.findall(r"`([A-Z0-9_]+)`", cells[1]) if ENV_NAME.match(n)}
        anywhere |= {n for n in re.findall(r"`([A-Z0-9_]+)`", line) if ENV_NAME.match(n)}
    return first_column, anywhere


# -- the checks ------------------------------------------------------------------------------


@pytest.mark.parametrize("component", sorted(CHART_WORKLOADS))
def test_chart_sets_only_variables_the_service_reads(component: str) -> None:
    reads = component_reads(component) | LIBRARY_VARIABLES | set(COMMON_READS)
    unread = {
        name: sorted(sets) for name, sets in chart_env(component).items() if name not in reads
    }
    assert not unread, (
        f"the chart sets these for the {component}, which never reads them "
        f"(misspelled, or gone from the service?): {unread}"
    )


@pytest.mark.parametrize("component", sorted(CHART_WORKLOADS))
def test_chart_sets_every_variable_the_service_reads(component: str) -> None:
    missing = component_reads(component) - set(chart_env(component)) - set(NOT_FROM_CHART)
    assert not missing, (
        f"the {component} reads {sorted(missing)} but the chart never sets them: add a value "
        "in charts/profile-sync/values.yaml (documented, and in values.schema.json) and set "
        "the variable in templates/_env.tpl, or say in NOT_FROM_CHART why the chart leaves it"
    )


def test_reasons_for_leaving_a_variable_out_are_current() -> None:
    reads = all_reads()
    stale = sorted(name for name in NOT_FROM_CHART if name not in reads)
    assert not stale, f"no service reads {stale} any more: drop them from NOT_FROM_CHART"


def test_readme_documents_only_variables_the_services_read() -> None:
    documented, _ = readme_configuration()
    assert documented, "README.md has no configuration table"
    unread = sorted(documented - all_reads())
    assert not unread, f"README.md documents {unread}, which no service reads"


def docs_mentions() -> set[str]:
    """Variable names in the pages under docs/ (the README links them)."""
    names: set[str] = set()
    for page in (ROOT / "docs").glob("*.md"):
        names |= set(re.findall(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b", page.read_text()))
    return names


# Read, but not documented in the README or docs/ when this list was last updated. Drop an
# entry once its variable is documented; a new undocumented variable fails the test below.
UNDOCUMENTED: dict[str, str] = {}


def test_every_variable_the_services_read_is_documented() -> None:
    _, mentioned = readme_configuration()
    documented = mentioned | docs_mentions()
    environment = {"HOSTNAME", "KUBERNETES_SERVICE_HOST", "AWS_REGION", "AWS_DEFAULT_REGION"}
    missing = sorted(all_reads() - documented - environment - set(UNDOCUMENTED))
    assert not missing, f"document {missing} in the README's configuration table or in docs/"
    gone = sorted(set(UNDOCUMENTED) - all_reads())
    assert not gone, f"no service reads {gone} any more: drop them from UNDOCUMENTED"


def test_the_recorder_finds_what_a_settings_class_reads() -> None:
    from services.lob_notifier.settings import NotifierSettings

    names = read_by(NotifierSettings.from_env)
    assert {"REDIS_URL", "GRPC_PORT", "AZURE_TENANT_ID", "NOTIFIER_STREAM_KEY"} <= names
    assert "AZURE_CLIENT_SECRET" not in names
