"""The query language parser: the seed examples, weights, errors, and no other exception ever."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.serve.query import MAX_QUERY_CHARS, MAX_TERMS, QueryError, Term, format_terms, parse

SEED = ["people+park", "bike-park", "beach+sunrise", "car-yellow", "cold-snow", "train-car",
        "travel+paint", "fish+food", "[IMG_1]+park", "[IMG_3]-dog", "[IMG_1]+[IMG_10]",
        "[IMG_1]+park+park+park"]


@pytest.mark.parametrize("text", SEED)
def test_seed_examples_parse_and_print_back(text):
    terms = parse(text)
    assert format_terms(terms) == text
    assert terms[0].sign == 1


def test_terms_signs_weights_and_images():
    terms = parse(" 3*park - [img_12 ] + red  car-0.5*[UPLOAD_2]")
    assert terms == [
        Term(1, 3.0, "words", "park", ("park",)),
        Term(-1, 1.0, "image", "[img_12 ]", ref=12),
        Term(1, 1.0, "words", "red  car", ("red", "car")),
        Term(-1, 0.5, "upload", "[UPLOAD_2]", ref=2),
    ]
    assert format_terms(terms) == "3*park-[img_12 ]+red car-0.5*[UPLOAD_2]"
    assert parse("-dog+cat")[0].sign == -1
    assert parse("+cat")[0].sign == 1


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty"), ("   ", "empty"), ("-dog", "at least one term to add"),
    ("dog+", "missing at the end"), ("dog++cat", "missing before"), ("+", "missing"),
    ("[IMG_x]", "not an image reference"), ("[IMG_1", "not an image reference"),
    ("0*dog", "must be above 0"), ("1000*dog", "at most 100"), ("3*", "no term after"),
    ("dog*3", "a weight goes before"), ("the+a", "only common words"), ("!!!", "no words"),
    ("a" * (MAX_QUERY_CHARS + 1), "too long"),
    ("+".join(["dog"] * (MAX_TERMS + 1)), "too many terms"),
])
def test_bad_queries_say_why(text, message):
    with pytest.raises(QueryError, match=message):
        parse(text)


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
