"""The model committed in models/ loads with the installed packages alone and embeds real images."""

import json

import numpy as np
import skimage.data
from PIL import Image

from server.artifacts import (
    DEFAULT_MODEL_DIR,
    ENCODER_FILE,
    HEAD_FILE,
    MANIFEST_FILE,
    WORDS_FILE,
    load_word_space,
)
from server.serve.encoder import ImageEncoder

KB = 1024


def test_shipped_model_is_small_and_described():
    files = {p.name: p.stat().st_size for p in DEFAULT_MODEL_DIR.iterdir() if p.is_file()}
    assert {WORDS_FILE, HEAD_FILE, ENCODER_FILE, MANIFEST_FILE} <= set(files)
    assert max(files.values()) <= 25 * KB * KB  # what a git host takes without LFS
    manifest = json.loads((DEFAULT_MODEL_DIR / MANIFEST_FILE).read_text())
    assert {"data", "model", "train", "code_version", "dev_metrics"} <= set(manifest)


def test_shipped_model_embeds_real_photos_into_the_word_space():
    encoder = ImageEncoder()
    words = load_word_space()
    photos = [Image.fromarray(skimage.data.chelsea()), Image.fromarray(skimage.data.coffee())]
    vectors = encoder.embed(photos)
    assert vectors.shape == (2, words.dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, rtol=1e-5)
    assert len(words) > 3000 and "dog" in words
    # the cat photo is nearer "cat" than "bicycle"; the coffee cup nearer "cup" than "snow"
    def similarity(row, word):
        unit = words.word_vector(word) / np.linalg.norm(words.word_vector(word))
        return float(vectors[row] @ unit)

    assert similarity(0, "cat") > similarity(0, "bicycle")
    assert similarity(1, "cup") > similarity(1, "snow")
