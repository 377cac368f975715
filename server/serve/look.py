"""How the page presents a gallery: a readable name, and whether its pictures may be cropped.

Photos fill square tiles well when cropped. Clip art (Tux Paint's stamps: one object on a
transparent background) loses the object: cropped, `car` showed a door, a red blob and "OLICE".
So a gallery whose pictures have transparency is shown whole (letterboxed); the hello message
tells the page which (`fit`), and `python -m server --fit` overrides it.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Literal

from PIL import Image

from server.serve.gallery import Gallery

Fit = Literal["cover", "contain"]
FITS: tuple[Fit, ...] = ("cover", "contain")
# the galleries `make demo` builds, by their index folder's name
TITLES = {"tuxpaint": "Tux Paint stamps", "skimage": "scikit-image sample photos",
          "flickr8k-test": "Flickr8k test photos"}
GENERIC = {"gallery", "index"}  # index folder names that say nothing: the image folder's does
SAMPLE = 48


def title(gallery: Gallery) -> str:
    """`Tux Paint stamps` for runs/index/tuxpaint, `Holiday photos` for .../holiday_photos."""
    name = gallery.directory.name
    if name in TITLES:
        return TITLES[name]
    if name.lower() in GENERIC and gallery.root.name:
        name = gallery.root.name
    readable = re.sub(r"[-_\s]+", " ", name).strip() or "gallery"
    return readable[:1].upper() + readable[1:]


def picture_fit(gallery: Gallery, sample: int = SAMPLE) -> Fit:
    """"contain" where most of the first pictures have transparency (clip art), else "cover"."""
    items = gallery.page(0, sample)
    clear = sum(_transparent(gallery.root / item.path) for item in items)
    return "contain" if items and 2 * clear >= len(items) else "cover"


def _transparent(path: Path) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # only the header
            with Image.open(path) as image:
                return image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    except (OSError, ValueError, Image.DecompressionBombError):
        return False  # unreadable now: it does not decide how the others look
