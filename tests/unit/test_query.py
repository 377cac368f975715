"""The query language parser: tests/query_cases.json, the seed examples, no other exception."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.serve.query import MAX_QUERY_CHARS, MAX_TERMS, QueryError, Term, format_terms, parse

# The query language's cases, shared with the page's parser (tests/e2e/test_web.py)
QUERY_CASES = json.loads((Path(__file__).parents[1] / "query_cases.json").read_text("utf-8"))

SEED = ["people+park", "bike-park", "beach+sunrise", "car-yellow", "cold-snow", "train-car",
        "travel+paint", "fish+food", "[IMG_1]+park", "[IMG_3]-dog", "[IMG_1]+[IMG_10]",
        "[IMG_1]+park+park+park"]


@pytest.mark.parametrize("text", SEED)
def test_seed_examples_parse_and_print_back(text):
    terms = parse(text)
    assert format_terms(terms) == text
    assert terms[0].sign == 1


def reading(term: Term) -> dict:
    """A term as tests/query_cases.json writes it (the page's test compares the same fields)."""
    what = {"words": list(term.words)} if term.kind == "words" else {"ref": term.ref}
    return {"sign": term.sign, "weight": term.weight, "kind": term.kind, **what}


@pytest.mark.parametrize("case", QUERY_CASES, ids=[case["name"] for case in QUERY_CASES])
def test_query_cases(case):
    if "error" in case:
        with pytest.raises(QueryError, match=re.escape(case["error"])):
            parse(case["text"])
        return
    terms = parse(case["text"])
    assert [reading(term) for term in terms] == case["terms"]
    printed = format_terms(terms)
    assert printed == case["printed"]
    assert format_terms(parse(printed)) == printed  # the printed form reads back as itself


def test_the_cases_are_written_for_these_limits():
    # the file's "exactly 500 characters", "too long" and "too many terms" cases
    assert (MAX_QUERY_CHARS, MAX_TERMS) == (500, 32)


def test_terms_keep_their_text_as_typed():
    """Error messages quote the term as the user wrote it; only the printed form is canonical."""
    terms = parse(" 3*park - [img_012 ] + Red  car")
    assert [term.text for term in terms] == ["park", "[img_012 ]", "Red  car"]
    assert format_terms(terms) == "3*park-[IMG_12]+red car"


def test_only_strings_are_queries():
    for value in (None, 3, ["dog"], {"q": "dog"}):
        with pytest.raises(QueryError, match="must be a string"):
            parse(value)


QUERY_ALPHABET = st.sampled_from([*"+-*[]_. 0123456789", "IMG", "UPLOAD", "dog", "é", "\x00",
                                  "\u202e", "🙂"])


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=80), st.lists(QUERY_ALPHABET, max_size=30).map("".join)))
def test_no_string_makes_the_parser_raise_anything_else(text):
    try:
        terms = parse(text)
    except QueryError as error:
        assert str(error)
        return
    assert terms and any(term.sign > 0 for term in terms)
    assert all(0 < term.weight <= 100 for term in terms)
    assert all(term.words or term.kind != "words" for term in terms)
