from server.text import STOP_WORDS, build_vocab, normalize_word, tokenize


def test_hashtags_become_words_and_punctuation_goes():
    assert tokenize("Sunset at the #beach!! #SanFrancisco_2017") == [
        "sunset", "beach", "sanfrancisco", "2017",
    ]


def test_stop_words_dropped_and_case_folded():
    assert tokenize("A Dog is running in THE snow .") == ["dog", "running", "snow"]
    assert "dog" not in STOP_WORDS and "the" in STOP_WORDS


def test_apostrophes_and_unicode():
    # "dog's" splits into "dog" + "s", and "s" is a stop word; accented letters are letters.
    assert tokenize("The dog's café — naïve ☀️ fun") == ["dog", "café", "naïve", "fun"]


def test_empty_and_symbol_only_captions():
    assert tokenize("") == []
    assert tokenize("!!! ### ...") == []


def test_normalize_word_matches_tokenize():
    for raw in ["#Beach!", "SNOW", "running,"]:
        assert [normalize_word(raw)] == tokenize(raw)
    assert normalize_word("#Beach!") == "beach"
    assert normalize_word("Snow_") == "snow"


def test_vocab_min_count_and_order():
    sentences = [["b", "a", "c"], ["a", "b"], ["a", "d"]]
    assert build_vocab(sentences, min_count=2) == {"a": 3, "b": 2}
    # ties broken alphabetically, so ids are stable
    assert list(build_vocab([["y", "x"]], min_count=1)) == ["x", "y"]
