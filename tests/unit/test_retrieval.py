"""The query path in process: text read into a vector, the gallery searched, the records and
nearest words made (server/serve/retrieval.py), on a gallery of words (conftest.py)."""

from __future__ import annotations

import pytest

from server.serve.query import QueryError
from server.serve.retrieval import QueryRequest
from tests.unit.conftest import GALLERY_WORDS, image_of


@pytest.mark.parametrize("word", ["dog", "beach", "bicycle", "city"])
def test_a_word_finds_the_image_made_of_it_first(retriever, word):
    answer = retriever.answer(word, k=3)
    assert answer.hits[0].id == image_of(word)
    assert answer.hits[0].caption == word
    assert answer.hits[0].score == pytest.approx(1.0, abs=1e-3)
    assert [hit.score for hit in answer.hits] == sorted((h.score for h in answer.hits),
                                                        reverse=True)


def test_the_results_are_k_at_most_and_never_more_than_the_gallery(retriever):
    assert len(retriever.answer("dog", k=5).hits) == 5
    assert len(retriever.answer("dog", k=200).hits) == len(GALLERY_WORDS)


def test_an_image_term_is_left_out_of_its_results_unless_asked(retriever):
    term = f"[IMG_{image_of('cat')}]"
    assert image_of("cat") not in [hit.id for hit in retriever.answer(term).hits]
    kept = retriever.answer(term, exclude_query_images=False)
    assert kept.hits[0].id == image_of("cat")


def test_an_upload_term_is_the_uploaded_vector(retriever, word_space):
    answer = retriever.answer("[UPLOAD_1]", uploads={1: word_space.word_vector("horse")})
    assert answer.hits[0].id == image_of("horse")
    with pytest.raises(QueryError, match="upload an image first"):
        retriever.answer("[UPLOAD_2]", uploads={1: word_space.word_vector("horse")})


def test_subtraction_moves_the_ranking_away(retriever):
    assert retriever.answer("dog-dog+snow", k=1).hits[0].id == image_of("snow")
    with pytest.raises(QueryError, match="cancel"):
        retriever.answer("dog-dog")


def test_terms_say_what_each_part_of_the_query_was(retriever):
    answer = retriever.answer("2*beach-car")
    assert [(term["sign"], term["weight"], term["text"]) for term in answer.terms] == [
        ("+", 2.0, "beach"), ("-", 1.0, "car")]


def test_a_typo_is_corrected_and_said(retriever):
    answer = retriever.answer("mountian")
    assert answer.corrections == [("mountian", "mountain")]
    assert answer.hits[0].id == image_of("mountain")
    # the query as understood says the word used, and so does an uncorrected one
    assert answer.query == "mountain"
    assert retriever.answer("2*beach-mountian").query == "2*beach-mountain"
    assert retriever.answer("2*beach-car").query == "2*beach-car"


def test_a_batch_answers_each_request_or_gives_its_own_error(retriever):
    results = retriever.answer_many([QueryRequest("boat"), QueryRequest("[IMG_999]"),
                                     QueryRequest("river", k=2)])
    assert results[0].hits[0].id == image_of("boat")
    assert isinstance(results[1], QueryError) and "no image [IMG_999]" in str(results[1])
    assert [hit.id for hit in results[2].hits][:1] == [image_of("river")]


def test_describe_names_the_words_near_an_image(retriever):
    item, nearest, picture = retriever.describe(image_of("horse"), k=5)
    assert item.id == image_of("horse")
    assert nearest[0][0] == "horse" and len(nearest) == 5
    assert picture == nearest  # no caption vectors: the picture is all there is
    with pytest.raises(QueryError, match="no image"):
        retriever.describe(999)
