"""The gallery index end to end: real photos, planted bad files, reruns, a killed indexer."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as samples

from server.images import BadImage, open_image
from server.serve.encoder import ImageEncoder
from server.serve.gallery import Gallery, GalleryError
from server.serve.index_work import WORK_FORMAT
from server.serve.indexer import IndexOptions, build_index, scan_folder, work_width
from server.serve.search import ExactSearch, FaissSearch
from tests.conftest import REPO
from tests.stress.common import Target
from tests.stress.killing import saved_results, saved_vectors

PHOTOS = {"astronaut": samples.astronaut, "coffee": samples.coffee, "cat": samples.chelsea,
          "rocket": samples.rocket, "camera": samples.camera}


@pytest.fixture(scope="module")
def encoder() -> ImageEncoder:
    return ImageEncoder()


def _save(image: Image.Image, path: Path, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **options)
    return path


def plant_gallery(folder: Path) -> dict[str, str]:
    """Real photos in every odd format a camera or the web produces, plus broken files.

    Returns the relative paths of the files that must be skipped, with a word of the reason.
    """
    cat = Image.fromarray(samples.chelsea())
    for name, load in PHOTOS.items():
        _save(Image.fromarray(load()), folder / "photos" / f"{name}.jpg", quality=90)
    _save(cat.convert("CMYK"), folder / "odd" / "cmyk.jpg")
    _save(cat.convert("RGBA"), folder / "odd" / "alpha.png")
    _save(cat.convert("P", palette=Image.Palette.ADAPTIVE), folder / "odd" / "palette.gif")
    sixteen = (np.asarray(cat.convert("L"), np.uint16) * 257).astype(np.uint16)
    _save(Image.fromarray(sixteen), folder / "odd" / "sixteen.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees to display
    _save(cat, folder / "odd" / "rotated.jpg", exif=exif)
    jpeg = (folder / "photos" / "coffee.jpg").read_bytes()
    (folder / "bad").mkdir()
    (folder / "bad" / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    (folder / "bad" / "notes.jpg").write_text("not an image at all\n")
    (folder / "bad" / "empty.png").write_bytes(b"")
    _save(Image.new("1", (9000, 8000)), folder / "bad" / "bomb.png")  # 72 Mpx in a few KB
    (folder / ".hidden").mkdir()
    _save(cat, folder / ".hidden" / "secret.jpg")
    (folder / "photos" / "cat.txt").write_text("a cat with stripes\n")
    return {"bad/truncated.jpg": "cannot decode", "bad/notes.jpg": "not an image",
            "bad/empty.png": "not an image", "bad/bomb.png": "too large"}


def index_folder(folder: Path, index: Path, encoder: ImageEncoder, words=None, **options):
    return build_index(scan_folder(folder), folder, index, encoder, words,
                       IndexOptions(progress=False, **options))


def test_open_image_decodes_odd_files_upright(tmp_path):
    expected = plant_gallery(tmp_path)
    cat = Image.fromarray(samples.chelsea())
    rotated = open_image(tmp_path / "odd" / "rotated.jpg")
    assert rotated.size == cat.size[::-1]  # EXIF orientation applied
    for name in ("cmyk.jpg", "alpha.png", "palette.gif", "sixteen.png"):
        image = open_image(tmp_path / "odd" / name)
        assert image.mode == "RGB" and image.size == cat.size
    sixteen = np.asarray(open_image(tmp_path / "odd" / "sixteen.png"))[..., 0]
    assert abs(int(sixteen.mean()) - int(np.asarray(cat.convert("L")).mean())) <= 1
    for path, reason in expected.items():
        with pytest.raises(BadImage, match=reason):
            open_image(tmp_path / path)
    with pytest.raises(BadImage, match="not an image"):
        open_image(b"\x00garbage")
    big = io.BytesIO()
    Image.new("L", (3000, 3000)).save(big, "PNG")
    with pytest.raises(BadImage, match="too large"):
        open_image(big.getvalue(), max_pixels=1_000_000)


def test_index_embeds_good_files_and_reports_bad_ones(tmp_path, encoder):
    folder, index = tmp_path / "gallery", tmp_path / "index"
    bad = plant_gallery(folder)
    report = index_folder(folder, index, encoder)
    gallery = Gallery(index, model_fingerprint=encoder.fingerprint)
    paths = [item.path for item in gallery.all_items()]
    assert sorted(paths) == sorted([f"photos/{n}.jpg" for n in PHOTOS] + [
        "odd/cmyk.jpg", "odd/alpha.png", "odd/palette.gif", "odd/sixteen.png", "odd/rotated.jpg"])
    assert report.embedded == report.total == len(paths) == 10
    assert {s.path: s.reason for s in gallery.skipped()}.keys() == bad.keys()
    for skipped in gallery.skipped():
        assert bad[skipped.path] in skipped.reason
    assert np.allclose(np.linalg.norm(gallery.vectors, axis=1), 1, atol=1e-5)
    cat = gallery.items([paths.index("photos/cat.jpg")])[0]
    assert cat.caption == "a cat with stripes"
    # the stored vector is the encoder's own for that file
    direct = encoder.embed([open_image(folder / "photos" / "cat.jpg")])[0]
    assert np.allclose(gallery.vectors[cat.row], direct, atol=1e-5)
    # odd formats of the same cat land near the plain cat
    for name in ("cmyk.jpg", "alpha.png", "palette.gif"):
        row = paths.index(f"odd/{name}")
        assert gallery.vectors[row] @ gallery.vectors[cat.row] > 0.8, name


def test_captions_are_embedded_and_blended_with_pictures(tmp_path, encoder):
    from server.artifacts import load_word_space

    folder, index = tmp_path / "gallery", tmp_path / "index"
    plant_gallery(folder)
    words = load_word_space()
    index_folder(folder, index, encoder, words=words)
    gallery = Gallery(index)
    cat = next(item for item in gallery.all_items() if item.caption)
    captions = np.asarray(gallery.caption_vectors)
    assert np.allclose(captions[cat.row], words.caption_vector("a cat with stripes"))
    assert np.count_nonzero(np.abs(captions).sum(axis=1)) == 1  # the other images have none
    blended = gallery.search_vectors(caption_weight=1.0)
    assert np.allclose(np.linalg.norm(blended, axis=1), 1, atol=1e-5)
    unit_caption = captions[cat.row] / np.linalg.norm(captions[cat.row])
    expected = gallery.vectors[cat.row] + unit_caption
    assert np.allclose(blended[cat.row], expected / np.linalg.norm(expected), atol=1e-5)
    others = [item.row for item in gallery.all_items() if item.row != cat.row]
    assert np.allclose(blended[others], gallery.vectors[others])
    assert gallery.search_vectors(caption_weight=0) is gallery.vectors


def test_rerun_does_only_the_new_work_and_keeps_ids(tmp_path, encoder):
    folder, index = tmp_path / "gallery", tmp_path / "index"
    plant_gallery(folder)
    index_folder(folder, index, encoder)
    before = {item.path: item.id for item in Gallery(index).all_items()}

    generation = json.loads((index / "manifest.json").read_text())["generation"]
    again = index_folder(folder, index, encoder)
    assert (again.embedded, again.reused, again.removed, again.skipped) == (0, 10, 0, [])
    # nothing to do, nothing written; a changed caption alone is a new generation
    assert json.loads((index / "manifest.json").read_text())["generation"] == generation
    (folder / "photos" / "cat.txt").write_text("a cat on a wall\n")
    index_folder(folder, index, encoder)
    assert json.loads((index / "manifest.json").read_text())["generation"] == generation + 1
    assert Gallery(index).by_id(before["photos/cat.jpg"]).caption == "a cat on a wall"

    (folder / "photos" / "rocket.jpg").unlink()
    _save(Image.fromarray(samples.astronaut()[::-1]), folder / "photos" / "coffee.jpg")
    _save(Image.fromarray(samples.coffee()), folder / "new" / "coffee.png")
    report = index_folder(folder, index, encoder)
    assert (report.embedded, report.reused, report.removed, report.total) == (2, 8, 1, 10)
    after = {item.path: item.id for item in Gallery(index).all_items()}
    assert "photos/rocket.jpg" not in after
    for path, item_id in after.items():
        if path != "new/coffee.png":
            assert before[path] == item_id, path  # unchanged and changed files keep their ids
    assert after["new/coffee.png"] > max(before.values())  # deleted ids are not reused
    assert len(list(index.glob("embeddings-*.npy"))) == 1  # old generations are cleaned up


def test_foreign_formats_and_unreadable_files_are_skipped_then_retried(tmp_path, encoder):
    folder, index = tmp_path / "gallery", tmp_path / "index"
    cat = Image.fromarray(samples.chelsea())
    _save(cat, folder / "cat.jpg")
    _save(cat, folder / "scan.png", format="TIFF")  # a TIFF in disguise: not a format we read
    os.mkfifo(folder / "pipe.jpg")  # would block a decoder forever
    report = index_folder(folder, index, encoder)
    reasons = {s.path: s.reason for s in report.skipped}
    assert reasons["scan.png"].startswith("not an image")
    assert reasons["pipe.jpg"] == "cannot read: not a regular file"
    (folder / "pipe.jpg").unlink()
    _save(cat, folder / "pipe.jpg")  # fixed: a file that could not be read is tried again
    again = index_folder(folder, index, encoder)
    assert again.embedded == 1 and again.total == 2
    assert [s.path for s in Gallery(index).skipped()] == ["scan.png"]


def test_rebuild_keeps_ids_and_damaged_results_are_ignored(tmp_path, encoder, caplog):
    folder, index = tmp_path / "gallery", tmp_path / "index"
    for name, load in PHOTOS.items():
        _save(Image.fromarray(load()), folder / f"{name}.jpg")
    index_folder(folder, index, encoder)
    before = {item.path: item.id for item in Gallery(index).all_items()}
    (folder / "astronaut.jpg").unlink()
    (index / "partial").mkdir()
    (index / "partial" / "model").write_text(
        f"{encoder.fingerprint} {work_width(encoder)} float32 {WORK_FORMAT}")
    (index / "partial" / "work.sqlite").write_bytes(b"\0" * 4096)  # as an OS crash might leave it
    report = index_folder(folder, index, encoder, rebuild=True)
    assert report.embedded == len(PHOTOS) - 1 and "damaged results" in caplog.text
    after = {item.path: item.id for item in Gallery(index).all_items()}
    assert after == {path: before[path] for path in after}  # [IMG_n] still means the same
    (folder / "new").mkdir()
    _save(Image.fromarray(samples.coffee()), folder / "new" / "coffee.jpg")
    index_folder(folder, index, encoder)
    assert Gallery(index).by_id(max(before.values()) + 1).path == "new/coffee.jpg"


def test_two_indexers_never_write_one_index_at_once(tmp_path, encoder):
    import fcntl

    folder, index = tmp_path / "gallery", tmp_path / "index"
    _save(Image.fromarray(samples.chelsea()), folder / "cat.jpg")
    index.mkdir()
    with open(index / "lock", "w") as lock:
        fcntl.lockf(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running indexer holds it
        second = subprocess.run(_index_command(folder, index), cwd=REPO, capture_output=True,
                                text=True)
    assert second.returncode != 0 and "another indexer is updating" in second.stderr
    assert not (index / "manifest.json").exists()


def test_index_of_another_model_is_refused(tmp_path, encoder):
    folder, index = tmp_path / "gallery", tmp_path / "index"
    _save(Image.fromarray(samples.chelsea()), folder / "cat.jpg")
    index_folder(folder, index, encoder)
    with pytest.raises(GalleryError, match=r"made by model (?s:.*) Re-index"):
        Gallery(index, model_fingerprint="0123456789abcdef")
    with pytest.raises(GalleryError, match="no gallery index"):
        Gallery(tmp_path / "nowhere")


def _index_command(folder: Path, index: Path) -> list[str]:
    return [sys.executable, "-m", "scripts.index", str(folder), "--index", str(index),
            "--batch-size", "2", "--chunk-size", "2", "--quiet"]


def test_killed_indexer_leaves_the_index_intact_and_resumes(tmp_path, encoder):
    folder, index = tmp_path / "gallery", tmp_path / "index"
    _save(Image.fromarray(samples.chelsea()), folder / "first.jpg")
    index_folder(folder, index, encoder)
    manifest = (index / "manifest.json").read_text()
    rng = np.random.default_rng(0)
    base = samples.astronaut()
    for i in range(40):  # distinct real-looking images: shifted, flipped crops of a photo
        crop = np.roll(base, int(rng.integers(0, 400)), axis=int(rng.integers(0, 2)))
        _save(Image.fromarray(crop[:: 1 + i % 2]), folder / "more" / f"{i:02d}.jpg")

    process = subprocess.Popen(_index_command(folder, index), cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for_results(process, index, 4)  # two chunks of two
    workers = [child.pid for child in Target(0, process.pid).children()]
    assert workers, "the indexer has no decoding worker"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    _assert_gone(workers)  # decoding workers die with the indexer (PR_SET_PDEATHSIG)

    assert (index / "manifest.json").read_text() == manifest
    gallery = Gallery(index, model_fingerprint=encoder.fingerprint)
    assert [item.path for item in gallery.all_items()] == ["first.jpg"]

    resumed = subprocess.run(_index_command(folder, index), cwd=REPO, capture_output=True,
                             text=True, check=True)
    done = int(resumed.stdout.split("(")[1].split(" embedded")[0])
    assert done <= 40 - 4, resumed.stdout  # at least the two saved chunks were not redone
    final = Gallery(index, model_fingerprint=encoder.fingerprint)
    assert len(final) == 41 and not (index / "partial").exists()
    # resumed vectors are the ones a clean run computes
    clean = tmp_path / "clean"
    index_folder(folder, clean, encoder)
    fresh = Gallery(clean)
    order = [item.path for item in fresh.all_items()]
    rows = [order.index(item.path) for item in final.all_items()]
    assert np.allclose(np.asarray(final.vectors), np.asarray(fresh.vectors)[rows], atol=1e-5)


def test_results_of_killed_runs_do_not_pile_up(tmp_path, encoder):
    folder, index = tmp_path / "gallery", tmp_path / "index"
    base = samples.coffee()
    for i in range(40):
        _save(Image.fromarray(np.roll(base, 7 * i, axis=1)), folder / f"{i:02d}.jpg")
    saved = 0
    for _ in range(2):  # each killed after saving two chunks of its own
        process = subprocess.Popen(_index_command(folder, index), cwd=REPO,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _wait_for_results(process, index, saved + 4)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        saved = saved_results(index)
    # a resumed run embeds only what is not saved: one vector per photo, plus a chunk in flight
    assert saved_vectors(index) <= saved + 2 and saved <= 40
    assert sorted(path.name for path in (index / "partial").iterdir()) == \
        ["model", "vectors.bin", "work.sqlite"]
    resumed = subprocess.run(_index_command(folder, index), cwd=REPO, capture_output=True,
                             text=True, check=True)
    done = int(resumed.stdout.split("(")[1].split(" embedded")[0])
    assert done == 40 - saved, resumed.stdout
    assert " 40 images indexed" in " " + resumed.stdout and not (index / "partial").exists()


def _wait_for_results(process: subprocess.Popen, index: Path, count: int) -> None:
    """Wait until the running indexer has committed `count` results to its partial folder."""
    deadline = time.monotonic() + 120
    while saved_results(index) < count:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the indexer did not save its results"
        time.sleep(0.02)


def _assert_gone(pids: list[int], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [pid for pid in alive if Target(0, pid).alive()]
    assert not alive, f"processes outlived the indexer: {alive}"


def _clustered(count: int, dim: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, dim))
    vectors = centres[rng.integers(0, 20, count)] + 0.5 * rng.normal(size=(count, dim))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def test_exact_search_matches_brute_force_and_excludes():
    vectors = _clustered(500)
    search = ExactSearch(vectors)
    query = np.random.default_rng(1).normal(size=64)
    hits = search.search(query, 10)
    expected = np.argsort(-(vectors @ (query / np.linalg.norm(query))))[:10]
    assert hits.rows.tolist() == expected.tolist()
    assert np.all(np.diff(hits.scores) <= 0)
    order = np.argsort(-(vectors @ query)).tolist()
    excluded = search.search(query, 10, exclude={order[0], order[3]})
    assert excluded.rows.tolist() == [r for r in order if r not in (order[0], order[3])][:10]
    assert len(search.search(query, 1000).rows) == 500
    with pytest.raises(ValueError, match="zero"):
        search.search(np.zeros(64), 5)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_faiss_agrees_with_exact_on_a_small_gallery(kind):
    vectors = _clustered(3000)
    exact, approximate = ExactSearch(vectors), FaissSearch(vectors, kind=kind)
    queries = _clustered(50, seed=2)
    overlap = [len(set(exact.search(q, 10).rows) & set(approximate.search(q, 10).rows)) / 10
               for q in queries]
    assert np.mean(overlap) >= 0.95
    first = exact.search(queries[0], 5)
    assert np.allclose(approximate.search(queries[0], 5).scores, first.scores, atol=1e-5)
    kept = approximate.search(queries[0], 5, exclude={int(first.rows[0])})
    assert int(first.rows[0]) not in kept.rows.tolist() and len(kept.rows) == 5


def test_scan_folder_reads_captions_tsv_and_skips_hidden(tmp_path):
    cat = Image.fromarray(samples.chelsea())
    _save(cat, tmp_path / "a" / "cat.jpg")
    _save(cat, tmp_path / "b.png")
    _save(cat, tmp_path / ".cache" / "thumb.jpg")
    (tmp_path / "captions.tsv").write_text("a/cat.jpg\ta cat on a sofa\na/cat.jpg\tstriped\n")
    (tmp_path / "a" / "loop").symlink_to(tmp_path)  # a link to a folder above: never followed
    (tmp_path / "c.jpg").symlink_to(tmp_path / "a")  # a link to a folder, named as an image
    sources = scan_folder(tmp_path)
    assert [(s.path.relative_to(tmp_path).as_posix(), s.caption) for s in sources] == [
        ("a/cat.jpg", "a cat on a sofa"), ("b.png", None)]
