"""The Dockerfile, checked without a Docker engine: it parses, copies files that exist and are
in the build context, builds the generated code in the build stage, and runs as the user the
chart expects on a pinned base."""

from __future__ import annotations

import fnmatch
import pathlib
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from chart_harness import CHART_DIR, ROOT, VALUE_SETS, pod_specs, render, render_emulator

INSTRUCTIONS = {
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
    "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
}  # fmt: skip


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    line: int


def parse(text: str) -> list[Instruction]:
    """Dockerfile instructions with continuation lines joined and comments dropped."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if not pending:
            start = number
        continued = stripped.endswith("\\")
        pending.append(stripped.removesuffix("\\").strip())
        if not continued:
            keyword, _, arguments = " ".join(pending).partition(" ")
            assert keyword.upper() in INSTRUCTIONS, f"line {start}: unknown instruction {keyword}"
            assert keyword == keyword.upper(), f"line {start}: write {keyword.upper()}"
            instructions.append(Instruction(keyword, arguments.strip(), start))
            pending = []
    assert not pending, "the Dockerfile ends inside a continued instruction"
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def dockerfile(name: str = "Dockerfile") -> list[Instruction]:
    return parse((ROOT / name).read_text())


def copied_sources(instructions: list[Instruction]) -> list[str]:
    """What the build copies from the context (not from another stage)."""
    sources: list[str] = []
    for instruction in instructions:
        if instruction.keyword == "COPY" and "--from=" not in instruction.arguments:
            *copied, _ = instruction.arguments.split()
            sources += [s.removeprefix("./").rstrip("/") for s in copied]
    return sources


def ignored(path: str) -> bool:
    """Whether .dockerignore leaves `path` out of the build context (last match wins)."""
    verdict = False
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.removeprefix("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or path.startswith(f"{pattern}/"):
            verdict = not negate
    return verdict


def base_image() -> str:
    arg = next(
        i for i in dockerfile() if i.keyword == "ARG" and i.arguments.startswith("PYTHON_IMAGE=")
    )
    return arg.arguments.split("=", 1)[1]


def test_it_is_a_multi_stage_build_on_one_pinned_base() -> None:
    built = stages(dockerfile())
    assert len(built) >= 2
    assert built[0][0].arguments == "${PYTHON_IMAGE} AS build"
    assert built[-1][0].arguments == "${PYTHON_IMAGE}"
    image = base_image()
    match = re.fullmatch(r"python:(3\.\d+)\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", image)
    assert match, f"base image {image} is not pinned to a patch version of python slim"
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert f">={match.group(1)}" in requires


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.emulator"])
def test_copied_files_exist_and_are_in_the_build_context(name: str) -> None:
    for instruction in dockerfile(name):
        if instruction.keyword != "COPY" or "--from=" in instruction.arguments:
            continue
        *sources, _ = instruction.arguments.split()
        for source in sources:
            path = ROOT / source.removeprefix("./")
            assert path.exists(), f"line {instruction.line}: {source} does not exist"
            assert not ignored(source.rstrip("/")), (
                f"line {instruction.line}: .dockerignore drops {source}"
            )
            if path.is_dir():
                for inner in path.rglob("*.py"):
                    relative = inner.relative_to(ROOT).as_posix()
                    assert not ignored(relative), f".dockerignore drops {relative}"


def test_build_context_leaves_out_local_state() -> None:
    local = [
        ".venv/bin/python",
        ".git/HEAD",
        "build/profilesync.pb",
        "profilesync/v1/x_pb2.py",
        ".state/snapshots",
        "tests/conftest.py",
        "services/x/__pycache__/m.pyc",
    ]
    for path in local:
        assert ignored(path), path


def test_generated_code_is_built_in_the_build_stage_only() -> None:
    build, *_, final = stages(dockerfile())
    build_runs = " ".join(i.arguments for i in build if i.keyword == "RUN")
    assert "scripts/gen_protos.py" in build_runs
    assert "pip install --no-deps ." in build_runs
    assert "pip uninstall --yes grpcio-tools" in build_runs
    final_text = " ".join(i.arguments for i in final)
    assert "gen_protos" not in final_text and "pip install" not in final_text
    copies = [i.arguments for i in final if i.keyword == "COPY"]
    assert copies == ["--from=build /opt/profile-sync /opt/profile-sync"]


def test_it_runs_as_the_unprivileged_user_the_chart_runs_pods_as() -> None:
    final = stages(dockerfile())[-1]
    user = [i.arguments for i in final if i.keyword == "USER"]
    assert user, "the final stage sets no USER"
    uid, _, gid = user[-1].partition(":")
    assert uid.isdigit() and int(uid) > 0, "USER must be a numeric, non-root uid"
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    assert int(uid) == values["podSecurityContext"]["runAsUser"]
    assert int(gid) == values["podSecurityContext"]["runAsGroup"]
    environment = " ".join(i.arguments for i in final if i.keyword == "ENV")
    # No bytecode written at run time: the root filesystem is read-only.
    assert "PYTHONDONTWRITEBYTECODE=1" in environment
    assert "HOME=/tmp" in environment


def test_the_production_image_holds_no_development_tools() -> None:
    assert not [s for s in copied_sources(dockerfile()) if s.startswith("devtools")]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    # Its dependencies are [project] dependencies alone: no test double, no fake Redis.
    assert not [d for d in project["dependencies"] if d.startswith(("fakeredis", "starlette"))]


@pytest.mark.parametrize(
    ("image", "manifests"),
    [
        ("Dockerfile", lambda: render(VALUE_SETS["defaults"]) + render(VALUE_SETS["emulator"])),
        ("Dockerfile.emulator", render_emulator),
    ],
    ids=["profile-sync", "graph-emulator"],
)
def test_every_module_a_chart_runs_is_in_its_image(
    image: str, manifests: Callable[[], list[dict[str, Any]]]
) -> None:
    copied = copied_sources(dockerfile(image))
    for label, spec in pod_specs(manifests()):
        for container in spec["containers"]:
            command = container.get("command", [])
            if command[:2] != ["python", "-m"]:
                continue
            module = pathlib.Path(*command[2].split("."))
            assert (ROOT / module / "__main__.py").is_file(), f"{label}: {command[2]}"
            assert not ignored(f"{module.as_posix()}/__main__.py")
            main = f"{module.as_posix()}/__main__.py"
            assert any(main.startswith(f"{source}/") for source in copied), f"{image}: {main}"
