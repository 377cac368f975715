"""Caption dataset readers: turn datasets on disk into (image path, captions) records.

Every reader returns ``list[CaptionedImage]``. Captions are returned raw (only line endings
removed), in file order; cleaning them is the tokenizer's job, not the reader's.

Problems are handled in two ways, on purpose:

* a file that is structurally wrong (a caption line without a key, a JSON file that does not
  parse) raises :class:`CaptionFormatError` naming the file and line, because silently guessing
  would train on garbage;
* a record that is well-formed but unusable (its image file is missing, an image has no
  captions) is skipped with one ``logging`` warning per item, capped at ``_WARN_CAP`` names plus
  one summary warning, so a broken download is visible without flooding the log.
"""

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

log = logging.getLogger(__name__)

DATASET_KINDS: tuple[str, ...] = ("flickr8k", "instacities", "coco", "folder", "tuxpaint")
FLICKR8K_SPLITS: tuple[str, ...] = ("train", "dev", "test")
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".heic",
                            ".heif"})

FLICKR8K_TOKEN_FILE = "Flickr8k.token.txt"
FLICKR8K_LAYOUT = "the Flickr8k layout (Flickr8k.token.txt, Flickr_8k.*Images.txt, images/)"
INSTACITIES_LAYOUT = (
    "the InstaCities layout (img_resized/<city>/<id>.jpg, captions/<city>/<id>.txt)"
)
FOLDER_TSV = "captions.tsv"

# Name at most this many items per problem; the rest are summarised in one warning.
_WARN_CAP = 10

# `IMAGE#N` followed by a TAB or, in a few original Flickr8k lines, a single space.
_FLICKR8K_LINE = re.compile(r"(?P<name>\S+?)#(?P<n>\d+)[\t ](?P<caption>.*)")


@dataclass(frozen=True)
class CaptionedImage:
    """One image and its raw captions, in the order the dataset lists them."""

    image: Path
    captions: tuple[str, ...]


class CaptionFormatError(ValueError):
    """A caption file is malformed; the message starts with ``FILE:LINE: `` (or ``FILE: ``)."""


# --------------------------------------------------------------------------- shared helpers


def _require_dir(path: Path, expected: str) -> None:
    if not path.is_dir():
        raise FileNotFoundError(f"no directory {path.name}/ in {path.parent}: expected {expected}")


def _require_file(path: Path, expected: str) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"no {path.name} in {path.parent}: expected {expected}")


def _warn_each(problem: str, items: Sequence[object]) -> None:
    """One warning per item for the first few, then one with the count of the rest."""
    for item in items[:_WARN_CAP]:
        log.warning("%s: %s", problem, item)
    if len(items) > _WARN_CAP:
        log.warning("%s: %d more not listed", problem, len(items) - _WARN_CAP)


def _read_lines(path: Path) -> list[str]:
    # utf-8-sig: a BOM would otherwise glue itself to the first key or path.
    with path.open(encoding="utf-8-sig", errors="replace") as f:
        return [line.rstrip("\r\n") for line in f]


def _keep_existing(candidates: list[tuple[Path, list[str]]], source: Path) -> list[CaptionedImage]:
    """Build records, skipping (with a warning) those whose image file is missing."""
    records, missing = [], []
    for image, captions in candidates:
        if image.is_file():
            records.append(CaptionedImage(image, tuple(captions)))
        else:
            missing.append(image)
    _warn_each(f"image file missing, its captions in {source} are skipped", missing)
    return records


# --------------------------------------------------------------------------- Flickr8k


def _parse_flickr8k_tokens(token_file: Path) -> dict[str, list[str]]:
    """Map image name -> captions, in first-appearance order."""
    captions: dict[str, list[str]] = {}
    for lineno, line in enumerate(_read_lines(token_file), start=1):
        if not line.strip():
            continue
        match = _FLICKR8K_LINE.fullmatch(line)
        if match is None:
            raise CaptionFormatError(
                f"{token_file}:{lineno}: expected 'IMAGE.jpg#N<TAB>caption', got {line[:60]!r}"
            )
        if not match["caption"].strip():
            raise CaptionFormatError(
                f"{token_file}:{lineno}: expected a caption after {match['name']}#{match['n']}"
            )
        captions.setdefault(match["name"], []).append(match["caption"])
    return captions


def _read_name_list(path: Path) -> list[str]:
    return [line.strip() for line in _read_lines(path) if line.strip()]


def read_flickr8k(root: Path, split: str | None = None) -> list[CaptionedImage]:
    """Read Flickr8k from ``root`` (Flickr8k.token.txt, Flickr_8k.{split}Images.txt, images/).

    ``split`` is one of ``'train'``, ``'dev'``, ``'test'``, or ``None`` for every captioned image.
    Records follow the split file's order (token-file order for ``None``).
    """
    root = Path(root)
    token_file = root / FLICKR8K_TOKEN_FILE
    _require_file(token_file, FLICKR8K_LAYOUT)
    images_dir = root / "images"
    _require_dir(images_dir, FLICKR8K_LAYOUT)
    if split is not None and split not in FLICKR8K_SPLITS:
        raise ValueError(f"unknown Flickr8k split {split!r}: expected one of {FLICKR8K_SPLITS}")

    captions = _parse_flickr8k_tokens(token_file)
    if split is None:
        names = list(captions)
    else:
        split_file = root / f"Flickr_8k.{split}Images.txt"
        _require_file(split_file, FLICKR8K_LAYOUT)
        listed = _read_name_list(split_file)
        _warn_each(
            f"image listed in {split_file} has no captions in {token_file.name}, skipped",
            [name for name in listed if name not in captions],
        )
        names = [name for name in listed if name in captions]
    return _keep_existing([(images_dir / name, captions[name]) for name in names], token_file)


# --------------------------------------------------------------------------- InstaCities


def _instacities_cities(captions_dir: Path, cities: list[str] | None) -> list[str]:
    available = sorted(d.name for d in captions_dir.iterdir() if d.is_dir())
    if cities is None:
        return available
    unknown = [city for city in cities if city not in available]
    if unknown:
        raise FileNotFoundError(
            f"no caption directory for {unknown} in {captions_dir}: available cities {available}"
        )
    return list(cities)


def _read_instacities_city(root: Path, city: str) -> list[tuple[Path, list[str]]]:
    images_dir = root / "img_resized" / city
    caption_files = sorted((root / "captions" / city).glob("*.txt"))
    candidates, empty = [], []
    for txt in caption_files:
        # The whole file is one Instagram caption (newlines, hashtags and emoji included);
        # errors='replace' because a few scraped captions are not valid UTF-8.
        text = txt.read_text(encoding="utf-8", errors="replace")
        if text.strip():
            candidates.append((images_dir / f"{txt.stem}.jpg", [text]))
        else:
            empty.append(txt)
    _warn_each("InstaCities caption file is empty, its image is skipped", empty)
    if images_dir.is_dir():
        captioned = {txt.stem for txt in caption_files}
        _warn_each(
            "InstaCities image has no caption file, skipped",
            [p for p in sorted(images_dir.glob("*.jpg")) if p.stem not in captioned],
        )
    return candidates


def read_instacities(root: Path, cities: list[str] | None = None) -> list[CaptionedImage]:
    """Read InstaCities: ``img_resized/<city>/<id>.jpg`` captioned by ``captions/<city>/<id>.txt``.

    ``cities`` restricts (and orders) the cities read; ``None`` reads every city, sorted by name.
    Within a city, records are sorted by id.
    """
    root = Path(root)
    _require_dir(root / "img_resized", INSTACITIES_LAYOUT)
    _require_dir(root / "captions", INSTACITIES_LAYOUT)
    candidates = []
    for city in _instacities_cities(root / "captions", cities):
        candidates.extend(_read_instacities_city(root, city))
    return _keep_existing(candidates, root / "captions")


# --------------------------------------------------------------------------- COCO


T = TypeVar("T")

# The types a COCO image id may have (typed so that `_coco_field` returns `int | str`).
_COCO_ID: tuple[type[int | str], ...] = (int, str)


def _coco_entries(data: object, annotations: Path, key: str) -> list[dict]:
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise CaptionFormatError(f"{annotations}: expected a top-level object with a {key!r} list")
    for index, entry in enumerate(data[key]):
        if not isinstance(entry, dict):
            raise CaptionFormatError(f"{annotations}: {key}[{index}]: expected an object")
    return data[key]


def _coco_field(entry: dict, field: str, types: tuple[type[T], ...], where: str) -> T:
    if field not in entry:
        raise CaptionFormatError(f"{where}: missing {field!r}")
    value = entry[field]
    # bool is an int subclass, but an id of `true` is certainly a mistake.
    if not isinstance(value, types) or isinstance(value, bool):
        names = " or ".join(t.__name__ for t in types)
        raise CaptionFormatError(f"{where}: expected {field!r} to be {names}, got {value!r}")
    return value


def _load_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig", errors="replace"))
    except json.JSONDecodeError as err:
        raise CaptionFormatError(
            f"{path}:{err.lineno}: expected valid JSON ({err.msg}, column {err.colno})"
        ) from err


def _coco_file_names(data: object, annotations: Path) -> dict[int | str, str]:
    file_names: dict[int | str, str] = {}
    for index, entry in enumerate(_coco_entries(data, annotations, "images")):
        where = f"{annotations}: images[{index}]"
        image_id = _coco_field(entry, "id", _COCO_ID, where)
        if image_id in file_names:
            raise CaptionFormatError(f"{where}: duplicate image id {image_id!r}")
        file_names[image_id] = _coco_field(entry, "file_name", (str,), where)
    return file_names


def _coco_captions(data: object, annotations: Path, known: dict) -> dict[int | str, list[str]]:
    captions: dict[int | str, list[str]] = {}
    for index, entry in enumerate(_coco_entries(data, annotations, "annotations")):
        where = f"{annotations}: annotations[{index}]"
        image_id = _coco_field(entry, "image_id", _COCO_ID, where)
        caption = _coco_field(entry, "caption", (str,), where)
        if image_id not in known:
            raise CaptionFormatError(f"{where}: image_id {image_id!r} is not in 'images'")
        if not caption.strip():
            raise CaptionFormatError(f"{where}: expected a non-empty 'caption'")
        captions.setdefault(image_id, []).append(caption)
    return captions


def read_coco(annotations: Path, images_dir: Path) -> list[CaptionedImage]:
    """Read a COCO captions JSON (``images`` with id/file_name, ``annotations`` with
    image_id/caption); image files are ``images_dir / file_name``. Records follow the
    ``images`` order; captions follow the ``annotations`` order.
    """
    annotations, images_dir = Path(annotations), Path(images_dir)
    layout = "a COCO captions JSON and a directory with its images"
    _require_file(annotations, layout)
    _require_dir(images_dir, layout)
    data = _load_json(annotations)
    file_names = _coco_file_names(data, annotations)
    captions = _coco_captions(data, annotations, file_names)
    _warn_each(
        f"image in {annotations} has no annotations, skipped",
        [name for image_id, name in file_names.items() if image_id not in captions],
    )
    candidates = [
        (images_dir / name, captions[image_id])
        for image_id, name in file_names.items()
        if image_id in captions
    ]
    return _keep_existing(candidates, annotations)


# --------------------------------------------------------------------------- plain folders


def _read_captions_tsv(tsv: Path, root: Path) -> list[CaptionedImage]:
    captions: dict[str, list[str]] = {}
    for lineno, line in enumerate(_read_lines(tsv), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        rel, tab, caption = line.partition("\t")
        if not tab:
            raise CaptionFormatError(
                f"{tsv}:{lineno}: expected 'relative/path.jpg<TAB>caption', found no TAB"
            )
        if not rel.strip():
            raise CaptionFormatError(f"{tsv}:{lineno}: expected an image path before the TAB")
        if not caption.strip():
            raise CaptionFormatError(f"{tsv}:{lineno}: expected a caption after the TAB")
        captions.setdefault(rel.strip(), []).append(caption)
    return _keep_existing([(root / rel, caps) for rel, caps in captions.items()], tsv)


def sidecar_captions(image: Path) -> tuple[str, ...]:
    """The non-empty lines of the same-named .txt beside an image (none when there is none)."""
    sidecar = image.with_suffix(".txt")
    if not sidecar.is_file():
        return ()
    text = sidecar.read_text(encoding="utf-8-sig", errors="replace")
    return tuple(line for line in text.splitlines() if line.strip())


def _read_sidecars(root: Path) -> list[CaptionedImage]:
    records, uncaptioned = [], []
    images = (p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    for image in sorted(images):
        lines = sidecar_captions(image)
        if lines:
            records.append(CaptionedImage(image, tuple(lines)))
        else:
            uncaptioned.append(image)
    _warn_each("image has no non-empty .txt caption file beside it, skipped", uncaptioned)
    return records


def read_folder(root: Path) -> list[CaptionedImage]:
    """Read a plain folder of captioned images.

    If ``root/captions.tsv`` exists it is used alone: ``relative/path.jpg<TAB>caption`` per line,
    several lines per image allowed, blank and ``#`` comment lines ignored; records follow
    first appearance. Otherwise every image below ``root`` (.jpg .jpeg .png .webp .bmp .gif, any
    case) with a same-named ``.txt`` beside it is a record with one caption per non-empty line;
    records are sorted by path.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"no directory {root}: expected images with .txt captions beside them, "
            f"or a {FOLDER_TSV}"
        )
    tsv = root / FOLDER_TSV
    return _read_captions_tsv(tsv, root) if tsv.is_file() else _read_sidecars(root)


# --------------------------------------------------------------------------- Flickr30k captions

FLICKR30K_COLUMNS = ["flickr_id", "split", "caption"]


def flickr_id(image: Path) -> str:
    """The Flickr photo id of a Flickr8k file name (`1000268201_693b08cb0e.jpg`: `1000268201`)."""
    return image.name.split("_", 1)[0]


def read_flickr30k_captions(path: Path, duplicates: Sequence[CaptionedImage] = (),
                            forbidden: Sequence[CaptionedImage] = ()) -> list[str]:
    """The captions of `flickr30k-captions/captions.tsv` (no images: text for the word space),
    in file order, less those of the photos in `duplicates` (Flickr8k's training images are in
    both, with the same sentences: counted once, from Flickr8k). A photo of `forbidden` in the
    file (Flickr8k's dev and test photos, which its README says were removed) is an error: what
    model selection and reporting see must never leak into training.
    """
    path = Path(path)
    _require_file(path, "flickr30k-captions/captions.tsv (flickr_id<TAB>split<TAB>caption)")
    lines = _read_lines(path)
    if not lines or lines[0].split("\t") != FLICKR30K_COLUMNS:
        raise CaptionFormatError(f"{path}:1: expected the header "
                                 f"{'<TAB>'.join(FLICKR30K_COLUMNS)}")
    skip = {flickr_id(record.image) for record in duplicates}
    never = {flickr_id(record.image) for record in forbidden}
    captions = []
    for lineno, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != 3 or not fields[2].strip():
            raise CaptionFormatError(f"{path}:{lineno}: expected flickr_id<TAB>split<TAB>caption")
        if fields[0] in never:
            raise ValueError(f"{path}:{lineno}: photo {fields[0]} is one of Flickr8k's dev or "
                             "test photos: it must not be trained on")
        if fields[0] not in skip:
            captions.append(fields[2])
    return captions


# --------------------------------------------------------------------------- Tux Paint stamps

TUXPAINT_STAMPS = Path("/usr/share/tuxpaint/stamps")
# Where this project's developers and CI find Flickr8k: ../shared beside the checkout. The
# default of the training and evaluation commands; a user passes --path.
SHARED_FLICKR8K = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "flickr8k"
SHARED_FLICKR30K_CAPTIONS = SHARED_FLICKR8K.parent / "flickr30k-captions" / "captions.tsv"
SHARED_IMAGENET_SAMPLES = SHARED_FLICKR8K.parent / "imagenet-samples" / "images"


def read_tuxpaint(root: Path = TUXPAINT_STAMPS) -> list[CaptionedImage]:
    """Read Debian's `tuxpaint-stamps-default`: PNG stamps with a description `.txt` beside them.

    The description file's first line is English; the lines after it are translations
    (`xx.utf8=...`) and are not captions. Stamps drawn only as SVG are skipped (no renderer).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"no directory {root}: install the stamps (apt-get install --no-install-recommends "
            f"tuxpaint-stamps-default) or point to a copy of them"
        )
    records, undescribed = [], []
    for image in sorted(root.rglob("*.png")):
        sidecar = image.with_suffix(".txt")
        first = ""
        if sidecar.is_file():
            lines = sidecar.read_text(encoding="utf-8-sig", errors="replace").splitlines()
            first = lines[0].strip() if lines else ""
        if first:
            records.append(CaptionedImage(image, (first,)))
        else:
            undescribed.append(image)
    _warn_each("stamp has no English description beside it, skipped", undescribed)
    return records


# --------------------------------------------------------------------------- dispatch


def open_dataset(
    kind: str, path: Path, split: str | None = None, *, images_dir: Path | None = None
) -> list[CaptionedImage]:
    """Read a dataset of the given ``kind`` (one of :data:`DATASET_KINDS`).

    * ``'flickr8k'``: ``path`` is the Flickr8k root; ``split`` is passed to :func:`read_flickr8k`.
    * ``'instacities'``: ``path`` is the InstaCities root; every city is read.
    * ``'coco'``: ``path`` is the captions JSON file; images are looked up in
      ``path.parent / "images"`` unless ``images_dir`` is given.
    * ``'folder'``: ``path`` is a folder for :func:`read_folder`.
    * ``'tuxpaint'``: ``path`` is the stamps folder for :func:`read_tuxpaint`.

    ``split`` is only meaningful for Flickr8k and ``images_dir`` only for COCO; passing them for
    another kind raises ``ValueError`` rather than being silently ignored.
    """
    if kind not in DATASET_KINDS:
        raise ValueError(
            f"unknown dataset kind {kind!r}: expected one of {', '.join(DATASET_KINDS)}"
        )
    if split is not None and kind != "flickr8k":
        raise ValueError(f"split={split!r} is only supported for 'flickr8k', not {kind!r}")
    if images_dir is not None and kind != "coco":
        raise ValueError(f"images_dir is only supported for 'coco', not {kind!r}")
    path = Path(path)
    if kind == "flickr8k":
        return read_flickr8k(path, split)
    if kind == "instacities":
        return read_instacities(path)
    if kind == "coco":
        return read_coco(path, images_dir if images_dir is not None else path.parent / "images")
    if kind == "tuxpaint":
        return read_tuxpaint(path)
    return read_folder(path)
