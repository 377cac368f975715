"""Tests for server.datasets: the real Flickr8k when present, small on-disk fixtures otherwise."""

import json
import logging
from pathlib import Path

import pytest
from PIL import Image

from server.datasets import (
    DATASET_KINDS,
    SHARED_FLICKR8K,
    TUXPAINT_STAMPS,
    CaptionedImage,
    CaptionFormatError,
    open_dataset,
    read_coco,
    read_flickr8k,
    read_folder,
    read_instacities,
    read_tuxpaint,
)

FLICKR8K = SHARED_FLICKR8K


def write_jpeg(path: Path, color: tuple[int, int, int] = (200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4), color).save(path, "JPEG")
    return path


def warnings_text(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


# --------------------------------------------------------------------------- real Flickr8k


@pytest.fixture(scope="module")
def flickr8k_splits() -> dict[str, list[CaptionedImage]]:
    if not (FLICKR8K / "Flickr8k.token.txt").is_file():
        pytest.skip(f"Flickr8k not found at {FLICKR8K}")
    return {split: read_flickr8k(FLICKR8K, split) for split in ("train", "dev", "test")}


@pytest.mark.parametrize(("split", "count"), [("train", 6000), ("dev", 1091), ("test", 1000)])
def test_real_flickr8k_split_sizes(flickr8k_splits, split: str, count: int) -> None:
    records = flickr8k_splits[split]
    assert len(records) == count
    assert all(len(r.captions) == 5 for r in records)
    assert all(r.image.is_file() for r in records)
    assert all(c.strip() for r in records for c in r.captions)


def test_real_flickr8k_follows_split_file_order(flickr8k_splits) -> None:
    test, train = flickr8k_splits["test"], flickr8k_splits["train"]
    assert test[0].image == FLICKR8K / "images" / "3385593926_d3e9c21170.jpg"
    assert train[0].image == FLICKR8K / "images" / "2513260012_03d33305cf.jpg"
    listed = (FLICKR8K / "Flickr_8k.testImages.txt").read_text().split()
    assert [r.image.name for r in test] == listed


def test_real_flickr8k_splits_are_disjoint(flickr8k_splits) -> None:
    names = {split: {r.image.name for r in recs} for split, recs in flickr8k_splits.items()}
    assert not names["train"] & names["dev"]
    assert not names["train"] & names["test"]
    assert not names["dev"] & names["test"]
    assert sum(len(n) for n in names.values()) == 8091


def test_real_flickr8k_space_separated_lines(flickr8k_splits) -> None:
    by_name = {r.image.name: r for r in flickr8k_splits["train"]}
    # These three keys are followed by a space, not a TAB, in the original token file.
    quirks = {
        "1000268201_693b08cb0e.jpg": (0, "A child in a pink dress"),
        "1001773457_577c3a7d70.jpg": (0, "A black dog and a spotted dog are fighting"),
        "1002674143_1b742ab4b8.jpg": (1, "A little girl is sitting in front of a large painted"),
    }
    for name, (index, start) in quirks.items():
        captions = by_name[name].captions
        assert len(captions) == 5
        assert captions[index].startswith(start)
    assert (
        by_name["1000268201_693b08cb0e.jpg"].captions[1] == "A girl going into a wooden building ."
    )


def test_real_flickr8k_full_reports_the_imageless_key(caplog) -> None:
    if not (FLICKR8K / "Flickr8k.token.txt").is_file():
        pytest.skip(f"Flickr8k not found at {FLICKR8K}")
    with caplog.at_level(logging.WARNING, logger="server.datasets"):
        records = read_flickr8k(FLICKR8K)
    # The token file has captions for 8,092 keys; one, "2258277193_586949ec62.jpg.1", has no image.
    assert len(records) == 8091
    assert records[0].image.name == "1000268201_693b08cb0e.jpg"
    warnings = warnings_text(caplog)
    assert len(warnings) == 1
    assert "2258277193_586949ec62.jpg.1" in warnings[0]


# --------------------------------------------------------------------------- Flickr8k fixture


def make_flickr8k(root: Path, token_lines: list[str], splits: dict[str, list[str]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Flickr8k.token.txt").write_text("\n".join(token_lines) + "\n", encoding="utf-8")
    for split, names in splits.items():
        (root / f"Flickr_8k.{split}Images.txt").write_text("\n".join(names) + "\n")
    return root


@pytest.fixture
def small_flickr(tmp_path: Path) -> Path:
    root = make_flickr8k(
        tmp_path / "f8k",
        [
            "a.jpg#0\tA dog runs .",
            "a.jpg#1 A dog runs on grass .",  # the space-separated quirk
            "",
            "b.jpg#0\tTwo cats #sleeping\tin the sun",
            "c.jpg#0\tA missing picture .",
        ],
        {"train": ["b.jpg", "a.jpg"], "dev": ["c.jpg"], "test": ["a.jpg", "nocaps.jpg"]},
    )
    write_jpeg(root / "images" / "a.jpg")
    write_jpeg(root / "images" / "b.jpg")
    return root


def test_flickr8k_fixture_parses_both_separators(small_flickr: Path) -> None:
    assert read_flickr8k(small_flickr, "train") == [
        CaptionedImage(small_flickr / "images" / "b.jpg", ("Two cats #sleeping\tin the sun",)),
        CaptionedImage(
            small_flickr / "images" / "a.jpg", ("A dog runs .", "A dog runs on grass .")
        ),
    ]


def test_flickr8k_missing_image_is_warned_and_skipped(small_flickr: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="server.datasets"):
        records = read_flickr8k(small_flickr)
    assert [r.image.name for r in records] == ["a.jpg", "b.jpg"]
    warnings = warnings_text(caplog)
    assert len(warnings) == 1
    assert "c.jpg" in warnings[0]
    assert "missing" in warnings[0]


def test_flickr8k_split_image_without_captions_is_warned(small_flickr: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="server.datasets"):
        records = read_flickr8k(small_flickr, "test")
    assert [r.image.name for r in records] == ["a.jpg"]
    warnings = warnings_text(caplog)
    assert len(warnings) == 1
    assert "nocaps.jpg" in warnings[0]
    assert "no captions" in warnings[0]


@pytest.mark.parametrize(
    ("bad_line", "expected"),
    [
        ("b.jpg A caption without a key", "expected 'IMAGE.jpg#N<TAB>caption'"),
        ("b.jpg#1\t   ", "expected a caption after b.jpg#1"),
        ("b.jpg#1", "expected 'IMAGE.jpg#N<TAB>caption'"),
    ],
)
def test_flickr8k_malformed_line_names_file_and_line(
    tmp_path: Path, bad_line: str, expected: str
) -> None:
    root = make_flickr8k(tmp_path, ["a.jpg#0\tfine", "", "a.jpg#1 fine too", bad_line], {})
    (root / "images").mkdir()
    with pytest.raises(CaptionFormatError) as info:
        read_flickr8k(root)
    message = str(info.value)
    assert message.startswith(f"{root / 'Flickr8k.token.txt'}:4: ")
    assert expected in message


def test_flickr8k_missing_files(tmp_path: Path, small_flickr: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no Flickr8k.token.txt in .*Flickr8k layout"):
        read_flickr8k(tmp_path / "nowhere")
    (small_flickr / "Flickr_8k.devImages.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"Flickr_8k\.devImages\.txt"):
        read_flickr8k(small_flickr, "dev")
    with pytest.raises(ValueError, match="unknown Flickr8k split 'val'"):
        read_flickr8k(small_flickr, "val")


def test_missing_image_warnings_are_capped(tmp_path: Path, caplog) -> None:
    names = [f"img{i:02d}.jpg" for i in range(15)]
    root = make_flickr8k(tmp_path, [f"{n}#0\tcaption {n}" for n in names], {})
    write_jpeg(root / "images" / "img00.jpg")
    with caplog.at_level(logging.WARNING, logger="server.datasets"):
        records = read_flickr8k(root)
    assert [r.image.name for r in records] == ["img00.jpg"]
    warnings = warnings_text(caplog)
    assert len(warnings) == 11
    assert [n for n in names[1:11] if any(n in w for w in warnings[:10])] == names[1:11]
    assert "4 more not listed" in warnings[10]


# --------------------------------------------------------------------------- InstaCities


@pytest.fixture
def instacities(tmp_path: Path) -> Path:
    root = tmp_path / "insta"
    posts = {
        ("london", "100"): "Big Ben at dusk 🌆\n#london #travel",
        ("london", "200"): "rainy day",
        ("newyork", "300"): "pizza time #nyc",
    }
    for (city, post), caption in posts.items():
        write_jpeg(root / "img_resized" / city / f"{post}.jpg")
        (root / "captions" / city).mkdir(parents=True, exist_ok=True)
        (root / "captions" / city / f"{post}.txt").write_text(caption, encoding="utf-8")
    # Not valid UTF-8: must be read with replacement characters, not crash.
    write_jpeg(root / "img_resized" / "newyork" / "400.jpg")
    (root / "captions" / "newyork" / "400.txt").write_bytes(b"caf\xe9 #coffee")
    return root


def test_instacities_reads_every_city(instacities: Path) -> None:
    records = read_instacities(instacities)
    assert [(r.image.parent.name, r.image.name) for r in records] == [
        ("london", "100.jpg"),
        ("london", "200.jpg"),
        ("newyork", "300.jpg"),
        ("newyork", "400.jpg"),
    ]
    assert records[0].captions == ("Big Ben at dusk 🌆\n#london #travel",)
    assert records[3].captions == ("caf\ufffd #coffee",)
    assert all(r.image.is_file() for r in records)


def test_instacities_city_filter_and_missing_image(instacities: Path, caplog) -> None:
    (instacities / "img_resized" / "newyork" / "300.jpg").unlink()
    with caplog.at_level(logging.WARNING, logger="server.datasets"):
        records = read_instacities(instacities, ["newyork"])
    assert [r.image.name for r in records] == ["400.jpg"]
    warnings = warnings_text(caplog)
    assert len(warnings) == 1
    assert "300.jpg" in warnings[0]
    with pytest.raises(FileNotFoundError, match="paris"):
        read_instacities(instacities, ["paris"])
    with pytest.raises(FileNotFoundError, match="InstaCities layout"):
        read_instacities(instacities / "captions")


# --------------------------------------------------------------------------- COCO


def make_coco(root: Path, data: object) -> Path:
    write_jpeg(root / "images" / "000001.jpg")
    write_jpeg(root / "images" / "000002.jpg")
    path = root / "captions.json"
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return path


COCO = {
    "images": [
        {"id": 2, "file_name": "000002.jpg"},
        {"id": 1, "file_name": "000001.jpg"},
        {"id": 3, "file_name": "000003.jpg"},
    ],
    "annotations": [
        {"image_id": 1, "id": 10, "caption": "A man riding a wave."},
        {"image_id": 2, "id": 11, "caption": "A plate of food."},
        {"image_id": 1, "id": 12, "caption": "Surfer on a board."},
        {"image_id": 3, "id": 13, "caption": "This image is missing."},
    ],
}


def test_coco_reads_images_order_and_reports_missing(tmp_path: Path, caplog) -> None:
    annotations = make_coco(tmp_path, COCO)
    with caplog.at_level(logging.WARNING, logger="server.datasets"):
        records = read_coco(annotations, tmp_path / "images")
    assert records == [
        CaptionedImage(tmp_path / "images" / "000002.jpg", ("A plate of food.",)),
        CaptionedImage(
            tmp_path / "images" / "000001.jpg", ("A man riding a wave.", "Surfer on a board.")
        ),
    ]
    warnings = warnings_text(caplog)
    assert len(warnings) == 1
    assert "000003.jpg" in warnings[0]


def test_coco_annotation_missing_caption(tmp_path: Path) -> None:
    data = json.loads(json.dumps(COCO))
    del data["annotations"][2]["caption"]
    annotations = make_coco(tmp_path, data)
    with pytest.raises(CaptionFormatError) as info:
        read_coco(annotations, tmp_path / "images")
    assert str(info.value) == f"{annotations}: annotations[2]: missing 'caption'"


def test_coco_unknown_image_id(tmp_path: Path) -> None:
    data = json.loads(json.dumps(COCO))
    data["annotations"][1]["image_id"] = 99
    annotations = make_coco(tmp_path, data)
    with pytest.raises(CaptionFormatError, match=r"annotations\[1\]: image_id 99 is not in"):
        read_coco(annotations, tmp_path / "images")


def test_coco_invalid_json_names_line(tmp_path: Path) -> None:
    annotations = tmp_path / "captions.json"
    annotations.write_text('{"images": [],\n "annotations": [\n  {"image_id": 1,}\n]}\n')
    (tmp_path / "images").mkdir()
    with pytest.raises(CaptionFormatError) as info:
        read_coco(annotations, tmp_path / "images")
    assert str(info.value).startswith(f"{annotations}:3: expected valid JSON")


# --------------------------------------------------------------------------- folders


def test_folder_with_sidecars(tmp_path: Path, caplog) -> None:
    write_jpeg(tmp_path / "b.JPG")
    (tmp_path / "b.txt").write_text("first caption\n\n  \nsecond caption\n")
    write_jpeg(tmp_path / "sub" / "a.jpeg")
    (tmp_path / "sub" / "a.txt").write_text("nested caption")
    Image.new("RGB", (4, 4)).save(tmp_path / "sub" / "c.png")
    (tmp_path / "sub" / "c.txt").write_text("a png")
    write_jpeg(tmp_path / "uncaptioned.jpg")
    (tmp_path / "README.txt").write_text("not a caption: no image beside it")
    with caplog.at_level(logging.WARNING, logger="server.datasets"):
        records = read_folder(tmp_path)
    assert records == [
        CaptionedImage(tmp_path / "b.JPG", ("first caption", "second caption")),
        CaptionedImage(tmp_path / "sub" / "a.jpeg", ("nested caption",)),
        CaptionedImage(tmp_path / "sub" / "c.png", ("a png",)),
    ]
    warnings = warnings_text(caplog)
    assert len(warnings) == 1
    assert "uncaptioned.jpg" in warnings[0]


def test_folder_with_captions_tsv(tmp_path: Path, caplog) -> None:
    write_jpeg(tmp_path / "photos" / "x.jpg")
    write_jpeg(tmp_path / "y.png")
    (tmp_path / "y.txt").write_text("ignored: captions.tsv takes precedence")
    (tmp_path / "captions.tsv").write_text(
        "# path<TAB>caption\n"
        "photos/x.jpg\tA red square\n"
        "\n"
        "y.png\tAnother red square\n"
        "photos/x.jpg\tStill a red square\n"
        "gone.jpg\tNo such file\n",
        encoding="utf-8",
    )
    with caplog.at_level(logging.WARNING, logger="server.datasets"):
        records = read_folder(tmp_path)
    assert records == [
        CaptionedImage(tmp_path / "photos" / "x.jpg", ("A red square", "Still a red square")),
        CaptionedImage(tmp_path / "y.png", ("Another red square",)),
    ]
    warnings = warnings_text(caplog)
    assert len(warnings) == 1
    assert "gone.jpg" in warnings[0]


@pytest.mark.parametrize(
    ("bad_line", "expected"),
    [
        ("photos/x.jpg A caption with no tab", "found no TAB"),
        ("photos/x.jpg\t ", "expected a caption after the TAB"),
        ("\tcaption without a path", "expected an image path before the TAB"),
    ],
)
def test_folder_malformed_tsv_line(tmp_path: Path, bad_line: str, expected: str) -> None:
    tsv = tmp_path / "captions.tsv"
    tsv.write_text(f"# header\nphotos/x.jpg\tfine\n\n{bad_line}\n")
    with pytest.raises(CaptionFormatError) as info:
        read_folder(tmp_path)
    assert str(info.value).startswith(f"{tsv}:4: ")
    assert expected in str(info.value)


def test_folder_missing_root(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"captions\.tsv"):
        read_folder(tmp_path / "nope")


# --------------------------------------------------------------------------- dispatch


def test_open_dataset_dispatch(small_flickr: Path, instacities: Path, tmp_path: Path) -> None:
    assert open_dataset("flickr8k", small_flickr, "train") == read_flickr8k(small_flickr, "train")
    assert open_dataset("instacities", instacities) == read_instacities(instacities)
    annotations = make_coco(tmp_path / "coco", COCO)
    coco = open_dataset("coco", annotations)
    assert [r.image.name for r in coco] == ["000002.jpg", "000001.jpg"]
    elsewhere = tmp_path / "coco" / "images"
    assert open_dataset("coco", annotations, images_dir=elsewhere) == coco
    write_jpeg(tmp_path / "folder" / "p.jpg")
    (tmp_path / "folder" / "p.txt").write_text("a caption")
    assert open_dataset("folder", tmp_path / "folder") == [
        CaptionedImage(tmp_path / "folder" / "p.jpg", ("a caption",))
    ]


def test_open_dataset_rejects_bad_arguments(small_flickr: Path) -> None:
    with pytest.raises(ValueError) as info:
        open_dataset("imagenet", small_flickr)
    for kind in DATASET_KINDS:
        assert kind in str(info.value)
    with pytest.raises(ValueError, match="only supported for 'flickr8k'"):
        open_dataset("folder", small_flickr, "train")
    with pytest.raises(ValueError, match="only supported for 'coco'"):
        open_dataset("flickr8k", small_flickr, images_dir=small_flickr)


# --------------------------------------------------------------------------- Tux Paint stamps


def test_tuxpaint_reader_takes_the_english_line_only(tmp_path, caplog):
    animals = tmp_path / "animals"
    animals.mkdir()
    Image.new("RGBA", (4, 4)).save(animals / "cat.png")
    (animals / "cat.txt").write_text("A cat sleeping.\nfr.utf8=Un chat qui dort.\n")
    Image.new("RGBA", (4, 4)).save(animals / "dog.png")  # no description
    (animals / "fish.svg").write_text("<svg/>")
    (animals / "fish.txt").write_text("A fish.\n")
    with caplog.at_level(logging.WARNING):
        records = read_tuxpaint(tmp_path)
    assert records == [CaptionedImage(animals / "cat.png", ("A cat sleeping.",))]
    assert "dog.png" in caplog.text
    assert open_dataset("tuxpaint", tmp_path) == records


def test_tuxpaint_missing_says_how_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match="tuxpaint-stamps-default"):
        read_tuxpaint(tmp_path / "nope")


@pytest.mark.skipif(not TUXPAINT_STAMPS.is_dir(), reason="tuxpaint-stamps-default not installed")
def test_tuxpaint_installed_stamps():
    records = read_tuxpaint()
    assert len(records) > 500
    assert all(r.image.suffix == ".png" and r.image.is_file() for r in records)
    assert all("utf8=" not in r.captions[0] for r in records)
