"""scikit-image's sample photos as a small captioned gallery: the demo's fallback and the tests'.

Every user can install scikit-image from PyPI, and its photos ship inside the wheel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data as samples

# each with a caption as a person would write it
SAMPLE_PHOTOS = {
    "astronaut": (samples.astronaut, "an astronaut in a white suit in front of a flag"),
    "cat": (samples.chelsea, "a brown cat looking at the camera"),
    "coffee": (samples.coffee, "a cup of coffee on a saucer"),
    "rocket": (samples.rocket, "a rocket on the launch pad"),
    "camera": (samples.camera, "a man with a camera on a tripod in a field"),
    "coins": (samples.coins, "old coins on a table"),
    "moon": (samples.moon, "the surface of the moon"),
    "clock": (samples.clock, "a clock on a wall"),
    "hubble": (samples.hubble_deep_field, "stars and galaxies in the night sky"),
    "grass": (samples.grass, "green grass"),
    "brick": (samples.brick, "a brick wall"),
    "page": (samples.page, "a page of a book with text"),
}


def write_sample_gallery(folder: Path) -> dict[str, Path]:
    """JPEGs with a .txt caption beside each; returns name -> image path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, (load, caption) in SAMPLE_PHOTOS.items():
        pixels = load()
        if pixels.dtype != np.uint8:
            pixels = (pixels * 255).astype(np.uint8)
        paths[name] = folder / f"{name}.jpg"
        Image.fromarray(pixels).convert("RGB").save(paths[name], quality=92)
        (folder / f"{name}.txt").write_text(caption + "\n")
    return paths
