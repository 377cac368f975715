"""Decode untrusted image files and uploads into plain RGB, or say in words why not.

Everything that reaches the network goes through `open_image` and `to_array`: the feature cache,
training and evaluation, the indexer (files in a gallery folder) and the server (uploads), so
what is evaluated is what is served. Odd but valid files are decoded the way a viewer
shows them (EXIF orientation applied, CMYK converted, transparency on white, 16-bit scaled to 8);
broken or hostile ones raise `BadImage` with a reason, never anything else.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

# 64 megapixels: a 9000 x 7000 camera photo passes, a decompression bomb (a small file that
# claims to be 30000 x 30000) is refused before a single pixel is decoded.
MAX_PIXELS = 64_000_000


# Only the formats of photos on disk and on the web: Pillow can open many more (TIFF, EPS, ICO,
# ...), and some of those run external programs or rarely-exercised decoders.
FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")


class BadImage(ValueError):
    """A file or upload that cannot be used as an image; the message says why."""


def open_image(source: Path | bytes, draft_size: int | None = None,
               max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode a file or bytes into an upright RGB image.

    `draft_size` lets JPEG decoding scale down by 2, 4 or 8 on the fly while keeping both sides
    at least that large: a 4000 x 3000 photo for a 240-pixel network decodes 8x faster.
    A file that cannot be read raises BadImage starting "cannot read" (worth retrying later);
    every other reason is about the file's content.
    """
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError as error:
        raise BadImage(f"cannot read: {error.strerror or error}") from None
    with warnings.catch_warnings():
        # Pillow only warns between its own limit and twice it; for us a bomb is an error
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=FORMATS) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise BadImage(f"too large: {width}x{height} pixels (the limit is "
                                   f"{max_pixels:,}); a decompression bomb or a huge scan")
                if draft_size and image.format == "JPEG":
                    image.draft("RGB", (draft_size, draft_size))
                image.load()
                return _to_rgb(ImageOps.exif_transpose(image))
        except BadImage:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise BadImage(f"too large: {error}") from None
        except Image.UnidentifiedImageError:
            raise BadImage(f"not an image ({', '.join(FORMATS)} are read)") from None
        except Exception as error:  # any decoder failure is a bad file, never a crash
            raise BadImage(f"cannot decode: {error}") from None


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit (and 32-bit integer) greyscale: convert("RGB") would clip, so scale to 8 bits
        pixels = np.clip(np.asarray(image, dtype=np.float64), 0, None)
        brightest = pixels.max(initial=0)
        top = 65535.0 if image.mode.startswith("I;16") else (
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


def load_input(source: Path | bytes, size: int, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """A file or upload straight to the network's input (`open_image`, then `to_array`)."""
    return to_array(open_image(source, draft_size=size, max_pixels=max_pixels), size)
