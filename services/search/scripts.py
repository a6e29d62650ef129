"""The Lua scripts of the search index (services/search/lua/*.lua).

The writes run inside Redis, each atomically, so two writers (the differ
committing a run, the extender after an edit) cannot interleave, and each
handles a bounded batch of profiles (IndexSettings.write_batch). Searches only
read, in short steps (services/search/evaluate.py): plain commands and the
read-only READ_ENTRIES, each given a bounded batch. Which entries a profile is
filed under is derived only in APPLY (apply.lua), so adding and removing a
profile's entries can never disagree.

Storage of one entry (a field and a word, an adjacent word pair, or a whole
value of three or more words), by how many profiles have it:

    few   s:<field>:<entry>   set of 2*doc + whole (integers: compact intsets)
    many  m:<field>:<entry>   bitmap of docs having it
          x:<field>:<entry>   bitmap of docs having it as a whole value

A profile's number is its bit position. Searches combine bitmaps and add
scores as bit-sliced integers, so their cost depends on the number of
profiles, not on how many match; sets are turned into bitmaps on the fly.
"""

from __future__ import annotations

from typing import Final

from services.common.lua_scripts import LuaScript

__all__ = ["APPLY", "READ_ENTRIES", "RELEASE", "SWAP"]

APPLY: Final = LuaScript("services.search", "apply.lua")
READ_ENTRIES: Final = LuaScript("services.search", "read_entries.lua")
SWAP: Final = LuaScript("services.search", "swap.lua")
# A rebuild's lease is released like any lock: only by its holder.
RELEASE: Final = LuaScript("services.common", "release_if_owner.lua")
