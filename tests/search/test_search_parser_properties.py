"""Properties of the parser and the analysis, over generated input."""

from __future__ import annotations

import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common.errors import InvalidArgument
from services.search.analysis import words
from services.search.fields import SEARCH_FIELDS
from services.search.query import MAX_TERMS, Query, QuerySyntaxError, parse

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Lower-case so no generated word is an operator (OR, AND, NOT).
WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789éüøß", min_size=2, max_size=8)


@st.composite
def term_text(draw: st.DrawFn) -> tuple[str, str, tuple[str, ...], str | None, bool]:
    """(query text, kind, expected words, field, negated) of one term."""
    kind = draw(st.sampled_from(["word", "phrase", "prefix"]))
    field = draw(st.one_of(st.none(), st.sampled_from(SEARCH_FIELDS)))
    negated = draw(st.booleans())
    if kind == "phrase":
        parts = draw(st.lists(WORD, min_size=2, max_size=4))
        body = '"' + " ".join(parts) + '"'
    else:
        parts = [draw(WORD)]
        body = parts[0] + ("*" if kind == "prefix" else "")
    expected = tuple(w for p in parts for w in words(p))
    text = ("-" if negated else "") + (f"{field}:" if field else "") + body
    return text, kind, expected, field, negated


@st.composite
def query_text(
    draw: st.DrawFn,
) -> tuple[str, list[list[tuple[str, tuple[str, ...], str | None, bool]]]]:
    groups = draw(st.lists(st.lists(term_text(), min_size=1, max_size=4), min_size=1, max_size=3))
    for group in groups:
        if all(t[4] for t in group):  # a group needs one term that is not excluded
            text, kind, expected, field, _ = group[0]
            group[0] = (text.removeprefix("-"), kind, expected, field, False)
    gap = draw(st.sampled_from([" ", "  ", "\t", " \n "]))
    text = f"{gap}OR{gap}".join(gap.join(t[0] for t in g) for g in groups)
    return text, [[(kind, exp, f, neg) for _, kind, exp, f, neg in g] for g in groups]


@SETTINGS
@given(st.text(max_size=120))
def test_any_text_parses_or_gets_a_positioned_invalid_argument(text: str) -> None:
    try:
        query = parse(text)
    except QuerySyntaxError as error:
        assert 0 <= error.position <= len(text)
        assert str(error).startswith("query: ")
        assert f"at position {error.position}" in str(error)
    except InvalidArgument as error:
        assert str(error) == "query: is required"
        assert not text.strip()
    else:
        assert isinstance(query, Query)
        assert 1 <= len(query.terms) <= MAX_TERMS
        for group in query.groups:
            assert group.required, "every group has something to search for"
        for term in query.terms:
            assert term.words and all(term.words)
            assert 0 <= term.position < len(text)


@SETTINGS
@given(query_text())
def test_generated_queries_parse_to_what_was_written(
    generated: tuple[str, list[list[tuple[str, tuple[str, ...], str | None, bool]]]],
) -> None:
    text, groups = generated
    if sum(len(g) for g in groups) > MAX_TERMS:
        return
    query = parse(text)
    got = [
        [
            (
                t.kind if t.kind != "phrase" or len(t.words) > 1 else "word",
                t.words,
                t.field,
                t.negated,
            )
            for t in g.terms
        ]
        for g in query.groups
    ]
    want = [
        [("word" if k == "phrase" and len(w) == 1 else k, w, f, n) for k, w, f, n in g]
        for g in groups
    ]
    assert got == want
    # Each term's position is where its text starts.
    for term in query.terms:
        assert not text[term.position].isspace()
        assert term.position == 0 or text[term.position - 1].isspace()


@SETTINGS
@given(query_text(), st.data())
def test_an_unclosed_quote_is_reported_where_it_opens(
    generated: tuple[str, list[list[tuple[str, tuple[str, ...], str | None, bool]]]],
    data: st.DataObject,
) -> None:
    text, _ = generated
    if '"' in text:
        return
    cut = data.draw(st.integers(min_value=0, max_value=len(text)))
    while cut < len(text) and not text[cut - 1 : cut].isspace() and cut != 0:
        cut += 1
    broken = text[:cut] + '"' + text[cut:]
    try:
        parse(broken)
    except QuerySyntaxError as error:
        assert error.problem == "unclosed quote"
        assert error.position == cut
    else:
        raise AssertionError(f"{broken!r} parsed")


@SETTINGS
@given(st.text(max_size=60))
def test_analysis_ignores_case_and_unicode_normal_form(text: str) -> None:
    assert words(unicodedata.normalize("NFD", text)) == words(unicodedata.normalize("NFC", text))
    assert words(text.lower()) == words(text.upper().lower())
    for word in words(text):
        # Folded words are fixed points of the folding (casefold, not lower():
        # Cherokee, for one, folds to its upper-case letters).
        assert words(word) == [word] and " " not in word and "|" not in word


@SETTINGS
@given(query_text())
def test_extra_white_space_changes_nothing(
    generated: tuple[str, list[list[tuple[str, tuple[str, ...], str | None, bool]]]],
) -> None:
    text, _ = generated
    try:
        query = parse(text)
    except QuerySyntaxError:
        return

    def shape(q: Query) -> list[list[tuple[str, tuple[str, ...], str | None, bool]]]:
        return [[(t.kind, t.words, t.field, t.negated) for t in g.terms] for g in q.groups]

    assert shape(parse("  " + text.replace(" ", "   ") + "  ")) == shape(query)
