"""The streaming indexer's parts in process: a generation written block by block, rows read by
position, and a run's work on disk (server/serve/gallery.py, server/serve/index_work.py)."""

from __future__ import annotations

import numpy as np
import pytest

from server.serve.gallery import Gallery, GenerationWriter, Item, MatrixRows, Skipped
from server.serve.index_work import Result, Work, items_of

DIM = 4


def unit_rows(count: int, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((count, DIM)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def write_index(directory, paths: list[str], vectors: np.ndarray, skipped=(), blocks: int = 2
                ) -> None:
    """A generation of `paths` with ids 1, 2, ... written in `blocks` pieces."""
    items = [Item(i + 1, i, path, 100 + i, 1_000 + i, None) for i, path in enumerate(paths)]
    with GenerationWriter(directory, root=directory, model_fingerprint="m", count=len(items),
                          dim=DIM, dtype="float32", captioned=False) as writer:
        for piece in np.array_split(np.arange(len(items)), blocks):
            writer.add([items[i] for i in piece], vectors[piece])
        writer.commit(list(skipped), len(items) + 1)


def test_a_generation_written_in_blocks_reads_back_whole(tmp_path):
    vectors = unit_rows(7)
    write_index(tmp_path, [f"{i}.jpg" for i in range(7)], vectors, blocks=3)
    gallery = Gallery(tmp_path, model_fingerprint="m")
    assert np.array_equal(np.asarray(gallery.vectors), vectors)
    assert [item.path for item in gallery.all_items()] == [f"{i}.jpg" for i in range(7)]
    assert gallery.manifest["next_id"] == 8 and gallery.generation == 1


def test_a_writer_that_does_not_write_what_it_announced_leaves_the_index_as_it_was(tmp_path):
    write_index(tmp_path, ["a.jpg"], unit_rows(1))
    with pytest.raises(ValueError, match="1 rows written of the 2 announced"), \
            GenerationWriter(tmp_path, root=tmp_path, model_fingerprint="m", count=2, dim=DIM,
                             dtype="float32", captioned=False) as writer:
        writer.add([Item(5, 0, "b.jpg", 1, 1, None)], unit_rows(1, seed=1))
        writer.commit([], 6)
    gallery = Gallery(tmp_path)
    assert gallery.generation == 1 and [i.path for i in gallery.all_items()] == ["a.jpg"]


def test_matrix_rows_come_in_the_order_asked_from_npy_and_raw_files(tmp_path):
    vectors = unit_rows(10)
    np.save(tmp_path / "m.npy", vectors)
    (tmp_path / "m.bin").write_bytes(vectors.astype(np.float16).tobytes())
    wanted = [7, 2, 3, 4, 9, 0, 3]  # runs of adjacent rows, out of order, one twice
    npy = MatrixRows(tmp_path / "m.npy")
    assert np.array_equal(npy.read(wanted), vectors[wanted]) and npy.read([]).shape == (0, DIM)
    raw = MatrixRows(tmp_path / "m.bin", "float16", DIM)
    assert np.array_equal(raw.read(wanted), vectors.astype(np.float16)[wanted])
    with pytest.raises(Exception, match="fewer rows"):
        raw.read([10])
    npy.close()
    raw.close()


def open_work(index, dtype: str = "float32") -> Work:
    previous = index / "items-1.sqlite"
    return Work(index / "partial", fingerprint="m", dim=DIM, dtype=dtype,
                previous_items=previous if previous.exists() else None)


def test_each_file_present_gets_its_fate_from_one_join(tmp_path):
    """Kept with its row and id, changed, new, gone, skipped before: what the next run does."""
    write_index(tmp_path, ["a.jpg", "b.jpg", "c.jpg"], unit_rows(3),
                skipped=[Skipped("bad.jpg", 5, 5, "not an image"),
                         Skipped("fifo.jpg", 0, 0, "cannot read: not a regular file")])
    work = open_work(tmp_path)
    work.add_present([("a.jpg", 100, 1_000, None),      # unchanged
                      ("c.jpg", 102, 9_999, None),      # changed: its mtime
                      ("new.jpg", 7, 7, "a new one"),
                      ("bad.jpg", 5, 5, None),          # still the bad file it was
                      ("fifo.jpg", 0, 0, None)])        # could not be read: tried again
    (block,) = list(work.all_outcomes(reuse=True))
    fates = {o.path: (o.id, o.previous_row, o.reason) for o in block}
    assert fates == {"a.jpg": (1, 0, None), "c.jpg": (3, None, None),
                     "new.jpg": (None, None, None), "bad.jpg": (None, None, "not an image"),
                     "fifo.jpg": (None, None, None)}
    found = work.summary(reuse=True, previous_count=3)
    assert (found.todo, found.vectors, found.removed, found.same_records) == (3, 1, 1, False)
    assert [s.path for s in found.skipped] == ["bad.jpg"]
    assert work.summary(reuse=False, previous_count=3).todo == 5  # a rebuild embeds everything
    assert [o.path for o in next(work.all_outcomes(True, todo_only=True))] == \
        ["c.jpg", "new.jpg", "fifo.jpg"]
    work.close()


def test_saved_results_survive_a_kill_and_a_torn_tail_is_cut(tmp_path):
    work = open_work(tmp_path, "float16")
    work.add_present([(f"{i}.jpg", i, i, None) for i in range(4)])
    todo = next(work.all_outcomes(reuse=True, todo_only=True))
    vectors = unit_rows(4)
    work.save([Result(todo[0], vectors[0], None, "2024-01-02T03:04:05"),
               Result(todo[1], None, "not an image"), Result(todo[2], vectors[2], None)])
    work.close()  # as a kill after the commit: then a chunk in flight, half written
    with open(tmp_path / "partial" / "vectors.bin", "ab") as file:
        file.write(b"\1" * 5)
    again = open_work(tmp_path, "float16")
    assert (tmp_path / "partial" / "vectors.bin").stat().st_size == 2 * DIM * 2
    again.add_present([(f"{i}.jpg", i, i, None) for i in range(4)])
    (block,) = list(again.all_outcomes(reuse=True))
    assert [(o.vector_row, o.reason, o.taken) for o in block] == \
        [(0, None, "2024-01-02T03:04:05"), (None, "not an image", None), (1, None, None),
         (None, None, None)]
    assert np.array_equal(again.vectors([1, 0]), vectors[[2, 0]].astype(np.float16))
    again.close()
    # a different dtype or model makes the saved results useless: they go
    other = open_work(tmp_path, "float32")
    other.add_present([("0.jpg", 0, 0, None)])
    assert other.summary(reuse=True, previous_count=-1).todo == 1
    other.close()


def test_a_file_changed_since_a_killed_run_is_embedded_again(tmp_path):
    work = open_work(tmp_path)
    work.add_present([("a.jpg", 1, 1, None)])
    (todo,) = next(work.all_outcomes(reuse=True, todo_only=True))
    work.save([Result(todo, unit_rows(1)[0], None)])
    work.close()
    again = open_work(tmp_path)
    again.add_present([("a.jpg", 1, 2, None)])  # touched after the kill
    assert again.summary(reuse=True, previous_count=-1).todo == 1
    again.close()


def test_new_files_get_ids_never_used_and_kept_ones_keep_theirs(tmp_path):
    write_index(tmp_path, ["a.jpg", "b.jpg"], unit_rows(2))
    work = open_work(tmp_path)
    work.add_present([("b.jpg", 101, 1_001, None), ("z.jpg", 3, 3, None)])
    (block,) = list(work.all_outcomes(reuse=True))
    items, next_id = items_of(block, first_row=0, next_id=3)
    assert [(i.id, i.row, i.path) for i in items] == [(2, 0, "b.jpg"), (3, 1, "z.jpg")]
    assert next_id == 4
    summary = work.summary(reuse=True, previous_count=2)
    assert (summary.vectors, summary.todo, summary.same_records) == (1, 1, False)
    after = summary.after_embedding(1, [], captioned=False)  # z.jpg embedded
    assert (after.vectors, after.todo, after.same_records) == (2, 0, False)
    work.close()
