"""How the tree holds together: the production services never depend on the development tools
(the production package and image hold no devtools/, so such an import would fail only once
deployed), and the tests import their helpers one way."""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"


def imported_modules(path: pathlib.Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_no_service_imports_the_development_tools() -> None:
    offenders = {
        path.relative_to(ROOT).as_posix(): sorted(
            name for name in imported_modules(path) if name.split(".")[0] == "devtools"
        )
        for path in sorted((ROOT / "services").rglob("*.py"))
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_services_still_import_something_this_test_can_see() -> None:
    # Guards the test above against a walk that finds no files or no imports.
    assert "services.common.auth" in imported_modules(ROOT / "services" / "common" / "server.py")


def test_tests_import_their_helpers_by_bare_module_name() -> None:
    """A suite's own helpers sit beside its tests, helpers of several suites in tests/helpers
    (both on the path pytest sets up); never `tests.x.y`, a relative import or `conftest`."""
    wrong: dict[str, list[str]] = {}
    for path in sorted(TESTS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ImportFrom):
                continue
            module = node.module or ""
            if node.level or module == "conftest" or module.split(".")[0] == "tests":
                name = path.relative_to(ROOT).as_posix()
                wrong.setdefault(name, []).append("." * node.level + module)
    assert wrong == {}


def test_helper_modules_have_names_unique_across_the_suites() -> None:
    # Bare names share one namespace: two helpers called the same would shadow each other.
    names = [p.stem for p in TESTS.rglob("*.py") if p.name not in ("conftest.py", "__init__.py")]
    assert sorted({n for n in names if names.count(n) > 1}) == []
