"""The query language parser: tests/query_cases.json, the seed examples, no other exception."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.serve.query import (
    MAX_QUERY_CHARS,
    MAX_TERMS,
    QueryError,
    Term,
    Unread,
    format_terms,
    parse,
    read,
    reading_fields,
)

# The query language's cases (the page has no parser: it asks the server, `parse`)
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
    """A term as tests/query_cases.json writes it."""
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


@pytest.mark.parametrize("case", QUERY_CASES, ids=[case["name"] for case in QUERY_CASES])
def test_reading_a_query_finds_the_same_terms_and_first_problem_as_parsing_it(case):
    reading = read(case["text"])
    if "error" in case:
        assert case["error"] in (reading.error or "")
    else:
        assert reading.error is None
        assert [reading_of(term) for term in reading.terms] == case["terms"]


def reading_of(term: Term | Unread) -> dict:
    assert isinstance(term, Term), term
    return reading(term)


def test_a_half_typed_query_reads_as_its_pieces_so_far():
    """The page's terms strip while typing: what was read, the unreadable kept as typed."""
    reading = read("2*beach + [IMG_3] - [img_")
    assert reading.error is not None and "not an image reference" in reading.error
    fields = reading_fields(reading)
    assert fields["query"] is None
    assert fields["terms"] == [
        {"sign": "+", "text": "beach", "weight": 2.0, "kind": "words", "words": ["beach"]},
        {"sign": "+", "text": "[IMG_3]", "weight": 1.0, "kind": "image", "ref": 3},
        {"sign": "-", "text": "[img_", "error": reading.error}]
    assert read("dog+").terms == [parse("dog")[0]]  # the gap is no piece
    assert read("dog+").error == "a term is missing at the end"


def test_a_readable_query_comes_with_its_canonical_form():
    fields = reading_fields(read(" Red  CAR + 2.50*[img_012 ]"))
    assert fields["error"] is None and fields["query"] == "red car+2.5*[IMG_12]"
