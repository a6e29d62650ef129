"""The Redis Lua scripts live in `.lua` files, each with its contract in a header, all in use.

A script in a Python string is invisible to anyone reading the Lua, and a
`.lua` file nothing loads is dead code that still looks authoritative.
"""

from __future__ import annotations

import importlib
import pathlib
import pkgutil
import shutil
import subprocess
import sys
import zipfile

import pytest

from services.common import lua_scripts
from services.common.lua_scripts import LUA_FOLDER, LuaScript

ROOT = pathlib.Path(__file__).resolve().parents[2]
PYTHON_TREES = ("services", "tests", "bench", "scripts")
# Spelled in two parts so that this file passes its own check.
LUA_CALL = "redis" + ".call"
HEADER_LINES = ("-- KEYS:", "-- ARGV:", "-- Returns:")


def _lua_files() -> list[pathlib.Path]:
    return sorted((ROOT / "services").rglob(f"{LUA_FOLDER}/*.lua"))


def _package_of(path: pathlib.Path) -> str:
    return ".".join(path.parent.parent.relative_to(ROOT).parts)


def test_no_python_file_holds_redis_lua() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for tree in PYTHON_TREES
        for path in sorted((ROOT / tree).rglob("*.py"))
        if LUA_CALL in path.read_text(encoding="utf-8")
    ]
    assert offenders == [], f"Lua source in Python files (move it to a lua/*.lua): {offenders}"


def test_the_tree_has_lua_scripts() -> None:
    packages = {_package_of(path) for path in _lua_files()}
    assert {"services.search", "services.lob_notifier", "services.snapshot_differ"} <= packages


@pytest.mark.parametrize("path", _lua_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_every_lua_file_opens_with_its_keys_arguments_and_answer(path: pathlib.Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    header = []
    for line in lines:
        if not line.startswith("--"):
            break
        header.append(line)
    assert header and header[0].startswith(f"-- {path.name}"), (
        f"{path.name} should open with '-- {path.name}: what it does'"
    )
    missing = [tag for tag in HEADER_LINES if not any(line.startswith(tag) for line in header)]
    assert missing == [], f"{path.name}'s header lacks {missing}"


def test_every_lua_file_is_loaded_by_some_module() -> None:
    packages = sorted({_package_of(path) for path in _lua_files()})
    for package in packages:
        module = importlib.import_module(package)
        for info in pkgutil.iter_modules(module.__path__):
            if not info.name.startswith("__"):  # never run a service's __main__
                importlib.import_module(f"{package}.{info.name}")
    unused = {(_package_of(path), path.name) for path in _lua_files()}
    unused -= lua_scripts.loaded_files()
    assert unused == set(), f"Lua files no module loads: {sorted(unused)}"


def test_includes_are_expanded_into_the_script_redis_runs() -> None:
    publish = LuaScript("services.lob_notifier", "publish.lua")
    assert "-- include:" not in publish.source
    assert "local function last_id(stream)" in publish.source
    assert "local function trim_by_age(stream, max_age_ms)" in publish.source


def test_a_missing_script_fails_at_import_naming_the_file() -> None:
    with pytest.raises(FileNotFoundError, match=r"no_such_script\.lua"):
        LuaScript("services.search", "no_such_script.lua")


def test_an_installed_package_carries_every_lua_file(tmp_path: pathlib.Path) -> None:
    """`pip install .` (and so the image, which installs the same way) ships the scripts."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "services", source / "services", ignore=shutil.ignore_patterns("__pycache__")
    )
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"]
    subprocess.run(
        [*pip_wheel, "--no-build-isolation", "--wheel-dir", str(tmp_path / "wheel"), str(source)],
        check=True,
        timeout=240,
    )
    (wheel,) = (tmp_path / "wheel").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name for name in archive.namelist() if name.endswith(".lua")}
    expected = {str(path.relative_to(ROOT)) for path in _lua_files()}
    assert shipped == expected
