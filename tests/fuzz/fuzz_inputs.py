"""Hostile inputs shared by the REST and gRPC fuzz tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# The Lua call is assembled here so that no Python file holds Lua source (a test
# of the tree checks that), while the attack strings stay byte for byte the same.
_LUA_CALL = "redis" + ".call"

# Strings that have broken other systems: injections for the stores and languages
# behind the API (Redis commands and Lua, RediSearch syntax, SQL, shell, templates,
# JNDI), path tricks, log forging, format strings and awkward Unicode.
HOSTILE_STRINGS: tuple[str, ...] = (
    "' OR '1'='1",
    '"; DROP TABLE profiles; --',
    "*\r\nFLUSHALL\r\n",
    "\r\n*1\r\n$8\r\nFLUSHALL\r\n",
    "x\nSET profilesync:owned 1\n",
    f"EVAL \"return {_LUA_CALL}('FLUSHALL')\" 0",
    f"'); {_LUA_CALL}('FLUSHALL'); --",
    "@userPrincipalName:{*}",
    "* -@id:[0 +inf] | @skills:{x}",
    "skills:* OR *",
    '"unterminated phrase',
    "((((((((((((((((((((x",
    "(a+)+$",
    "a" * 10_000 + "!",
    "*" * 600,
    "../../../../etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "%00",
    "\x00",
    "a\x00b",
    "%s%s%s%n%x",
    "{0.__class__.__mro__}",
    "${jndi:ldap://127.0.0.1:9/a}",
    "{{7*7}}",
    "<script>alert(1)</script>",
    "$(id)",
    "`id`",
    '\n{"level": "CRITICAL", "message": "forged log line"}',
    "\x1b[31mred\x1b[0m",
    "\u202egnp.exe",
    "\ufeff",
    "\u0301",
    "🙂" * 64,
    "\U0001d518\U0001d52b\U0001d526",  # mathematical letters that look like "Uni"
    "-1",
    "0-0",
    "99999999999999999999-99999999999999999999",
    "1e309",
    "NaN",
    "true",
    "null",
    "[]",
    "{}",
    "",
    " ",
    "adele.vance@contoso.onmicrosoft.com' OR ''='",
    "00000000-0000-0000-0000-000000000000",
)

hostile_text = st.one_of(
    st.sampled_from(HOSTILE_STRINGS),
    st.text(max_size=300),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=200, max_size=1200),
)

# JSON values of every type, for fields that expect one of them.
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | hostile_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)

# Numbers for integer fields: far past int32 and int64, negative, and spellings
# a lenient parser might accept.
number_spellings = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(
        [
            "2147483648",
            "-2147483649",
            "9223372036854775808",
            "-1",
            "1e309",
            "-1e309",
            "1e3",
            "1.5",
            "NaN",
            "Infinity",
            "0x10",
            "+1",
            " 1",
            "1 ",
            "",
            "true",
        ]
    ),
)

# Bytes that are not UTF-8: lone continuation bytes, truncated and overlong
# sequences, surrogates, code points past U+10FFFF.
invalid_utf8 = st.sampled_from(
    [
        b"\xff",
        b"\xfe\xff",
        b"\x80",
        b"\xc3",
        b"\xc3\x28",
        b"\xe2\x82",
        b"\xed\xa0\x80",
        b"\xc0\xaf",
        b"\xf4\x90\x80\x80",
        b"\xf8\x88\x80\x80\x80",
    ]
)
