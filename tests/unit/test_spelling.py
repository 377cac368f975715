"""Spelling help: edit distance against a brute-force reference, candidates and their ranking,
and the English table's map, on small vocabularies."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.english import BlendMap, EnglishWords, blend
from server.serve.spelling import Speller, edit_distance, edits1
from server.wordspace import WordSpace


def reference_distance(a: str, b: str) -> int:
    """Optimal string alignment distance, the textbook full table."""
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, j in itertools.product(range(len(a) + 1), range(len(b) + 1)):
        if min(i, j) == 0:
            table[i][j] = max(i, j)
            continue
        table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1,
                          table[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
        if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
            table[i][j] = min(table[i][j], table[i - 2][j - 2] + 1)
    return table[-1][-1]


@settings(max_examples=300, deadline=None)
@given(st.text("abcde", max_size=7), st.text("abcde", max_size=7))
def test_edit_distance_matches_the_reference_up_to_its_limit(a, b):
    expected = reference_distance(a, b)
    assert edit_distance(a, b, limit=2) == min(expected, 3)
    assert edit_distance(a, b, limit=10) == expected


def test_edits1_are_exactly_the_strings_one_edit_away():
    near = edits1("dog")
    assert {"god", "dgo", "do", "dogs", "fog", "odg"} - {"god"} <= near
    assert "dog" not in near and all(reference_distance("dog", s) == 1 for s in near)


CAPTIONS = ["dog", "girls", "beach", "grass", "bench"]
ENGLISH = ["the", "ago", "dog", "beach", "girls", "grins", "happiness", "beech", "bench"]


def test_only_non_words_are_corrected_and_the_likely_word_wins():
    speller = Speller(CAPTIONS, ENGLISH)
    assert speller.known("beech") and speller.known("dog") and not speller.known("dgo")
    assert speller.correct("dgo") == "dog"  # not "ago", equally near but not a caption word
    assert speller.correct("grils") == "girls"  # not "grins", more alike by PHOC
    assert speller.correct("baech") == "beach"
    assert speller.correct("happyness") == "happiness"  # one substitution, from English
    assert speller.correct("xqzvw") is None
    assert speller.correct("thw") != "the"  # stop words are never offered


def test_two_edits_only_when_nothing_is_one_away():
    speller = Speller(["bicycle", "icicle", "bicycles"], [])
    # both 2 away, the likelier first; "bicycles" (3 away) is not a candidate
    assert [w for w, _ in speller.candidates("bycicle")] == ["bicycle", "icicle"]
    assert [w for w, _ in Speller(["bicycle", "bicycles"]).candidates("bicycl")] == ["bicycle"]
    assert speller.candidates("zzzzzzz") == []
    assert Speller(["girl"]).candidates("xirx") == []  # two edits of four letters: too few


def test_a_rare_word_next_to_a_common_caption_word_gets_it_as_a_suggestion():
    english = [f"filler{i}" for i in range(100)] + ["beach", "bench"] + \
        [f"rare{i}" for i in range(1000)] + ["beech"]
    speller = Speller(["beach", "bench"], english)
    assert speller.more_common("beech") == ["beach", "bench"]
    assert speller.more_common("beach") == []  # a caption word stands as it is


def test_blend_takes_the_nearest_anchors_targets():
    anchors = np.eye(3, dtype=np.float32)
    targets = np.array([[1, 0], [0, 1], [-1, 0]], np.float32)
    out = blend(np.array([[1, 0.1, 0]], np.float32), anchors, targets, BlendMap(k=1))
    np.testing.assert_allclose(out, [[1, 0]], atol=1e-6)
    soft = blend(np.array([[1, 1, 0]], np.float32), anchors, targets, BlendMap(k=2))
    np.testing.assert_allclose(soft, [[np.sqrt(0.5), np.sqrt(0.5)]], atol=1e-6)


def test_english_words_map_through_the_caption_words_they_share():
    space = WordSpace(["dog", "car"], np.array([[0, 1, 0], [0, 0, 1]], np.float32))
    glove = np.array([[1, 0], [0.9, 0.1], [0, 1]], np.float16)  # dog, puppy, car
    english = EnglishWords(["dog", "puppy", "car"], glove, space, BlendMap(k=1))
    assert "puppy" in english and "kitten" not in english
    np.testing.assert_allclose(english.joint_vector("puppy"), [0, 1, 0], atol=1e-6)
    with pytest.raises(KeyError, match="kitten"):
        english.joint_vector("kitten")


@pytest.mark.parametrize("word", ["x" * 128, "x" * 300, "é" * 300, "a" * 127 + "b" * 200])
def test_letter_counts_hold_words_of_any_length(word):
    """A word's letter counts and length, however long: an int8 count of 300 letters was an
    OverflowError, answered `internal`."""
    from server.serve.spelling import LETTERS, _letter_counts

    counts = _letter_counts(["dog", word])
    assert counts[1, -1] == len(word) and counts[0].tolist()[-1] == 3
    assert counts[1, :-1].sum() == sum(word.count(c) for c in LETTERS)


def test_two_edit_candidates_of_a_long_word_are_found_exactly():
    """Past int8's range, the filter still finds the word two edits away, and only it."""
    long_word = "ab" * 100
    speller = Speller([long_word, "dog"], [])
    assert speller._two_edits("ab" * 99 + "xy") == [long_word]
    assert speller._two_edits("ab" * 99 + "xyzw") == []
    assert speller.correct("é" * 300) is None and speller.correct("x" * 5000) is None
