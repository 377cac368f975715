"""Queries explained over a real server: what each term of `car-yellow` and of a three-term
query contributed, and which term each result matches best."""

from __future__ import annotations

import numpy as np
import pytest

from server.artifacts import load_word_space
from tests.e2e.test_server import Client


@pytest.fixture(scope="module")
def client(server):
    opened = Client(server.ws_url)
    yield opened
    opened.close()


def test_a_subtraction_says_what_it_moved_the_query_away_from(client):
    reply = client.query("car-yellow", explain=True)
    assert reply["type"] == "results", reply
    car, yellow = reply["explain"]["terms"]
    assert (car["term"], yellow["term"]) == ("car", "-yellow")
    assert "removed" not in car and car["nearest_words"][0][0] == "car"
    removed = [word for word, _ in yellow["removed"]]
    assert removed[0] == "yellow" and "car" not in removed
    assert all(lost > 0 for _, lost in yellow["removed"])
    matches = reply["explain"]["results"]
    assert len(matches) == len(reply["results"])
    assert all(match["best"] == 0 for match in matches)  # never the subtracted term


def test_each_result_is_matched_to_its_closest_term(client):
    reply = client.query("coffee+cat+moon", k=6, explain=True)
    terms = reply["explain"]["terms"]
    assert [t["term"] for t in terms] == ["coffee", "cat", "moon"]
    words = load_word_space()
    for term in terms:  # each term's words are its own, nearest first (caption words all)
        assert term["nearest_words"][0][0] == term["term"]
        expected = [w for w, _ in words.nearest_words(words.unit_vector(term["term"]), 5)]
        assert [w for w, _ in term["nearest_words"]] == expected
    for match, found in zip(reply["explain"]["results"], reply["results"], strict=True):
        assert match["best"] == int(np.argmax(match["cosines"])), (match, found)
    captions = {found["caption"]: match["best"]
                for match, found in zip(reply["explain"]["results"], reply["results"],
                                        strict=True)}
    assert captions["a cup of coffee on a saucer"] == 0
    assert captions["a brown cat looking at the camera"] == 1
    assert captions["the surface of the moon"] == 2


def test_explanations_are_asked_for_and_need_several_terms(client):
    assert "explain" not in client.query("car-yellow")
    assert "explain" not in client.query("coffee", explain=True)
    refused = client.query("car-yellow", explain="yes")
    assert refused["code"] == "bad_request" and "explain" in refused["error"]
