"""A personal photo library: thumbnails made once at indexing, phone photos (HEIC), dates.

Real indexer runs on real files: large JPEGs as a phone writes them, one turned by its EXIF
orientation and dated by its EXIF, a HEIC photo, and the sample photos; then a real server.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path

import pillow_heif
import pytest
from PIL import Image

from server.artifacts import load_word_space
from server.images import THUMBNAIL_SIDE
from server.samples import write_large_photos, write_sample_gallery
from server.serve.encoder import ImageEncoder
from server.serve.gallery import MANIFEST, Gallery, GalleryError
from server.serve.indexer import IndexOptions, build_index, scan_folder
from server.serve.thumbnails import THUMBS, thumbnail_file
from tests.conftest import start_server, stop_server
from tests.e2e.test_server import Client

EXIF_ORIENTATION, EXIF_DATE_ORIGINAL = 0x0112, 36867
TAKEN = "2019-07-14T10:20:30"


def make_library(folder: Path) -> dict[str, Path]:
    """The sample photos, two 12-megapixel JPEGs (one to be turned a quarter and dated by its
    EXIF), and the sample cat as a phone's HEIC."""
    photos = write_sample_gallery(folder)
    big = write_large_photos(folder / "phone", 2)
    with Image.open(big[1]) as image:
        exif = Image.Exif()
        exif[EXIF_ORIENTATION] = 6  # shown turned 90 degrees clockwise: a portrait
        exif.get_ifd(0x8769)[EXIF_DATE_ORIGINAL] = TAKEN.replace("-", ":").replace("T", " ")
        image.save(big[1], quality=90, exif=exif)
    heic = folder / "phone" / "cat.heic"
    with Image.open(photos["cat"]) as cat:
        pillow_heif.from_pillow(cat).save(heic, quality=80)
    return {**photos, "big": big[0], "turned": big[1], "heic": heic}


def index(folder: Path, index_dir: Path, **options):
    return build_index(scan_folder(folder), folder, index_dir, ImageEncoder(),
                       words=load_word_space(), options=IndexOptions(progress=False, **options))


def items_by_path(index_dir: Path) -> dict:
    return {item.path: item for item in Gallery(index_dir).all_items()}


def thumbnail_of(index_dir: Path, path: str) -> Path:
    gallery = Gallery(index_dir)
    (item,) = [item for item in gallery.all_items() if item.path == path]
    key = gallery.thumbnail_key(item)
    assert key is not None
    return thumbnail_file(index_dir, key)


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> tuple[Path, Path, dict[str, Path]]:
    root = tmp_path_factory.mktemp("library")
    photos = make_library(root / "photos")
    index(root / "photos", root / "index")
    return root / "photos", root / "index", photos


def test_thumbnails_are_made_once_upright_and_small(library, tmp_path):
    folder, index_dir, _ = library
    items = items_by_path(index_dir)
    assert "phone/cat.heic" in items  # the phone's photo is indexed
    for path in items:
        with Image.open(thumbnail_of(index_dir, path)) as thumb:
            assert thumb.format == "JPEG" and max(thumb.size) <= THUMBNAIL_SIDE
    with Image.open(thumbnail_of(index_dir, "phone/photo-001.jpg")) as turned:
        assert turned.size == (300, 400)  # 4032 x 3024 turned upright by its EXIF
    with Image.open(thumbnail_of(index_dir, "phone/photo-000.jpg")) as big:
        assert big.size == (400, 300)
    assert items["phone/photo-001.jpg"].taken == TAKEN
    mtime = os.stat(folder / "coffee.jpg").st_mtime
    assert items["coffee.jpg"].taken is not None
    from datetime import datetime
    assert datetime.fromisoformat(items["coffee.jpg"].taken).timestamp() == \
        pytest.approx(mtime, abs=1)

    # a run with nothing new decodes nothing and rewrites no thumbnail
    copy = tmp_path / "index"
    shutil.copytree(index_dir, copy)
    made = {p: p.stat().st_mtime_ns for p in (copy / THUMBS).rglob("*.jpg")}
    report = index(folder, copy)
    assert report.embedded == 0
    assert {p: p.stat().st_mtime_ns for p in (copy / THUMBS).rglob("*.jpg")} == made


def test_thumbnails_follow_the_files(library, tmp_path):
    """A changed file gets a new thumbnail (and URL), a removed one loses its own."""
    folder = tmp_path / "photos"
    shutil.copytree(library[0], folder)
    index_dir = tmp_path / "index"
    shutil.copytree(library[1], index_dir)
    before = {p: thumbnail_of(index_dir, p) for p in ("coffee.jpg", "rocket.jpg", "moon.jpg")}
    with Image.open(folder / "coffee.jpg") as coffee:
        coffee.rotate(180).save(folder / "coffee.jpg")
    (folder / "rocket.jpg").unlink()
    report = index(folder, index_dir)
    assert report.embedded == 1 and report.removed == 1
    changed = thumbnail_of(index_dir, "coffee.jpg")
    assert changed != before["coffee.jpg"] and changed.exists()
    assert not before["coffee.jpg"].exists() and not before["rocket.jpg"].exists()
    assert before["moon.jpg"].exists()
    assert len(list((index_dir / THUMBS).rglob("*.jpg"))) == len(items_by_path(index_dir))


def test_no_thumbnails_when_asked_and_they_come_with_the_next_run(library, tmp_path):
    index_dir = tmp_path / "index"
    index(library[0], index_dir, thumbnails=False)
    assert Gallery(index_dir).thumbnails is None and not (index_dir / THUMBS).exists()
    ids = {path: item.id for path, item in items_by_path(index_dir).items()}
    report = index(library[0], index_dir)  # every image decoded again, ids kept
    assert report.embedded == len(ids)
    assert {path: item.id for path, item in items_by_path(index_dir).items()} == ids
    assert all(thumbnail_of(index_dir, path).exists() for path in ids)


def test_an_index_of_the_format_before_is_refused_then_upgraded(library, tmp_path):
    index_dir = tmp_path / "index"
    shutil.copytree(library[1], index_dir)
    shutil.rmtree(index_dir / THUMBS)
    manifest = json.loads((index_dir / MANIFEST).read_text())
    manifest["format"] = 1
    del manifest["thumbnails"]
    (index_dir / MANIFEST).write_text(json.dumps(manifest))
    with sqlite3.connect(index_dir / f"items-{manifest['generation']}.sqlite") as db:
        db.execute("DROP INDEX items_taken")
        db.execute("ALTER TABLE items DROP COLUMN taken")  # as format 1 wrote it
    with pytest.raises(GalleryError, match=r"made before thumbnails and dates.*scripts.index"):
        Gallery(index_dir)
    ids = {path: item.id for path, item in
           ((i.path, i) for i in Gallery(index_dir, older_format=True).all_items())}
    index(library[0], index_dir)
    upgraded = items_by_path(index_dir)
    assert {path: item.id for path, item in upgraded.items()} == ids
    assert upgraded["phone/photo-001.jpg"].taken == TAKEN
    assert all(thumbnail_of(index_dir, path).exists() for path in ids)


@pytest.fixture(scope="module")
def library_server(library, tmp_path_factory):
    running = start_server(library[1], tmp_path_factory.mktemp("log") / "library.log")
    yield running
    stop_server(running)


def get(url: str) -> tuple[int, dict, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, dict(response.headers), response.read()


def test_results_carry_thumbnails_served_for_good_and_a_heic_is_found(library, library_server):
    client = Client(library_server.ws_url)
    reply = client.query("cat", k=3)
    client.close()
    by_path = {item.id: path for path, item in items_by_path(library[1]).items()}
    found = {by_path[r["id"]]: r for r in reply["results"]}
    assert "phone/cat.heic" in found, list(found)
    heic = found["phone/cat.heic"]
    # browsers cannot show HEIC: its preview is its thumbnail; the file stays a link away
    assert heic["preview"] == heic["thumb"] and heic["url"].startswith("/images/")
    status, headers, body = get(library_server.url.rstrip("/") + heic["thumb"])
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    assert "immutable" in headers["Cache-Control"] and "private" in headers["Cache-Control"]
    with Image.open(io.BytesIO(body)) as thumb:
        assert max(thumb.size) <= THUMBNAIL_SIDE
    status, _, original = get(library_server.url.rstrip("/") + heic["url"])
    assert original == library[2]["heic"].read_bytes()
    jpeg = next(r for path, r in found.items() if path.endswith(".jpg"))
    assert jpeg["preview"] == jpeg["url"] and jpeg["thumb"] != jpeg["url"]
    assert all(r["taken"] for r in reply["results"])


def test_a_thumbnail_path_reaches_nothing_else(library_server):
    base = library_server.url.rstrip("/")
    for path in ("/thumbs/../manifest.json", "/thumbs/0123456789abcdef0123.jpg",
                 "/thumbs/0123456789ABCDEF0123.jpg", "/thumbs/manifest.json"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            get(base + path)
        assert refused.value.code == 404, path


@pytest.fixture(scope="module")
def thousand(tmp_path_factory):
    """1,000 images: 997 of 2020 in `trips/`, and 3 of July 2019 in `family/2019/`, these the
    farthest of all from `dog`: a filter applied after the search would find none of them."""
    import numpy as np

    from server.artifacts import DEFAULT_MODEL_DIR, model_fingerprint
    from server.serve.gallery import Item, write_generation
    from server.vectors import normalized

    words = load_word_space()
    dog = words.unit_vector("dog")
    rng = np.random.default_rng(0)
    vectors = normalized(dog + 0.8 * normalized(rng.normal(size=(1000, words.dim))))
    kept = [100, 500, 900]
    vectors[kept] = normalized(-dog + 0.05 * rng.normal(size=(3, words.dim)))
    items = [Item(row + 1, row, f"family/2019/{row}.jpg" if row in kept else f"trips/{row}.jpg",
                  1, 0, None, f"2019-07-{10 + kept.index(row)}T09:00:00" if row in kept
                  else f"2020-03-{1 + row % 28:02d}T09:00:00") for row in range(1000)]
    directory = tmp_path_factory.mktemp("thousand")
    write_generation(directory, root=directory,
                     model_fingerprint=model_fingerprint(DEFAULT_MODEL_DIR), items=items,
                     skipped=[], vectors=vectors, next_id=1001)
    running = start_server(directory, directory / "server.log")
    yield running, [row + 1 for row in kept]
    stop_server(running)


def test_a_filter_is_applied_in_the_search_not_after_it(thousand):
    server, kept = thousand
    client = Client(server.ws_url)
    try:
        assert client.hello["gallery"]["taken"] == ["2019-07-10", "2020-03-28"]
        # the folders the page offers: photos in each and below it, the fullest first
        assert client.hello["gallery"]["folders"] == [["trips", 997], ["family", 3],
                                                      ["family/2019", 3]]
        plain = client.query("dog")
        assert len(plain["results"]) == 24 and not set(kept) & {r["id"] for r in plain["results"]}
        for given in ({"folder": "family"}, {"folder": "family/2019/"},
                      {"from": "2019-07-01", "to": "2019-07-31"}, {"to": "2019-12-31"}):
            found = client.query("dog", filter=given)
            assert found["type"] == "results", found
            assert sorted(r["id"] for r in found["results"]) == kept, given
        # by date: an image's query has no line, so its best results are the close ones
        dated = client.query(f"[IMG_{kept[0]}]", filter={"folder": "family"}, order="date",
                             exclude_query_images=False)
        assert dated["line"] is None
        assert [r["taken"] for r in dated["results"]] == \
            ["2019-07-12T09:00:00", "2019-07-11T09:00:00", "2019-07-10T09:00:00"]
        # ... and those below a query's line keep their rank after the close matches
        below = client.query("dog", filter={"folder": "family"}, order="date")
        assert below["relevant"] == 0 and [r["id"] for r in below["results"]] == \
            [r["id"] for r in client.query("dog", filter={"folder": "family"})["results"]]
        assert client.query("dog", filter={"folder": "familyx"})["results"] == []
        for bad, says in (({"from": "July"}, '"from" must be a day'),
                          ({"folder": "../etc"}, '"folder" must be'),
                          ({"when": "now"}, '"filter" must be'), ("family", '"filter" must')):
            refused = client.query("dog", filter=bad)
            assert refused["code"] == "bad_request" and says in refused["error"], refused
        assert client.query("dog", order="newest")["code"] == "bad_request"
        # the relevance line of one word, and how many results are above it
        assert plain["line"] == pytest.approx(0.29, abs=0.2)
        assert plain["relevant"] == sum(r["score"] >= plain["line"] for r in plain["results"])
        assert client.query("dog-cat")["line"] is None
    finally:
        client.close()

