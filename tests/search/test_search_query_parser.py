"""The query language: what parses to what, and the errors a user sees."""

from __future__ import annotations

import pytest

from services.common.errors import InvalidArgument
from services.search.analysis import field_text, fold, words
from services.search.query import MAX_TERMS, QuerySyntaxError, Term, parse


def _terms(query: str) -> list[tuple[str, tuple[str, ...], str | None, bool]]:
    return [(t.kind, t.words, t.field, t.negated) for t in parse(query).terms]


def test_words_fold_case_accents_and_punctuation() -> None:
    assert words("Zürich, MÜNCHEN; Straße Ångström Søren Łódź") == [
        "zurich",
        "munchen",
        "strasse",
        "angstrom",
        "soren",
        "lodz",
    ]
    assert words("C# C++ F# .NET Node.js CI/CD 3D") == [
        "c#",
        "c++",
        "f#",
        "net",
        "node",
        "js",
        "ci",
        "cd",
        "3d",
    ]
    assert words("O'Brien O\u2019Connor rock 'n' roll") == [
        "obrien",
        "oconnor",
        "rock",
        "n",
        "roll",
    ]
    assert fold("Élodie") == "elodie"


def test_field_text_keeps_values_apart() -> None:
    assert (
        field_text(["Machine learning", "", "  ", "Kubernetes"])
        == "| machine learning | kubernetes |"
    )
    assert field_text([]) == ""


def test_words_and_fields() -> None:
    assert _terms("kubernetes Skills:Python") == [
        ("word", ("kubernetes",), None, False),
        ("word", ("python",), "skills", False),
    ]


@pytest.mark.parametrize(
    ("alias", "field"),
    [
        ("skill", "skills"),
        ("PASTPROJECTS", "pastProjects"),
        ("projects", "pastProjects"),
        ("education", "schools"),
        ("hobbies", "interests"),
        ("name", "displayName"),
        ("title", "jobTitle"),
        ("dept", "department"),
        ("about", "aboutMe"),
        ("aboutme", "aboutMe"),
    ],
)
def test_field_names_ignore_case_and_accept_short_forms(alias: str, field: str) -> None:
    assert parse(f"{alias}:x").terms[0].field == field


def test_phrases_prefixes_and_implicit_phrases() -> None:
    assert _terms('"Machine  Learning" kube* skills:"C#" node.js') == [
        ("phrase", ("machine", "learning"), None, False),
        ("prefix", ("kube",), None, False),
        ("word", ("c#",), "skills", False),
        ("phrase", ("node", "js"), None, False),
    ]


def test_or_separates_groups_and_and_is_optional() -> None:
    query = parse("a b OR c AND d OR e")
    assert [[t.words[0] for t in g.terms] for g in query.groups] == [["a", "b"], ["c", "d"], ["e"]]
    # Lower-case operators are ordinary words.
    assert len(parse("cats or dogs").groups) == 1


def test_exclusions() -> None:
    assert _terms('python -java NOT skills:go -"big data"') == [
        ("word", ("python",), None, False),
        ("word", ("java",), None, True),
        ("word", ("go",), "skills", True),
        ("phrase", ("big", "data"), None, True),
    ]


def test_stray_punctuation_between_words_is_ignored() -> None:
    assert _terms("Research & Development") == [
        ("word", ("research",), None, False),
        ("word", ("development",), None, False),
    ]


def test_positions_point_at_the_term() -> None:
    terms = parse('  kubernetes   -skills:"a b"  OR uni*').terms
    assert [t.position for t in terms] == [2, 15, 33]
    assert terms == (
        Term("word", ("kubernetes",), None, False, 2),
        Term("phrase", ("a", "b"), "skills", True, 15),
        Term("prefix", ("uni",), None, False, 33),
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ('skills:python "machine learning', "query: unclosed quote at position 14"),
        ('""', "query: empty phrase: no letters or digits between the quotes at position 0"),
        ('a "  !! "', "query: empty phrase: no letters or digits between the quotes at position 2"),
        ("a OR", "query: 'OR' needs a term after it at position 2"),
        ("OR a", "query: 'OR' needs a term before it at position 0"),
        ("a OR OR b", "query: 'OR' needs a term after it at position 2"),
        ("a AND", "query: 'AND' needs a term after it at position 2"),
        ("AND a", "query: 'AND' needs a term before it at position 0"),
        ("a AND OR b", "query: 'AND' needs a term after it at position 2"),
        ("a NOT", "query: 'NOT' needs a term after it at position 2"),
        (
            "a NOT OR b",
            "query: 'NOT' must be followed by a term to exclude, not 'OR' at position 2",
        ),
        ("python skils:go", "query: unknown field 'skils' at position 7; did you mean 'skills'?"),
        ("mail:x", "query: unknown field 'mail' at position 0; fields are displayName, skills"),
        ("skills: python", "query: 'skills:' needs a value right after the colon at position 0"),
        ("a skills:", "query: 'skills:' needs a value right after the colon at position 2"),
        ("skills:&", "query: 'skills:&' has no letters or digits at position 0"),
        ("a -", "query: '-' must be directly followed by a term to exclude at position 2"),
        ("-&", "query: '-&' has no letters or digits at position 0"),
        ("-java", "query: this group only excludes terms at position 0; add a term to search for"),
        ("a OR -b", "query: this group only excludes terms at position 5"),
        ("k*", "query: prefix 'k*' is too short at position 0; put at least 2 letters"),
        ("a *", "query: prefix '*' is too short at position 2"),
        ("ku*be", "query: '*' is allowed only at the end of a word at position 2"),
        ("kube**", "query: '*' is allowed only at the end of a word at position 4"),
        ('"a b"*', "query: '*' cannot follow a phrase at position 5"),
        (
            "node.j*",
            "query: '*' can end only a single word, and 'node.j*' is several at position 0",
        ),
        ("(a OR b) c", "query: '(' is not supported at position 0; parentheses cannot group"),
        ("a skills:(b)", "query: '(' is not supported at position 9"),
        ("& !!", "query: nothing to search for: the query has no letters or digits at position 0"),
        (" ".join(["w"] * (MAX_TERMS + 1)), f"query: too many terms at position {2 * MAX_TERMS}"),
    ],
)
def test_malformed_queries_name_the_position_and_the_problem(query: str, message: str) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse(query)
    assert str(caught.value).startswith(message)
    assert isinstance(caught.value, InvalidArgument)
    assert 0 <= caught.value.position <= len(query)


@pytest.mark.parametrize("query", ["", "   ", "\t\n"])
def test_an_empty_query_is_refused(query: str) -> None:
    with pytest.raises(InvalidArgument, match="query: is required"):
        parse(query)


def test_a_colon_after_non_letters_is_part_of_a_word() -> None:
    assert _terms("10:30") == [("phrase", ("10", "30"), None, False)]
