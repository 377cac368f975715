"""scikit-image's sample photos as a small captioned gallery: the demo's fallback and the tests'.

Every user can install scikit-image from PyPI (`pip install '.[samples]'`), and its photos ship
inside the wheel; it is imported only when a gallery is written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# each with a caption as a person would write it
SAMPLE_PHOTOS = {
    "astronaut": ("astronaut", "an astronaut in a white suit in front of a flag"),
    "cat": ("chelsea", "a brown cat looking at the camera"),
    "coffee": ("coffee", "a cup of coffee on a saucer"),
    "rocket": ("rocket", "a rocket on the launch pad"),
    "camera": ("camera", "a man with a camera on a tripod in a field"),
    "coins": ("coins", "old coins on a table"),
    "moon": ("moon", "the surface of the moon"),
    "clock": ("clock", "a clock on a wall"),
    "hubble": ("hubble_deep_field", "stars and galaxies in the night sky"),
    "grass": ("grass", "green grass"),
    "brick": ("brick", "a brick wall"),
    "page": ("page", "a page of a book with text"),
}


def write_sample_gallery(folder: Path) -> dict[str, Path]:
    """JPEGs with a .txt caption beside each; returns name -> image path."""
    try:
        from skimage import data as samples
    except ImportError:
        raise ImportError("the sample photos come with scikit-image: "
                          "pip install '.[samples]'") from None
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, (loader, caption) in SAMPLE_PHOTOS.items():
        pixels = getattr(samples, loader)()
        if pixels.dtype != np.uint8:
            pixels = (pixels * 255).astype(np.uint8)
        paths[name] = folder / f"{name}.jpg"
        Image.fromarray(pixels).convert("RGB").save(paths[name], quality=92)
        (folder / f"{name}.txt").write_text(caption + "\n")
    return paths


def write_large_photos(folder: Path, count: int, size: tuple[int, int] = (4032, 3024),
                       seed: int = 0) -> list[Path]:
    """`count` JPEGs the size of a phone's photo (12 megapixels, 3-5 MB each, as a camera
    writes them: fine grain compresses badly), made from the sample photos enlarged, each with
    its own grain: what a personal library holds, made in a fraction of a second each."""
    try:
        from skimage import data as samples
    except ImportError:
        raise ImportError("the sample photos come with scikit-image: "
                          "pip install '.[samples]'") from None
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    loaders = [loader for loader, _ in SAMPLE_PHOTOS.values()][:4]  # the colour photos
    paths = []
    for number in range(count):
        pixels = getattr(samples, loaders[number % len(loaders)])()
        base = Image.fromarray(pixels).convert("RGB").resize(size, Image.Resampling.BILINEAR)
        grain = rng.integers(-12, 13, (size[1], size[0], 3), dtype=np.int16)
        grainy = np.clip(np.asarray(base, np.int16) + grain, 0, 255).astype(np.uint8)
        paths.append(folder / f"photo-{number:03d}.jpg")
        Image.fromarray(grainy).save(paths[-1], quality=90)
    return paths


COPY_KINDS = ("half size", "JPEG quality 30", "cropped 10%", "brighter")


def plant_copies(originals: list[Path], folder: Path, seed: int = 0) -> list[tuple[Path, Path]]:
    """Near-identical copies of each photo, as people's libraries hold them (the test of near
    duplicates): resized to half, recompressed at JPEG quality 30, cropped by up to a tenth on
    each side (at a random place), made brighter and more contrasted. Returns (original, copy)
    pairs, COPY_KINDS in turn for each original."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    planted = []
    for number, path in enumerate(originals):
        with Image.open(path) as opened:
            image = opened.convert("RGB")
        width, height = image.size
        left, top = (rng.random(2) * [width * 0.1, height * 0.1]).astype(int)
        brighter = np.clip(np.asarray(image, np.float32) * 1.15 + 10, 0, 255).astype(np.uint8)
        copies = [(image.resize((width // 2, height // 2), Image.Resampling.BILINEAR), 95),
                  (image, 30),
                  (image.crop((left, top, left + int(width * 0.9), top + int(height * 0.9))), 95),
                  (Image.fromarray(brighter), 95)]
        for kind, (copy, quality) in enumerate(copies):
            target = folder / f"{number:05d}-{kind}-{path.stem}.jpg"
            copy.save(target, "JPEG", quality=quality)
            planted.append((path, target))
    return planted
