"""The map-label measure (server/learn/map_labels.py) against brute force: which words count as
naming a noun, and the most any labelling of the regions could name."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from server.learn.map_labels import (
    CLOSE,
    WORDNET,
    close_words,
    describing_words,
    label_table,
    nearest_sets,
    tagged_counts,
)
from server.wordspace import WordSpace

needs_wordnet = pytest.mark.skipif(not WORDNET.is_dir(), reason="needs Debian's wordnet-base")

GROUPS = {"man": ("man", "men", "guy"), "woman": ("woman", "lady"), "dog": ("dog", "dogs")}


def toy_words(seed: int) -> WordSpace:
    """Three groups of near words among 40 random ones, in 16 dimensions."""
    rng = np.random.default_rng(seed)
    words, rows = [], []
    for members in GROUPS.values():
        axis = rng.normal(size=16)
        for word in members:
            words.append(word)
            rows.append(axis + 0.3 * rng.normal(size=16))
    for number in range(40):
        words.append(f"filler{number}")
        rows.append(rng.normal(size=16))
    return WordSpace(words, np.array(rows, np.float32))


def brute_close(words: WordSpace, noun: str, label: str) -> bool:
    """A label names a noun: the same but for a plural s, or either among the other's CLOSE
    nearest (each neighbour list computed alone)."""
    def nearest(word: str) -> set[str]:
        return {w for w, _ in words.nearest_words(words.unit_vector(word), CLOSE)}
    return label.rstrip("s") == noun.rstrip("s") or label in nearest(noun) or noun in nearest(label)


@pytest.mark.parametrize("seed", range(4))
def test_close_words_are_those_a_pairwise_check_accepts(seed):
    words = toy_words(seed)
    for noun in GROUPS:
        assert close_words(words, noun, nearest_sets(words)) == \
            {w for w in words.words if brute_close(words, noun, w)}


@needs_wordnet
@pytest.mark.parametrize(("seed", "also"), [(seed, also) for seed in range(4)
                                            for also in ([], ["lady"])])
def test_the_most_a_labelling_could_name_is_the_best_of_every_labelling(seed, also):
    """`good`, `first` and `possible` against trying every choice of as many words as each
    region's label has."""
    words = toy_words(seed)
    rng = np.random.default_rng(seed)
    captions = {i: f"a {noun} on the grass" for i, noun in enumerate(["man"] * 12 + ["woman"] * 9
                                                                      + ["dog"] * 10)}
    corners = np.array([[0.0, 0.0], [1.0, 1.0]], np.float32)
    # men and women share the first region, the dogs the second, with a few strays
    where = [0] * 21 + [1] * 10
    for stray in rng.choice(len(where), 3, replace=False):
        where[stray] = 1 - where[stray]
    xy = corners[where] + 0.01 * rng.normal(size=(len(where), 2)).astype(np.float32)
    regions = [{"level": 0, "x": 0.0, "y": 0.0, "label": "guy", "also": also},
               {"level": 0, "x": 1.0, "y": 1.0, "label": "dogs", "also": []}]
    table = label_table(captions, np.arange(len(where)), xy, regions, words)
    assert [row[0] for row in table.rows] == ["man", "dog", "woman"]  # by photos holding them
    shown = {"man": ["guy", *also], "woman": ["guy", *also], "dog": ["dogs"]}
    assert [row[2] for row in table.rows] == [" ".join(shown[row[0]]) for row in table.rows]
    close = {(noun, word): brute_close(words, noun, word) for noun in shown for word in words.words}
    assert [row[3] for row in table.rows] == [any(close[row[0], w] for w in shown[row[0]])
                                              for row in table.rows]
    assert table.good == sum(row[3] for row in table.rows)
    assert table.first == sum(close[row[0], shown[row[0]][0]] for row in table.rows)
    best = max(sum(any(close[noun, w] for w in (first if noun != "dog" else (second,)))
                   for noun in shown)
               for first in itertools.combinations(words.words, 1 + len(also))
               for second in words.words)
    assert table.possible == best
    assert table.first <= table.good <= table.possible


@needs_wordnet
def test_nouns_are_told_by_how_often_wordnet_tags_them():
    """Tag counts, not tagged senses: "dog" has one sense tagged as a noun and one as a verb,
    but is tagged 42 times a noun and twice a verb."""
    counts = tagged_counts()
    assert counts["noun"]["dog"] > 10 * counts["verb"]["dog"]
    assert counts["adj"]["red"] > counts["noun"]["red"]


@needs_wordnet
def test_describing_words_leave_out_actions_and_adverbs_only():
    """The words a map label is made of: not the -ing forms of verbs ("wearing") unless WordNet's
    corpus tags the form itself as a thing often enough ("building"), not adverbs ("behind");
    nouns the corpus tags as verbs as often stay ("dress"), as do words it never tagged."""
    vocabulary = ["wearing", "holding", "swimming", "behind", "around", "building", "painting",
                  "dress", "train", "dog", "red", "near", "surfing", "zzyzx"]
    kept = describing_words(vocabulary)
    assert kept == ["building", "painting", "dress", "train", "dog", "red", "near", "surfing",
                    "zzyzx"]
