"""cphoc (the C extension) against the plain-Python reference, and the spelling lookup on top."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cphoc
from cphoc import _cphoc, phoc
from server.artifacts import DEFAULT_MODEL_DIR, WORDS_FILE
from server.serve.spelling import (
    DEFAULT_THRESHOLD,
    Correction,
    SpellingIndex,
    _occupies,
    reference_phoc,
)
from server.wordspace import WordSpace

SHIPPED_WORDS = DEFAULT_MODEL_DIR / WORDS_FILE

# As listed in Lluis Gomez's cphoc (single-shot-str), in dimension order.
REFERENCE_BIGRAMS = (
    "th he in er an re es on st nt en at ed nd to or ea ti ar te ng al it as is "
    "ha et se ou of le sa ve ro ra ri hi ne me de co ta ec si ll so na li la el"
).split()

FIXED_WORDS = [
    "", "a", "ab", "th", "the", "hello", "dog", "dogs", "bicycle", "mountain", "skateboard",
    "Hello", "HELLO", "DoG", "snow-covered", "don't", "3d", "1990s", "a1b2c3", "x" * 7,
    "café", "naïve", "Ärger", "日本語", "straße", "ǅemal", "🐶dog🐶", "\u0301e", "a\x00b",
    "\ud800", "  ", "!!!", "tab\there", "\u0663\u0664", "z" * 200, "the" * 333,
    "".join(chr(c) for c in range(32, 127)),
]


def assert_same(words):
    got = phoc(words)
    expected = np.stack([reference_phoc(w) for w in words]) if words else np.zeros((0, 604))
    np.testing.assert_array_equal(got, expected)


def test_constants_are_the_references():
    assert cphoc.UNIGRAMS == "abcdefghijklmnopqrstuvwxyz0123456789"
    assert list(cphoc.BIGRAMS) == REFERENCE_BIGRAMS
    assert cphoc.UNIGRAM_LEVELS == (2, 3, 4, 5)
    assert cphoc.BIGRAM_LEVELS == (2,)
    assert cphoc.PHOC_DIM == 36 * (2 + 3 + 4 + 5) + 50 * 2 == 604


def test_hand_checked_dims():
    # "ab": a = 0, b = 1 occupy [0, .5] and [.5, 1]. Level offsets: 2 -> 0, 3 -> 72, 4 -> 180,
    # 5 -> 324; slot = offset + region * 36 + letter.
    #   level 2: a in half 0 (0), b in half 1 (36 + 1)
    #   level 3: a has 2/3 of itself in third 0 (72), b in third 2 (72 + 72 + 1)
    #   level 4: half of a in each of quarters 0 and 1 (180, 216), b in 2 and 3 (253, 289)
    #   level 5: a fifth (0.2 wide) holds at most 0.4 of a letter 0.5 wide: nothing
    assert np.flatnonzero(phoc("ab")).tolist() == [0, 37, 72, 145, 180, 216, 253, 289]
    # "th": t = 19, h = 7 as above, plus the bigram "th" (0) over [0, 1]: half of it in each
    # half, so slots 504 + 0 and 504 + 50 + 0.
    assert np.flatnonzero(phoc("th")).tolist() == [19, 43, 91, 151, 199, 235, 259, 295, 504, 554]
    vector = phoc("ab")
    assert vector.shape == (604,) and vector.dtype == np.float32
    assert set(np.unique(phoc("hello"))) == {0.0, 1.0}


def test_ties_are_rounded_as_the_reference():
    # The middle "l" of "hello" covers [.4, .6]: exactly half in each half of the word. The
    # reference's single-precision arithmetic gives 0.49999994 for half 0 and 0.50000006 for
    # half 1, so it is in half 1 only; the same for the middle "b" of "abc".
    l_ = cphoc.UNIGRAMS.index("l")
    assert phoc("hello")[l_] == 0 and phoc("hello")[36 + l_] == 1
    assert np.flatnonzero(phoc("abc")[:72]).tolist() == [0, 36 + 1, 36 + 2]
    # When every quantity is exact in float, a tie counts for both: "a" of "ab" fills exactly
    # half of itself with each of quarters 0 and 1.
    assert phoc("ab")[180] == 1 and phoc("ab")[180 + 36] == 1


def test_single_precision_rule_is_the_exact_rule_away_from_ties():
    ties = 0
    for length in range(1, 121):
        for width in (1, 2):
            for first in range(length - width + 1):
                for level in (2, 3, 4, 5):
                    for region in range(level):
                        start, end = Fraction(first, length), Fraction(first + width, length)
                        overlap = min(end, Fraction(region + 1, level)) - max(
                            start, Fraction(region, level)
                        )
                        share = overlap / (end - start)
                        if share == Fraction(1, 2):
                            ties += 1
                            continue
                        got = _occupies(first, first + width, length, level, region)
                        assert got == (share > Fraction(1, 2)), (first, width, length, level)
    assert ties > 100


def test_c_equals_reference_on_fixed_words():
    assert_same(FIXED_WORDS)
    for word in FIXED_WORDS:
        np.testing.assert_array_equal(phoc(word), reference_phoc(word))


def test_c_equals_reference_on_the_shipped_vocabulary():
    words = WordSpace.load(SHIPPED_WORDS).words
    assert len(words) > 3000
    assert_same(words)


@given(st.lists(st.text(max_size=40), max_size=8))
def test_c_equals_reference_on_any_unicode(words):
    assert_same(words)


@given(st.text(alphabet=cphoc.UNIGRAMS + "ABCXYZ -'.é\u4e2d", max_size=60))
def test_c_equals_reference_on_mostly_alphabet_strings(word):
    np.testing.assert_array_equal(phoc(word), reference_phoc(word))


@settings(max_examples=20, deadline=None)
@given(st.text(alphabet="aeltnh09 é", min_size=500, max_size=5000))
def test_c_equals_reference_on_long_strings(word):
    np.testing.assert_array_equal(phoc(word), reference_phoc(word))


def test_characters_outside_the_alphabet_keep_their_position():
    assert not phoc("").any() and not phoc("!!!").any() and not phoc("日本").any()
    assert not phoc("é").any()
    for other in ("é", "!", " ", "\x00", "Ä", "\u0663", "🐶"):
        np.testing.assert_array_equal(phoc(f"x{other}"), phoc("x-"))
        assert not np.array_equal(phoc(f"x{other}"), phoc("x"))
    np.testing.assert_array_equal(phoc("DoG"), phoc("dog"))
    # a bigram is two adjacent positions: "t-h" has none, "th" has one
    assert not phoc("t-h")[504:].any() and phoc("th")[504:].any()


def test_batches_and_sequences():
    words = ["dog", "", "Beach!", "bicycle"]
    batch = phoc(words)
    assert batch.shape == (4, 604) and batch.dtype == np.float32
    for row, word in zip(batch, words, strict=True):
        np.testing.assert_array_equal(row, phoc(word))
    np.testing.assert_array_equal(phoc(tuple(words)), batch)
    np.testing.assert_array_equal(phoc(np.array(words)), batch)
    assert phoc([]).shape == (0, 604)
    batch[0, 0] = 5  # a writable array, not a view of an immutable buffer
    assert batch[0, 0] == 5


@pytest.mark.parametrize("bad", [None, 3, 1.5, b"dog", bytearray(b"dog"), ["dog", 3], [b"dog"]])
def test_wrong_types_raise_type_error(bad):
    with pytest.raises(TypeError):
        phoc(bad)


def test_extension_checks_its_arguments():
    with pytest.raises(TypeError, match="must be str"):
        _cphoc.build_phoc(b"dog")
    with pytest.raises(TypeError, match="sequence of str"):
        _cphoc.build_phocs("dog")  # a str is not a list of words
    with pytest.raises(TypeError, match="item 1"):
        _cphoc.build_phocs(["dog", None])
    with pytest.raises(TypeError):
        _cphoc.build_phoc()
    assert len(_cphoc.build_phoc("dog")) == 604 * 4


# ----------------------------------------------------------------------- spelling lookup


@pytest.fixture(scope="module")
def shipped():
    return SpellingIndex(WordSpace.load(SHIPPED_WORDS).words)


@pytest.fixture(scope="module")
def shipped_reference(shipped):
    """The shipped vocabulary's PHOCs from the Python reference, float64."""
    return np.stack([reference_phoc(w) for w in shipped.words]).astype(np.float64)


def test_nearest_is_sorted_and_sized():
    index = SpellingIndex(["dog", "dogs", "cat", "bicycle", "!!!"])
    assert len(index) == 5
    best = index.nearest("dgos", k=3)
    assert [w for w, _ in best][:1] == ["dogs"]
    similarities = [s for _, s in best]
    assert similarities == sorted(similarities, reverse=True) and len(best) == 3
    assert len(index.nearest("dog", k=50)) == 5 and index.nearest("dog", k=0) == []
    word, similarity = index.nearest("dog", k=1)[0]
    assert word == "dog" and similarity == pytest.approx(1.0)
    assert all(np.isfinite(s) for _, s in index.nearest("", k=5))
    with pytest.raises(ValueError):
        index.nearest("dog", k=-1)


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet="abdeghilnorst", max_size=10), st.integers(0, 12))
def test_nearest_is_the_brute_force_top_k(shipped, shipped_reference, word, k):
    vectors = shipped_reference
    query = reference_phoc(word).astype(np.float64)
    norms = np.linalg.norm(vectors, axis=1) * np.linalg.norm(query)
    cosine = np.divide(vectors @ query, norms, out=np.zeros(len(norms)), where=norms > 0)
    best = shipped.nearest(word, k)
    assert len(best) == k
    position = {w: i for i, w in enumerate(shipped.words)}
    chosen = [position[w] for w, _ in best]
    np.testing.assert_allclose([s for _, s in best], cosine[chosen], atol=1e-6)
    similarities = [s for _, s in best]
    assert similarities == sorted(similarities, reverse=True)
    if k:
        others = np.delete(cosine, chosen)
        assert best[-1][1] >= others.max() - 1e-6


def test_equal_similarities_keep_vocabulary_order():
    # "beech" is as close to "beach" as to "bench"; the vocabulary order (frequency) decides
    assert SpellingIndex(["bench", "beach"]).nearest("beech", 1)[0][0] == "bench"
    assert SpellingIndex(["beach", "bench"]).nearest("beech", 1)[0][0] == "beach"


def test_correct_known_unknown_and_threshold():
    index = SpellingIndex(["dog", "bicycle"])
    assert index.correct("dog") == Correction("dog", 1.0)
    assert index.correct("bycicle").word == "bicycle"
    assert index.correct("") is None and index.correct("qzxv") is None
    strict = SpellingIndex(["dog", "bicycle"], threshold=0.99)
    assert strict.correct("bycicle") is None and strict.correct("dog") is not None
    assert 0 < DEFAULT_THRESHOLD < 1
    assert SpellingIndex([]).nearest("dog") == [] and SpellingIndex([]).correct("dog") is None


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("bycicle", "bicycle"),
        ("moutain", "mountain"),
        ("beech", "beach"),
        ("runing", "running"),
        ("jumpping", "jumping"),
        ("skatebord", "skateboard"),
        ("footbal", "football"),
        ("umbrela", "umbrella"),
        ("peple", "people"),
        ("childern", "children"),
        ("buidling", "building"),
        ("doggs", "dogs"),
        ("Dog", "dog"),
    ],
)
def test_shipped_vocabulary_corrects_typos(shipped, typo, meant):
    correction = shipped.correct(typo)
    assert correction is not None and correction.word == meant
    assert correction.similarity >= shipped.threshold


@pytest.mark.parametrize(
    "garbage", ["qzxv", "zzzzzz", "xkcd", "asdfgh", "zxcvbn", "qwerty", "hjkl", "!!!", "", "12345"]
)
def test_shipped_vocabulary_refuses_garbage(shipped, garbage):
    assert shipped.correct(garbage) is None
    assert len(shipped.nearest(garbage, k=5)) == 5  # suggestions are still there to show
