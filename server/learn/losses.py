"""Losses that pull an image towards its caption in the joint space, each selectable by name.

Both take L2-normalized image and caption embeddings of one batch, row i of each a matching
pair (one caption per image, so the other rows are true negatives). `word_presence_loss` is an
optional second term: images against every word of the vocabulary.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def soft_negatives(captions: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """For each caption i, a random other caption of the batch farther from i than average.

    This is the reference's "soft" negative: not the hardest (often a near-duplicate caption of
    a similar photo, which would punish the model for being right) but not a trivial one either.
    Distances are cosine distances between the normalized caption embeddings.
    """
    n = captions.shape[0]
    distance = 1 - captions @ captions.T
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=captions.device)
    mean = (distance * off_diagonal).sum(1, keepdim=True) / max(n - 1, 1)
    eligible = (distance > mean) & off_diagonal
    # a caption identical to all others has no farther-than-mean one: fall back to any other
    eligible |= off_diagonal & ~eligible.any(1, keepdim=True)
    noise = torch.rand(n, n, generator=generator, device=captions.device)
    return torch.where(eligible, noise, -1.0).argmax(1)


class SoftNegativeTriplet(nn.Module):
    """The reference's contrastive loss: a hinge between the positive and a soft negative."""

    def __init__(self, margin: float = 0.2):
        super().__init__()
        self.margin = margin

    def forward(self, images: torch.Tensor, captions: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        negatives = captions[soft_negatives(captions.detach(), generator)]
        positive = (images * captions).sum(1)
        negative = (images * negatives).sum(1)
        return F.relu(self.margin - positive + negative).mean()


class InfoNCE(nn.Module):
    """Symmetric cross-entropy over in-batch similarities with a learned temperature (CLIP's)."""

    def __init__(self, initial_temperature: float = 0.07, max_scale: float = 100.0):
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(1 / initial_temperature).log())
        self.max_scale = max_scale

    def forward(self, images: torch.Tensor, captions: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        scale = self.log_scale.exp().clamp(max=self.max_scale)
        logits = scale * images @ captions.T
        target = torch.arange(images.shape[0], device=images.device)
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def word_presence_loss(images: torch.Tensor, words: torch.Tensor, present: torch.Tensor,
                       scale: float = 20.0) -> torch.Tensor:
    """Each image against the whole vocabulary: the words of its captions should be nearer
    than the others (softmax cross-entropy, averaged over the image's words).

    This is what a one-word query asks of the model, said directly: the caption loss alone
    teaches it only through whole captions. images: (b, d) and words: (v, d), both unit rows;
    present: (b, v) 0/1, which words the captions of each image contain.
    """
    log_probs = F.log_softmax(scale * images @ words.T, dim=1)
    counts = present.sum(1).clamp(min=1)
    return (-(present * log_probs).sum(1) / counts).mean()


LOSSES = {"infonce": InfoNCE, "soft-triplet": SoftNegativeTriplet}


def make_loss(name: str) -> nn.Module:
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}: choose one of {sorted(LOSSES)}")
    return LOSSES[name]()
