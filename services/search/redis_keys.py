"""Where the search index lives in Redis.

Fixed keys:

    {profilesync:search}:current     generation that answers searches
    {profilesync:search}:building    generation a rebuild is writing (with a lease)
    {profilesync:search}:epoch       bumped on every change (an overlapping search runs again)
    {profilesync:search}:genseq      generation counter
    {profilesync:search}:docseq      document number counter (numbers start at 0)
    {profilesync:search}:tokenkey    HMAC key that signs page tokens

Per generation (`{profilesync:search}:gen:<g>:...`):

    docs              hash    doc number -> stored profile (JSON)
    ids               hash    profile id -> doc number
    ver               hash    doc number -> content digest of the indexed profile
    t:<field>         hash    doc number -> analysed field text ("| w w | w |")
    free              set     numbers of deleted profiles, for reuse
    n                 hash    <field>:<entry> -> how many profiles have it
    s:<field>:<entry> set     2 x doc + (1 if a whole value), while few have it
    m:<field>:<entry> bitmap  docs having it, once many do
    x:<field>:<entry> bitmap  docs having it as a whole value, once many do
    lex               zset    every indexed word, score 0 (prefix* expansion)
    touched           set     ids written live while this generation was rebuilt

An entry is `w:<word>`, `b:<word> <word>` (adjacent words, for phrases) or
`v:<words>` (a whole value of three or more words, outside About me).
Profiles are numbered densely so the bitmaps stay short; a profile keeps
its number across rebuilds, so page tokens stay meaningful.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "BUILDING",
    "CURRENT",
    "DOCSEQ",
    "EPOCH",
    "GENERATION",
    "GENSEQ",
    "PREFIX",
    "TOKEN_KEY",
    "generation_prefix",
]

# One hash tag for every key of the index: its scripts touch several at once,
# and on a Redis Cluster they must share a slot.
PREFIX: Final = "{profilesync:search}:"
CURRENT: Final = PREFIX + "current"
BUILDING: Final = PREFIX + "building"
EPOCH: Final = PREFIX + "epoch"
GENSEQ: Final = PREFIX + "genseq"
DOCSEQ: Final = PREFIX + "docseq"
TOKEN_KEY: Final = PREFIX + "tokenkey"
GENERATION: Final = PREFIX + "gen:"


def generation_prefix(generation: str) -> str:
    """`profilesync:search:gen:<g>:`, the prefix of every key of a generation."""
    return f"{GENERATION}{generation}:"
