"""Decode untrusted image files and uploads into plain RGB, or say in words why not.

Everything that reaches the network goes through `open_image` and `to_array`: the feature cache,
training and evaluation, the indexer (files in a gallery folder) and the server (uploads), so
what is evaluated is what is served. Odd but valid files are decoded the way a viewer
shows them (EXIF orientation applied, CMYK converted, transparency on white, 16-bit scaled to 8);
broken or hostile ones raise `BadImage` with a reason, never anything else.
"""

from __future__ import annotations

import io
import math
import time
import warnings
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import NamedTuple, TypeVar

import numpy as np
import pillow_heif
from PIL import ExifTags, Image, ImageOps

# HEIC/HEIF (phones' photos) through Pillow, as one more format: the primary image only (no
# embedded thumbnails, depth or auxiliary images to decode)
pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)
T = TypeVar("T")

# 64 megapixels: a 9000 x 7000 camera photo passes, a decompression bomb (a small file that
# claims to be 30000 x 30000) is refused before a single pixel is decoded.
MAX_PIXELS = 64_000_000


# Only the formats of photos on disk and on the web: Pillow can open many more (TIFF, EPS, ICO,
# ...), and some of those run external programs or rarely-exercised decoders.
FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "HEIF")
# What browsers show as they are: the page previews anything else (HEIC) by its thumbnail
BROWSER_FORMATS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"})

# Thumbnails, made as each image is decoded for the network (docs/gallery-index.md): the
# long side in pixels, and the JPEG quality. JPEG rather than WebP: 3-4x faster to encode here,
# and every browser shows it.
THUMBNAIL_SIDE = 400
THUMBNAIL_QUALITY = 80


class BadImage(ValueError):
    """A file or upload that cannot be used as an image; the message says why."""


def open_image(source: Path | bytes, draft_size: int | None = None,
               max_pixels: int = MAX_PIXELS, max_memory: int | None = None) -> Image.Image:
    """Decode a file or bytes into an upright RGB image.

    `draft_size` lets decoding shrink what is larger than needed, keeping both sides at least
    that large: JPEG decodes at 1/2, 1/4 or 1/8 scale on the fly (a 4000 x 3000 photo for a
    240-pixel network decodes 8x faster), and any other image is box-reduced by a whole factor
    right after decoding, down to twice `draft_size`, before any conversion copies it.
    `max_memory` refuses, before decoding, an image whose decoding would take more memory than
    that (in bytes, by `decoding_memory`): the server's bound on one upload.
    A file that cannot be read raises BadImage starting "cannot read" (worth retrying later);
    every other reason is about the file's content.
    """
    return _opened(source, max_memory,
                   lambda image: _decode(image, draft_size, max_pixels, max_memory))


class Photo(NamedTuple):
    """What the indexer takes from one decoding of a file (`read_photo`)."""

    input: np.ndarray  # the network's input (`to_array`)
    thumbnail: bytes  # a JPEG, upright, THUMBNAIL_SIDE on its long side at most (b"": none asked)
    taken: str  # when: EXIF DateTimeOriginal (else DateTime), else the file's mtime, ISO 8601
    layout: np.ndarray  # its colour layout (`colour_layout`)


def read_photo(path: Path, size: int, thumbnail_side: int = THUMBNAIL_SIDE,
               max_pixels: int = MAX_PIXELS) -> Photo:
    """Decode a gallery file once into its network input, its thumbnail and its date.

    Decoding shrinks what is larger than both need (`open_image`'s draft), so a 12-megapixel
    JPEG still decodes at 1/8 scale. Raises BadImage as `open_image` does.
    """
    def photo(image: Image.Image) -> Photo:
        taken = exif_date(image)
        upright = _decode(image, size, max_pixels, None, long_side=thumbnail_side)
        if taken is None:
            taken = _file_date(path)
        return Photo(to_array(upright, size),
                     thumbnail_jpeg(upright, thumbnail_side) if thumbnail_side else b"", taken,
                     colour_layout(upright))

    return _opened(path, None, photo)


LAYOUT_SIDE = 6
LAYOUT_DIM = 3 * LAYOUT_SIDE * LAYOUT_SIDE


def colour_layout(image: Image.Image) -> np.ndarray:
    """An image as its 6 x 6 colour layout, half of its appearance (server.serve.duplicates):
    (108,) float32, each channel less its mean, unit length (all zero for a flat picture)."""
    small = np.asarray(image.convert("RGB").resize((LAYOUT_SIDE, LAYOUT_SIDE),
                                                   Image.Resampling.BOX), np.float32)
    centred = (small - small.mean(axis=(0, 1))).ravel()
    length = float(np.linalg.norm(centred))
    return centred / length if length > 1e-6 else centred


def thumbnail_jpeg(image: Image.Image, side: int = THUMBNAIL_SIDE) -> bytes:
    """An RGB image shrunk to `side` on its long side (never enlarged), as JPEG bytes."""
    small = flatten_alpha(image)  # a copy: shrinking in place leaves `image` as it was
    small.thumbnail((side, side), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=THUMBNAIL_QUALITY)
    return out.getvalue()


_DATE_ORIGINAL, _DATE = 36867, 306  # EXIF tags: DateTimeOriginal (Exif IFD), DateTime (IFD0)


def exif_date(image: Image.Image) -> str | None:
    """When the photo was taken, by its EXIF, as 'YYYY-MM-DDTHH:MM:SS' (the camera's local
    time, as photo managers show it); None without a readable one."""
    try:
        exif = image.getexif()
        said = exif.get_ifd(ExifTags.IFD.Exif).get(_DATE_ORIGINAL) or exif.get(_DATE)
        if not isinstance(said, str):
            return None
        return datetime.strptime(said.strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S").isoformat()
    except Exception:  # a broken EXIF block is no date, never a bad image
        return None


def _file_date(path: Path) -> str:
    try:
        seconds = Path(path).stat().st_mtime
    except OSError:
        seconds = time.time()
    return datetime.fromtimestamp(seconds).replace(microsecond=0).isoformat()


def _opened(source: Path | bytes, max_memory: int | None, decode: Callable[[Image.Image], T]
            ) -> T:
    """`decode` of the opened image, every failure turned into BadImage (see `open_image`)."""
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError as error:
        raise BadImage(f"cannot read: {error.strerror or error}") from None
    if max_memory is not None:
        _check_webp_canvas(data, max_memory)
    with warnings.catch_warnings():
        # Pillow only warns between its own limit and twice it; for us a bomb is an error
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=FORMATS) as image:
                return decode(image)
        except BadImage:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise BadImage(f"too large: {error}") from None
        except Image.UnidentifiedImageError:
            raise BadImage(f"not an image ({', '.join(FORMATS)} are read)") from None
        except Exception as error:  # any decoder failure is a bad file, never a crash
            raise BadImage(f"cannot decode: {error}") from None


def _decode(image: Image.Image, draft_size: int | None, max_pixels: int,
            max_memory: int | None, long_side: int = 0) -> Image.Image:
    """The opened image decoded, upright and RGB; shrunk (when `draft_size` is given) while its
    short side stays at least `draft_size` and its long side at least `long_side`."""
    width, height = image.size
    if width * height > max_pixels:
        raise BadImage(f"too large: {width}x{height} pixels (the limit is {max_pixels:,}); a "
                       "decompression bomb or a huge scan")
    if draft_size and long_side:
        draft_size = max(draft_size, math.ceil(long_side * min(width, height)
                                                / max(width, height, 1)))
    if draft_size and image.format == "JPEG":
        image.draft("RGB", (draft_size, draft_size))
    if max_memory is not None and decoding_memory(image) > max_memory:
        raise BadImage(f"too large to decode here: a {image.size[0]}x{image.size[1]} "
                       f"{image.format} ({image.mode}) needs about "
                       f"{decoding_memory(image) / 2**20:.0f} MiB (the limit is "
                       f"{max_memory / 2**20:.0f} MiB); send a JPEG, or a smaller image")
    sixteen_bit = image.mode.startswith("I;16")
    image.load()
    if draft_size:
        image = _reduce(image, draft_size)
    return _to_rgb(ImageOps.exif_transpose(image), sixteen_bit)


# Bytes a pixel takes while an image is decoded and reduced (see `decoding_memory`): Pillow
# stores "1", "L" and "P" in 1 byte, 16-bit grey in 2 and everything else in 4, and some modes
# are converted at full size before they can be reduced (`_reduce`).
_STORED = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
_CONVERTED = {"1": 1, "P": 4, "PA": 4, "RGBA": 4, "LA": 4, "I;16": 4, "I;16L": 4, "I;16B": 4,
              "I;16N": 4}
# libwebp decodes into a canvas of its own, which Pillow copies twice: 16 bytes a pixel in all,
# with or without alpha
_WEBP_PER_PIXEL = 16
# what other formats take beyond that, measured: Pillow's GIF and BMP readers copy some rows;
# libheif decodes into planes of its own that pillow-heif then copies (measured 9-10 bytes a
# pixel in all, so 6 on top of the 4 stored: an estimate that runs short would let one through)
_FORMAT_EXTRA = {"GIF": 1, "BMP": 3, "HEIF": 6}


def decoding_memory(image: Image.Image) -> int:
    """About how many bytes decoding this opened (not yet loaded) image will take at its peak:
    the decoded pixels at full size and any full-size conversion before they are reduced.
    Measured for each format by `python -m scripts.stress --only decode` (docs/reliability.md).
    """
    width, height = image.size
    per_pixel = _STORED.get(image.mode, 4) + _CONVERTED.get(image.mode, 0)
    if image.mode == "P" and "transparency" in image.info:
        per_pixel += 4  # to RGBA, then premultiplied for reducing
    if image.format == "WEBP":
        per_pixel = max(per_pixel, _WEBP_PER_PIXEL)
    per_pixel += _FORMAT_EXTRA.get(image.format or "", 0)
    return width * height * per_pixel


def _check_webp_canvas(data: bytes, max_memory: int) -> None:
    """Refuse a WebP too large to decode before Pillow opens it: opening one already allocates
    libwebp's canvas for the whole picture."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return
    size = _webp_size(data[:30])
    if size is None:
        raise BadImage("cannot tell this WebP's size before decoding it")
    needed = size[0] * size[1] * _WEBP_PER_PIXEL
    if needed > max_memory:
        raise BadImage(f"too large to decode here: a {size[0]}x{size[1]} WebP needs about "
                       f"{needed / 2**20:.0f} MiB (the limit is {max_memory / 2**20:.0f} MiB); "
                       "send a JPEG, or a smaller image")


def _webp_size(head: bytes) -> tuple[int, int] | None:
    """Width and height from a WebP's first 30 bytes (its VP8, VP8L or VP8X header)."""
    chunk = head[12:16]
    if chunk == b"VP8 " and len(head) >= 30 and head[23:26] == b"\x9d\x01\x2a":
        return (int.from_bytes(head[26:28], "little") & 0x3FFF,
                int.from_bytes(head[28:30], "little") & 0x3FFF)
    if chunk == b"VP8X" and len(head) >= 30:
        return (int.from_bytes(head[24:27], "little") + 1,
                int.from_bytes(head[27:30], "little") + 1)
    if chunk == b"VP8L" and len(head) >= 25 and head[20] == 0x2F:
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _reduce(image: Image.Image, size: int) -> Image.Image:
    """Shrink a decoded image by a whole factor while both sides stay at least 2 x size: the
    network's input is made from far fewer pixels, and nothing after this copies a full-size
    picture. Modes Pillow cannot reduce are converted first (costed in `decoding_memory`)."""
    factor = min(image.size) // (2 * size)
    if factor < 2:
        return image
    if image.mode == "1":
        image = image.convert("L")
    elif image.mode in ("P", "PA"):
        transparent = image.mode == "PA" or "transparency" in image.info
        image = image.convert("RGBA" if transparent else "RGB")
    elif image.mode.startswith("I;16"):
        image = image.convert("I")
    return image.reduce(factor)


def _to_rgb(image: Image.Image, sixteen_bit: bool = False) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit (and 32-bit integer) greyscale: convert("RGB") would clip, so scale to 8 bits
        pixels = np.clip(np.asarray(image, dtype=np.float64), 0, None)
        brightest = pixels.max(initial=0)
        top = 65535.0 if sixteen_bit or image.mode.startswith("I;16") else (
            255.0 if brightest <= 255 else max(65535.0, brightest))  # 8-bit values in mode I
        image = Image.fromarray((pixels / top * 255.0).round().astype(np.uint8), "L")
    elif image.mode == "F":
        pixels = np.asarray(image, dtype=np.float64)
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "L")
    return flatten_alpha(image)


def flatten_alpha(image: Image.Image) -> Image.Image:
    """RGB, with any transparency composited onto white (as a viewer shows a cut-out)."""
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, image.convert("RGBA")).convert("RGB")
    return image.convert("RGB")


def to_array(image: Image.Image, size: int) -> np.ndarray:
    """An RGB image as the network's input: (3, size, size) float32, scaled as (x - 127) / 128.

    The whole image is squashed to a square rather than cropped, so nothing at the edges (where
    captions often point) is lost; Flickr8k as shipped here is already squashed the same way.
    """
    image = flatten_alpha(image)
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BICUBIC)
    pixels = np.asarray(image, dtype=np.float32)
    return ((pixels - 127.0) / 128.0).transpose(2, 0, 1).copy()


def load_input(source: Path | bytes, size: int, max_pixels: int = MAX_PIXELS,
               max_memory: int | None = None) -> np.ndarray:
    """A file or upload straight to the network's input (`open_image`, then `to_array`)."""
    return to_array(open_image(source, draft_size=size, max_pixels=max_pixels,
                               max_memory=max_memory), size)
