"""The trained model on disk: its file names, its manifest and the fingerprint that names it.

A model folder (the shipped one is `models/`) holds

    manifest.json   what made the model: data, training settings, architecture, dev numbers
    words.npz       the words already mapped into the joint space, with their idf (WordSpace)
    encoder.onnx    the whole image side (backbone + our head) as one ONNX graph: inference
    english-words.txt, english-vectors.npy
                    general English (GloVe 6B 50d's most frequent words), mapped into the
                    joint space at lookup (server.english); optional
    encoder-concepts.bin
                    the graph's concept tensors (ONNX external data, beside encoder.onnx)
    concepts.npz    the ImageNet classes' vectors and the concept dimensions (ConceptSpace)
    caption-bank.npy
                    training captions' vectors: the hubness correction's bank
    map-words.txt   the words a map label is made of: no verbs' -ing forms, no
                    adverbs (server.learn.map_labels.describing_words); optional
    image_head.pt   our image weights in PyTorch's format: the source the graph is exported from

Serving reads all but the last; training and export write them all (`server.learn`).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from server.wordspace import WordSpace

DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[1] / "models"
MANIFEST_FILE = "manifest.json"
WORDS_FILE = "words.npz"
ENCODER_FILE = "encoder.onnx"
HEAD_FILE = "image_head.pt"
ENGLISH_WORDS_FILE = "english-words.txt"
ENGLISH_VECTORS_FILE = "english-vectors.npy"
# the ImageNet classes' vectors (in encoder.onnx too), the concept dimensions' basis and words
CONCEPTS_FILE = "concepts.npz"
BANK_FILE = "caption-bank.npy"  # training captions' vectors: the hubness correction's bank
ENCODER_DATA_FILE = "encoder-concepts.bin"  # the graph's concept tensors (ONNX external data)
MAP_WORDS_FILE = "map-words.txt"  # one word a line; a map's labels, not the index, depend on it
# What an index's vectors depend on: an index made with other files than these is searched no
# more. (The English table is not among them: it changes how words are read, not the index.)
FINGERPRINTED = (MANIFEST_FILE, WORDS_FILE, ENCODER_FILE)
FINGERPRINTED_IF_THERE = (ENCODER_DATA_FILE, CONCEPTS_FILE)


@dataclass(frozen=True)
class ModelConfig:
    """The architecture; saved in the manifest so that the shipped model can be rebuilt."""

    backbone: str = "lite1"
    tail_blocks: int = 1  # backbone blocks after the cached trunk
    finetune_tail: bool = False
    features: int = 1280
    hidden: int = 1024
    dropout: float = 0.5
    joint_dim: int = 300
    text_map: bool = True
    train_words: bool = True
    weighting: str = "mean"  # or "tfidf"


def read_manifest(directory: Path) -> dict:
    path = Path(directory) / MANIFEST_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"no trained model in {directory} (missing {MANIFEST_FILE}): train one with "
            f"`python -m scripts.train --out {directory}` or point to the shipped models/"
        )
    return json.loads(path.read_text())


def model_config(directory: Path) -> ModelConfig:
    return ModelConfig(**read_manifest(directory)["model"])


def model_fingerprint(directory: Path) -> str:
    """Names the trained model: an index made by another model is not searched with this one."""
    digest = hashlib.sha256()
    for name in FINGERPRINTED:
        path = Path(directory) / name
        if not path.exists():
            raise FileNotFoundError(f"the model in {directory} has no {name}: export it with "
                                    f"`python -m scripts.export --model {directory}`")
        digest.update(path.read_bytes())
    for name in FINGERPRINTED_IF_THERE:  # a model from before the concept prior has none
        if (Path(directory) / name).exists():
            digest.update((Path(directory) / name).read_bytes())
    return digest.hexdigest()[:16]


def load_word_space(directory: Path = DEFAULT_MODEL_DIR) -> WordSpace:
    """The model's words in the search space: their joint vectors, lifted into the concept
    dimensions where the model has them (server.concept_space)."""
    from server.concept_space import ConceptSpace  # it reads this module's file names

    read_manifest(directory)
    words = WordSpace.load(Path(directory) / WORDS_FILE)
    concepts = ConceptSpace.load(directory)
    lifted = words if concepts is None else concepts.lift_words(words)
    map_words = Path(directory) / MAP_WORDS_FILE
    if map_words.exists():  # a model from before it has none: its labels take any word
        lifted.describing = frozenset(map_words.read_text().split())
    return lifted


def code_version() -> str:
    """The commit the code is at (`git describe --always --dirty`), or "unknown" outside git."""
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                              text=True, check=True, cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
