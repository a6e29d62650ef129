"""Text analysis: how profile text and query text become words.

Both sides go through the same functions, so what a user types matches what
is stored whatever the case, accents or punctuation:

    >>> words("Zürich, C# and Node.js")
    ['zurich', 'c#', 'and', 'node', 'js']
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any, Final

from services.search.fields import SEARCH_FIELDS

__all__ = ["MAX_WORD_LENGTH", "analyze_profile", "field_text", "fold", "profile_texts", "words"]

# Longer words are cut to this length on both sides: keys stay small and a
# pasted blob cannot make one huge entry.
MAX_WORD_LENGTH: Final = 64

# Letters that compatibility decomposition does not reduce to a base letter.
_TRANSLIT: Final = str.maketrans(
    {"ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "\u0131": "i"}
)
# An apostrophe inside a word joins it ("O'Brien" -> "obrien"), so the name
# is found whether or not the user types the apostrophe.
_APOSTROPHE: Final = re.compile(r"(?<=\w)['\u2019\u02bc](?=\w)")
# Letters and digits; a trailing run of + or # stays part of the word, so
# "C++", "C#" and "F#" are words of their own, not "c".
_WORD: Final = re.compile(r"[^\W_]+[+#]*")


def fold(text: str) -> str:
    """Lower case without accents: "Ångström" -> "angstrom", "Straße" -> "strasse"."""
    if text.isascii():
        return text.lower()  # the same result, and most text takes this path
    # Decompose first too: compatibility forms (mathematical bold letters,
    # Roman numerals) only become letters with a lower case once decomposed.
    compatible = unicodedata.normalize("NFKD", text).casefold()
    decomposed = unicodedata.normalize("NFKD", compatible.translate(_TRANSLIT))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    """The searchable words of a text, folded, in order."""
    folded = _APOSTROPHE.sub("", fold(text))
    return [w[:MAX_WORD_LENGTH] for w in _WORD.findall(folded)]


def _values(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable):
        return [str(v) for v in value if v is not None]
    return [str(value)]


# Values up to this length are analysed once per process: a tenant's
# profiles share most of their skills, schools, departments and titles.
_CACHED_VALUE_LENGTH: Final = 200


@functools.lru_cache(maxsize=1 << 16)
def _cached_slot(value: str) -> str:
    return " ".join(words(value))


def _slot(value: str) -> str:
    """One value's words, space separated ("" when it has none)."""
    if len(value) <= _CACHED_VALUE_LENGTH:
        return _cached_slot(value)
    return " ".join(words(value))


def field_text(values: Iterable[str]) -> str:
    """The analysed form of a field as the index stores it: `| w w | w |`.

    One `|`-delimited slot per value (one per skill, one for About me), words
    separated by single spaces, so a phrase is found by a plain substring
    search for " w1 w2 " and can never run from one value into the next.
    """
    slots = [slot for slot in map(_slot, values) if slot]
    return "| " + " | ".join(slots) + " |" if slots else ""


def analyze_profile(
    profile: Mapping[str, Any], fields: Iterable[str] = SEARCH_FIELDS
) -> dict[str, list[list[str]]]:
    """The fields' values as lists of words (empty values left out)."""
    result: dict[str, list[list[str]]] = {}
    for name in fields:
        result[name] = [found for found in (words(v) for v in _values(profile.get(name))) if found]
    return result


def profile_texts(profile: Mapping[str, Any]) -> list[str]:
    """`field_text` of each searchable field, in SEARCH_FIELDS order."""
    return [field_text(_values(profile.get(name))) for name in SEARCH_FIELDS]
