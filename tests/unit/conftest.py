"""In-process fixtures for the serving parts: the shipped word space and a small gallery made of
its words, so that a word's query has one right answer."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from server.artifacts import DEFAULT_MODEL_DIR, load_word_space, model_fingerprint
from server.serve.gallery import Gallery, Item, write_generation
from server.serve.retrieval import Retriever
from server.serve.search import ExactSearch
from server.wordspace import WordSpace

T = TypeVar("T")


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """asyncio.run in a thread of its own: the browser tests' Playwright keeps an event loop
    running in the main thread for the whole session."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


# the gallery's "images": each one's vector is its word's, and its caption the word
GALLERY_WORDS = ("dog", "cat", "beach", "mountain", "car", "bicycle", "snow", "river", "ball",
                 "grass", "water", "tree", "boat", "horse", "bird", "street", "child", "city")


@pytest.fixture(scope="session")
def word_space() -> WordSpace:
    return load_word_space()


@pytest.fixture(scope="session")
def word_gallery(tmp_path_factory, word_space) -> Gallery:
    """Image n (id n, row n - 1) is GALLERY_WORDS[n - 1]: its word's vector, its caption."""
    directory: Path = tmp_path_factory.mktemp("word_gallery")
    items = [Item(row + 1, row, f"{word}.jpg", 0, 0, word)
             for row, word in enumerate(GALLERY_WORDS)]
    vectors = np.stack([word_space.word_vector(word) for word in GALLERY_WORDS])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)  # as the indexer stores them
    write_generation(directory, root=directory,
                     model_fingerprint=model_fingerprint(DEFAULT_MODEL_DIR), items=items,
                     skipped=[], vectors=vectors, next_id=len(items) + 1)
    return Gallery(directory)


@pytest.fixture(scope="session")
def retriever(word_space, word_gallery) -> Retriever:
    return Retriever(word_space, word_gallery, ExactSearch(word_gallery.vectors))


def image_of(word: str) -> int:
    """The id of the gallery image made of `word`."""
    return GALLERY_WORDS.index(word) + 1
