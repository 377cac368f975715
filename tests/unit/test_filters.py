"""Filters and orders of a query, in process: parsing, the rows a filter keeps, the search
among them (against a brute-force reference), and the order by date."""

from __future__ import annotations

import numpy as np
import pytest

from server.artifacts import DEFAULT_MODEL_DIR, model_fingerprint
from server.serve import gallery as gallery_module
from server.serve.filters import Within, within
from server.serve.gallery import Gallery, Item, write_generation
from server.serve.relevance import RelevanceLines
from server.serve.retrieval import QueryRequest, Retriever
from server.serve.search import ExactSearch, search_within
from server.vectors import normalized

FOLDERS = ("2019/summer", "2019/summer-camp", "2019/winter", "2020", "")


def test_a_filter_reads_days_and_folders_and_says_what_is_wrong():
    assert within("2019-07-01", "2019-07-31", "/2019/summer/") == \
        Within("2019-07-01", "2019-08-01", "2019/summer")
    assert within(None, None, "").everything
    for since, until, folder, wrong in [("2019-7-1", None, None, '"from" must be a day'),
                                        (None, "yesterday", None, '"to" must be a day'),
                                        ("2019-08-01", "2019-07-01", None, "is before"),
                                        (None, None, "a/../b", '"folder" must be'),
                                        (None, None, "a//b", '"folder" must be')]:
        with pytest.raises(ValueError, match=wrong):
            within(since, until, folder)


@pytest.fixture(scope="module")
def dated(tmp_path_factory, word_space) -> Gallery:
    """60 images, in FOLDERS in turn, one a day from 2019-06-01; random unit vectors."""
    directory = tmp_path_factory.mktemp("dated")
    rng = np.random.default_rng(0)
    items = [Item(row + 1, row, f"{FOLDERS[row % 5]}/{row:02d}.jpg".lstrip("/"), 1, 0, None,
                  f"2019-{6 + row // 30:02d}-{1 + row % 30:02d}T12:00:00") for row in range(60)]
    write_generation(directory, root=directory,
                     model_fingerprint=model_fingerprint(DEFAULT_MODEL_DIR), items=items,
                     skipped=[], next_id=61,
                     vectors=normalized(rng.normal(size=(60, word_space.dim))))
    return Gallery(directory)


def test_a_filter_keeps_its_rows_only(dated):
    paths = {item.row: (item.path, item.taken) for item in dated.all_items()}

    def kept(**given) -> set[int]:
        return set(dated.rows_within(within(**given)).tolist())

    # a folder is its subtree: not the folder whose name only starts the same
    assert kept(since=None, until=None, folder="2019/summer") == \
        {row for row, (path, _) in paths.items() if path.startswith("2019/summer/")}
    assert kept(since=None, until=None, folder="2019") == \
        {row for row, (path, _) in paths.items() if path.startswith("2019/")}
    assert kept(since="2019-06-10", until="2019-06-12", folder=None) == {9, 10, 11}
    assert kept(since="2019-07-01", until=None, folder="2020") == \
        {row for row, (path, taken) in paths.items()
         if path.startswith("2020/") and taken >= "2019-07-01"}


def test_the_index_lists_its_folders_with_the_photos_below_each(dated, monkeypatch, tmp_path):
    """What the page offers the folder filter: every folder with a photo in it or below it
    (the root's own photos in none), the fullest first; the same count as the filter keeps."""
    paths = [item.path for item in dated.all_items()]
    below: dict[str, int] = {}
    for path in paths:  # brute force: every proper prefix of the path that ends at a slash
        for end in [i for i, char in enumerate(path) if char == "/"]:
            below[path[:end]] = below.get(path[:end], 0) + 1
    assert dated.folders == sorted(([folder, photos] for folder, photos in below.items()),
                                   key=lambda entry: (-entry[1], entry[0]))
    assert dated.folders[0] == ["2019", 36]
    for folder, photos in dated.folders:
        assert len(dated.rows_within(within(None, None, folder))) == photos
    # only the fullest FOLDERS_LISTED are kept
    monkeypatch.setattr(gallery_module, "FOLDERS_LISTED", 2)
    write_generation(tmp_path, root=tmp_path, model_fingerprint=model_fingerprint(
        DEFAULT_MODEL_DIR), items=dated.all_items(), skipped=[], next_id=61, vectors=dated.vectors)
    assert Gallery(tmp_path).folders == dated.folders[:2]
    # a folder the filter would refuse (too long) is not offered, and the fuller ones stay
    long = "b" * 1001
    items = [item._replace(path=f"{long}/{item.row}.jpg" if item.row < 30 else item.path)
             for item in dated.all_items()]
    write_generation(tmp_path, root=tmp_path, model_fingerprint=model_fingerprint(
        DEFAULT_MODEL_DIR), items=items, skipped=[], next_id=61, vectors=dated.vectors)
    assert Gallery(tmp_path).folders[0][0] != long and long not in dict(Gallery(tmp_path).folders)
    # ... and only as many as fit FOLDER_CHARS_LISTED characters of paths
    monkeypatch.setattr(gallery_module, "FOLDERS_LISTED", 1000)
    monkeypatch.setattr(gallery_module, "FOLDER_CHARS_LISTED", len("2019") + len("2019/summer"))
    write_generation(tmp_path, root=tmp_path, model_fingerprint=model_fingerprint(
        DEFAULT_MODEL_DIR), items=dated.all_items(), skipped=[], next_id=61, vectors=dated.vectors)
    assert Gallery(tmp_path).folders == dated.folders[:2]


def test_search_within_is_the_brute_force_best_of_the_rows(dated):
    rng = np.random.default_rng(1)
    vectors = np.asarray(dated.vectors, np.float32)
    rows = np.sort(rng.choice(60, 25, replace=False))
    for _ in range(5):
        query = rng.normal(size=vectors.shape[1]).astype(np.float32)
        found = search_within(vectors, rows, query, 7, exclude={int(rows[0])})
        allowed = [int(r) for r in rows[1:]]
        scores = vectors[allowed] @ normalized(query)
        reference = [allowed[i] for i in np.argsort(-scores)[:7]]
        assert found.rows.tolist() == reference
        assert np.allclose(found.scores, np.sort(scores)[::-1][:7], atol=1e-6)
    assert search_within(vectors, rows[:3], query, 10).rows.tolist() == \
        [int(r) for r in rows[:3][np.argsort(-(vectors[rows[:3]] @ normalized(query)))]]


def test_a_date_order_puts_the_close_matches_newest_first(dated, word_space):
    line = 0.0  # every result with a positive score is a close match here
    retriever = Retriever(word_space, dated, ExactSearch(dated.vectors),
                          lines=RelevanceLines(line, line, 0.4))
    by_score = retriever.answer_many([QueryRequest("dog", k=60)])[0]
    by_date = retriever.answer_many([QueryRequest("dog", k=60, order="date")])[0]
    assert not isinstance(by_score, Exception) and not isinstance(by_date, Exception)
    close = by_score.relevant
    assert close is not None and 0 < close < 60 and by_date.relevant == close
    newest = [item.taken for item in by_date.matches[:close]]
    assert newest == sorted(newest, reverse=True)
    assert {i.id for i in by_date.matches[:close]} == {i.id for i in by_score.matches[:close]}
    assert by_date.matches[close:] == by_score.matches[close:]  # the others as they ranked
    filtered = retriever.answer_many([QueryRequest("dog", k=24, within=within(
        None, None, "2019/winter"))])[0]
    assert not isinstance(filtered, Exception)
    assert {item.path.split("/")[1] for item in filtered.matches} == {"winter"}
    assert len(filtered.matches) == 12


def test_the_line_is_for_the_queries_it_was_measured_on():
    from server.serve.query import parse
    lines = RelevanceLines(0.29, 0.375, 0.4)
    assert lines.line(parse("dog"), sentence=False) == 0.29
    assert lines.line(parse("dog+beach"), sentence=False) == 0.375
    assert lines.line(parse("red car"), sentence=False) == 0.375
    for unmeasured in ("car-yellow", "[IMG_1]+park", "[UPLOAD_1]"):
        assert lines.line(parse(unmeasured), sentence=False) is None
    assert lines.line(parse("a man in a red shirt"), sentence=True) is None
