"""Queries explained (server/serve/explain.py) with the shipped word space, on the gallery of
words (conftest.py): each term's nearest words, what a subtraction removed, and which term each
result matches best, checked against numpy over the whole vocabulary."""

from __future__ import annotations

import json

import numpy as np
import pytest

from server.serve.explain import Explanation
from server.vectors import normalized
from tests.unit.conftest import image_of

COLOURS = {"yellow", "orange", "golden", "gold", "amber", "red", "green", "blue"}


def explained(retriever, text: str, uploads=None) -> tuple[Explanation, list[int]]:
    answer = retriever.answer(text, uploads=uploads, k=6)
    return retriever.explain(answer, uploads), [item.row for item in answer.matches]


def words_of(pairs) -> list[str]:
    return [word for word, _ in pairs]


def test_a_subtracted_colour_is_what_the_subtraction_removed(retriever):
    explanation, _ = explained(retriever, "car-yellow")
    car, yellow = explanation.terms
    assert car.removed is None and "car" in words_of(car.nearest_words)
    assert yellow.removed and words_of(yellow.removed)[0] == "yellow"
    assert COLOURS & set(words_of(yellow.removed))
    # the query only grew longer for `car`: it lost cosine, but not to yellow's direction
    assert "car" not in words_of(yellow.removed)


def test_what_was_removed_is_the_vocabulary_s_largest_drop_from_the_term(retriever, word_space):
    """Brute force: every word's cosine to the query with and without `-yellow`."""
    explanation, _ = explained(retriever, "car-yellow")
    car, yellow = word_space.unit_vector("car"), word_space.unit_vector("yellow")
    query, units = car - yellow, normalized(word_space.matrix)
    drop = units @ normalized(car) - units @ normalized(query)
    own = units @ yellow / np.linalg.norm(query)  # the part of the drop yellow's direction made
    kept = [i for i in np.argsort(-drop, kind="stable") if drop[i] > 0 and own[i] >= drop[i] / 2]
    removed = explanation.terms[1].removed
    assert removed is not None
    assert words_of(removed) == [word_space.words[i] for i in kept[:len(removed)]]
    assert [lost for _, lost in removed] == pytest.approx(drop[kept[:len(removed)]], abs=2e-3)


def test_three_terms_each_say_their_words_and_each_result_its_best_term(retriever, word_space):
    explanation, rows = explained(retriever, "dog+beach+ball")
    assert [term.term.words for term in explanation.terms] == [("dog",), ("beach",), ("ball",)]
    for term in explanation.terms:
        assert term.term.words[0] in words_of(term.nearest_words) and term.removed is None
    terms = np.stack([word_space.unit_vector(word) for word in ("dog", "beach", "ball")])
    cosines = normalized(retriever.vectors[rows]) @ terms.T
    assert len(explanation.results) == len(rows) == 6
    for match, expected in zip(explanation.results, cosines, strict=True):
        assert match.best == int(np.argmax(expected))
        assert match.cosines == pytest.approx(expected, abs=1e-3)
    # the images made of the query's words match their own word best
    best = {row + 1: match.best for row, match in zip(rows, explanation.results, strict=True)}
    assert [best[image_of(word)] for word in ("dog", "beach", "ball")] == [0, 1, 2]


def test_a_result_never_matches_a_subtracted_term_best(retriever):
    explanation, _ = explained(retriever, "water-river")
    assert all(match.best == 0 for match in explanation.results)


def test_a_single_word_gives_its_words_and_no_matches(retriever):
    answer = retriever.answer("sunset", k=4)
    explanation = retriever.explain(answer)
    (term,) = explanation.terms
    assert words_of(term.nearest_words) == words_of(answer.nearest_words)[:5]
    assert explanation.results == ()
    assert explanation.as_json()["results"] == []


def test_image_terms_say_the_words_near_their_picture(retriever, word_space):
    horse = word_space.word_vector("horse")
    explanation, _ = explained(retriever, f"[IMG_{image_of('boat')}]+[UPLOAD_1]",
                               uploads={1: horse})
    boat, upload = explanation.terms
    assert (boat.term.kind, upload.term.kind) == ("image", "upload")
    assert "boat" in words_of(boat.nearest_words)
    assert "horse" in words_of(upload.nearest_words)


def test_terms_are_explained_as_parsed_weights_and_repeats_and_corrections(retriever):
    explanation, _ = explained(retriever, "3*park-2*night+mountian+park")
    fields = explanation.as_json()
    assert [term["term"] for term in fields["terms"]] == ["3*park", "-2*night", "mountain",
                                                          "park"]
    assert [term["weight"] for term in fields["terms"]] == [3.0, 2.0, 1.0, 1.0]
    assert [("removed" in term) for term in fields["terms"]] == [False, True, False, False]
    assert fields["terms"][0]["nearest_words"] == fields["terms"][3]["nearest_words"]
    # never the subtracted term; and a result as near both `park`s matches the first
    assert all(match["best"] in (0, 2) for match in fields["results"])
    assert json.loads(json.dumps(fields))["terms"][1]["removed"][0][0] == "night"
