"""The production services never depend on the development tools: the production package and
image hold no devtools/, so an import of it would fail only once deployed."""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent


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
