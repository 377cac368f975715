"""gensim Word2Vec on the tokenised captions: the second text model of the paper."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gensim.models import KeyedVectors, Word2Vec


@dataclass(frozen=True)
class Word2VecConfig:
    """gensim Word2Vec on the same tokenised captions: the second text model of the paper."""

    dim: int = 100
    window: int = 10
    min_count: int = 3
    skip_gram: bool = True
    negative: int = 5
    epochs: int = 30
    seed: int = 0
    # One worker keeps training reproducible run to run; more are faster but not deterministic.
    workers: int = 1


def train_word2vec(sentences: Sequence[list[str]], config: Word2VecConfig = Word2VecConfig()
                   ) -> KeyedVectors:
    model = Word2Vec(
        sentences=sentences, vector_size=config.dim, window=config.window,
        min_count=config.min_count, sg=int(config.skip_gram), negative=config.negative,
        epochs=config.epochs, seed=config.seed, workers=config.workers,
    )
    return model.wv
