"""The shipped model at inference time: images to unit vectors of the joint space.

The whole image side (backbone and our head) runs as one ONNX graph in ONNX Runtime, read from
the model folder (`encoder.onnx`, exported once by `python -m scripts.export`): no PyTorch, no
timm, no weights wheel. It is 2-3x faster than eager PyTorch on a CPU (docs/gallery-index.md).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime
from PIL import Image

from server.artifacts import (
    DEFAULT_MODEL_DIR,
    ENCODER_FILE,
    model_config,
    model_fingerprint,
)
from server.images import to_array
from server.serve.duplicates import DUPLICATES_FILE, DuplicateModel
from server.vectors import normalized

EMBEDDING = "embedding"  # the graph's output that is indexed and searched


class ImageEncoder:
    """Network inputs (or PIL images) in, L2-normalized float32 rows of the joint space out."""

    def __init__(self, directory: Path = DEFAULT_MODEL_DIR, threads: int = 0):
        """`threads` 0 lets ONNX Runtime use every core."""
        self.directory = Path(directory)
        self.config = model_config(self.directory)
        self.fingerprint = model_fingerprint(self.directory)
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # its warnings about unused initializers are noise here
        options.intra_op_num_threads = threads
        # idle threads sleep rather than spin: the decoding worker needs the same two cores
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(
            str(self.directory / ENCODER_FILE), options, providers=["CPUExecutionProvider"])
        # the graph takes square inputs of a fixed size: (batch, 3, size, size)
        self.image_size: int = self.session.get_inputs()[0].shape[2]
        outputs = {output.name: output for output in self.session.get_outputs()}
        self.dim: int = outputs[EMBEDDING].shape[1]
        self.outputs = tuple(outputs)

    def embed_inputs(self, inputs: np.ndarray) -> np.ndarray:
        """A batch made by `to_array` (n, 3, size, size) to (n, dim) unit vectors."""
        return self.run(inputs, EMBEDDING)[0]

    @functools.cached_property
    def duplicates(self) -> DuplicateModel | None:
        """The appearance model for near duplicates, where the graph gives class probabilities
        and the model folder has one (the shipped model does); else None."""
        if "classes" not in self.outputs or not (self.directory / DUPLICATES_FILE).exists():
            return None
        return DuplicateModel.load(self.directory)

    def embed_photos(self, inputs: np.ndarray, layouts: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray | None]:
        """What the indexer keeps of a batch: the embeddings and, with `duplicates`, the
        appearance vectors (from the same run of the graph, and the images' colour layouts)."""
        if self.duplicates is None:
            return self.embed_inputs(inputs), None
        vectors, classes = self.run(inputs, EMBEDDING, "classes")
        return vectors, self.duplicates.appearance(classes, layouts)

    def run(self, inputs: np.ndarray, *names: str) -> list[np.ndarray]:
        """Outputs of the graph by name: `embedding` (what is indexed: unit vectors), and, in
        a model with a concept prior, `picture` (our head alone, unit vectors) and `classes`
        (the backbone's ImageNet probabilities)."""
        if len(inputs) == 0:
            return [np.zeros((0, self.dim if name != "classes" else 1000), np.float32)
                    for name in names]
        found = self.session.run(list(names), {"image": np.ascontiguousarray(inputs,
                                                                             np.float32)})
        return [normalized(out) if name != "classes" else out
                for name, out in zip(names, found, strict=True)]

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self.embed_inputs(np.stack([to_array(im, self.image_size) for im in images])
                                 if images else np.zeros((0, 3, 1, 1), np.float32))
