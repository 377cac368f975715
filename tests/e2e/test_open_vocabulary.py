"""Any English word, over a real server: words the captions never taught run as typed (through
general English), each word's origin is in the reply, and only non-words are corrected."""

from __future__ import annotations

import pytest

from server.serve.examples import SEED_EXAMPLES
from tests.e2e.test_server import Client

# Real words, most of them outside the captions' vocabulary: each must run as typed.
REAL_WORDS = ["sunrise", "sunset", "england", "sydney", "healthy", "puppy", "kitten",
              "skyscraper", "bicycle", "ocean"]
CORRECTIONS = {"dgo": "dog", "grils": "girls", "baech": "beach", "happyness": "happiness"}


@pytest.fixture(scope="module")
def client(server):
    opened = Client(server.ws_url)
    yield opened
    opened.close()


@pytest.mark.parametrize("word", REAL_WORDS)
def test_a_real_word_runs_as_typed_and_says_where_its_vector_came_from(client, word):
    reply = client.query(word, k=3)
    assert reply["type"] == "results", reply
    assert reply["corrections"] == [] and reply["query"] == word
    (term,) = reply["terms"]
    assert term["used"] == [word] and term["sources"] in (["captions"], ["english"])
    assert len(reply["results"]) == 3


def test_words_outside_the_captions_come_from_general_english(client):
    reply = client.query("sydney+dog")
    assert [t["sources"] for t in reply["terms"]] == [["english"], ["captions"]]
    phrase = client.query("skyscraper in sydney")
    assert phrase["terms"][0]["used"] == ["skyscraper", "sydney"]
    assert phrase["terms"][0]["sources"][1] == "english"


@pytest.mark.parametrize("query", SEED_EXAMPLES)
def test_every_reference_example_runs_without_error(client, query):
    reply = client.query(query, k=2)
    assert reply["type"] == "results", reply
    expected = [{"from": "happyness", "to": "happiness"}] if query == "happyness" else []
    assert reply["corrections"] == expected


@pytest.mark.parametrize(("typed", "meant"), CORRECTIONS.items())
def test_a_non_word_is_corrected_and_the_reply_says_so(client, typed, meant):
    reply = client.query(f"{typed}+grass")
    assert reply["type"] == "results", reply
    assert reply["corrections"] == [{"from": typed, "to": meant}]
    assert reply["terms"][0]["used"] == [meant] and reply["query"] == f"{meant}+grass"


def test_a_string_no_word_is_near_is_refused_with_suggestions(client):
    reply = client.query("xqzvw+dog")
    assert reply["type"] == "error" and reply["code"] == "bad_query"
    assert reply["word"] == "xqzvw"
    assert len(reply["suggestions"]) == 3 and all(isinstance(s, str) for s in
                                                  reply["suggestions"])
    assert "Did you mean" in reply["error"]


def test_a_rare_real_word_runs_as_typed_with_a_suggestion(client):
    reply = client.query("beech")
    assert reply["type"] == "results" and reply["corrections"] == []
    assert reply["terms"][0]["sources"] == ["english"]
    (suggestion,) = reply["suggestions"]
    assert suggestion["word"] == "beech" and suggestion["alternatives"][0] == "beach"
    assert client.query("beach")["suggestions"] == []


@pytest.mark.parametrize("word", ["x" * 5000, "é" * 300, "ж" * 128, "中文" * 150,
                                  "ab" * 240, "q" * 499])
def test_a_word_of_any_length_or_script_is_a_bad_query_never_internal(server, client, word):
    """Longer than any known word: no correction, a `bad_query` that says why (a 5,000-letter
    word is over the query's length limit), and the server fine afterwards."""
    reply = client.query(word)
    assert reply["type"] == "error" and reply["code"] == "bad_query", reply
    assert client.query("dog")["type"] == "results"
    assert "Traceback" not in server.log()
