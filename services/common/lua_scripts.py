"""Redis Lua scripts, kept as `.lua` files in a `lua/` folder of the package that runs them.

    _APPLY = LuaScript("services.search", "apply.lua")     # read once, at import
    self._apply = _APPLY.register(redis)                   # once per client, in __init__
    reply = await self._apply(keys=[...], args=[...])      # EVALSHA; loaded if Redis lacks it

The files are package data (pyproject.toml ships `lua/*.lua`), read through
importlib.resources, so an installed wheel or image carries them. A script
never goes to Redis as text per call: redis-py's `register_script` sends its
SHA1 (EVALSHA) and loads the text only when Redis does not know it.

Every file opens with a header of `--` lines naming its KEYS, ARGV and what it
returns (`-- KEYS:`, `-- ARGV:`, `-- Returns:`), so a reader never needs the
Python side to know a script's contract.

Sharing code between scripts: a line `-- include: name.lua` (alone on its line,
before the code) is replaced by that file of the same `lua/` folder. Included
files only define local functions; each opens with the same header, saying
which of the including script's KEYS and ARGV it reads.
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript

__all__ = ["LUA_FOLDER", "LuaScript", "loaded_files"]

LUA_FOLDER = "lua"

_INCLUDE = re.compile(r"^-- include: ([\w.-]+\.lua)[ \t]*$", re.MULTILINE)

# (package, file name) of every file read so far, included ones too: a test
# checks that no `.lua` file of the tree is left unused.
_loaded: set[tuple[str, str]] = set()


def loaded_files() -> frozenset[tuple[str, str]]:
    """(package, file name) of every Lua file read by the modules imported so far."""
    return frozenset(_loaded)


def _read(package: str, name: str, including: tuple[str, ...] = ()) -> str:
    if name in including:
        raise ValueError(f"{package} lua/{name}: includes itself ({' -> '.join(including)})")
    text = resources.files(package).joinpath(LUA_FOLDER, name).read_text(encoding="utf-8")
    _loaded.add((package, name))

    def expand(match: re.Match[str]) -> str:
        return _read(package, match.group(1), (*including, name)).rstrip("\n")

    return _INCLUDE.sub(expand, text)


class LuaScript:
    """One Lua file of a package, its includes expanded, read when constructed."""

    def __init__(self, package: str, name: str) -> None:
        self.package = package
        self.name = name
        self.source = _read(package, name)
        # What EVALSHA names it by (redis-py's register_script computes the same),
        # for a caller that queues the call in its own pipeline.
        self.sha = hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest()

    def register(self, client: aioredis.Redis | RedisCluster) -> AsyncScript:
        """The script bound to `client` (call it with keys= and args=, or client=pipeline)."""
        return client.register_script(self.source)

    def __repr__(self) -> str:
        return f"LuaScript({self.package!r}, {self.name!r})"
